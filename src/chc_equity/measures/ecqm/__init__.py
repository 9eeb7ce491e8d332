"""One module per eCQM. Each reads like its CQL: CTEs named after the CQL definitions they implement."""
