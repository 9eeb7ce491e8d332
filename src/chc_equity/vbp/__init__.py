"""Value-based payment for small health centers: what a payer holds a center accountable for, and
what closing a gap is worth.

Payer side: attribution rosters reconciled with the center's panel, payer gap files merged with our own
open gaps, contracts as YAML with an incentive estimator, cost and use from claims, medication adherence
(PDC). Hospital side: admission / discharge / transfer events (HL7 v2 ADT and FHIR Encounter) matched to
patients, and the transitions-of-care follow-up list. See docs/vbp.md.

Payer side (pure rules first, then the edges):

- ``roster``: roster CSV and Da Vinci ATR import, active panel, reconciliation, member months,
  continuous enrollment;
- ``link``: a payer's member to one patient (identifier, then exact name + birth date);
- ``payer_gaps``: payer gap CSV and DEQM ``$care-gaps``, merged with our gaps;
- ``contract``: contracts as YAML and the exact estimator;
- ``cost``: claims, PMPM, ED visits and admissions per 1,000 member months, by stratum (suppressed);
- ``pdc``: proportion of days covered, PQA method;
- ``store`` (the ``vbp_*`` warehouse tables), ``report`` (one function per page / command), ``synth``
  (the demo payer).

Hospital side: ``adt`` (HL7 v2 / FHIR events, quarantine), ``matching`` (identifiers, then the
demographic rule and a review queue), ``transitions`` (business days, follow-up windows, rates),
``hospital`` (the edges: warehouse patients, app-database events), ``adt_synth`` (the demo feed).
"""
