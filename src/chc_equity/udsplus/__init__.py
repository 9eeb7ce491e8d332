"""UDS+: the de-identified, patient-level FHIR submission to HRSA (the UDS+ FHIR IG, docs/udsplus.md).

:mod:`.extract` builds a center-year's resources from the warehouse, :mod:`.deid` holds the
de-identification rules, :mod:`.package` writes the NDJSON and the ``$import`` manifest, :mod:`.validate`
checks every resource against the IG's profiles, :mod:`.reader` recomputes the UDS tables from a package
alone (the round trip), :mod:`.relink` keeps the encrypted id map, and :mod:`.store` finds packages for
the web page.
"""
