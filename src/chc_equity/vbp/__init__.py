"""Value-based payment for small health centers: what a payer holds a center accountable for, and
what closing a gap is worth.

Payer side: attribution rosters reconciled with the center's panel, payer gap files merged with our own
open gaps, contracts as YAML with an incentive estimator, cost and use from claims, medication adherence
(PDC). Hospital side: admission / discharge / transfer events (HL7 v2 ADT and FHIR Encounter) matched to
patients, and the transitions-of-care follow-up list. See docs/vbp.md.
"""
