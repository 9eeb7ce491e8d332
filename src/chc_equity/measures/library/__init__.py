"""Shared CQL libraries as SQL blocks, one module per library, each function named after its CQL define."""
