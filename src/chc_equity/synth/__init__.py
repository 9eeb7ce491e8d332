"""Synthetic CHC network generator: FHIR R4 bulk NDJSON per center with planted disparities and truth.json."""

from chc_equity.synth.config import load_config
from chc_equity.synth.generator import generate

__all__ = ["generate", "load_config"]
