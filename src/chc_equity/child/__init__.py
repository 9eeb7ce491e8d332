"""Child health: pediatric measures at a glance, clinical referral loops and behavioral-health follow-up
(docs/child.md).

A stage beside :mod:`chc_equity.sdoh`: it reads the flat views, the measures' ``measure_results`` and the
equity layer's ``patient_attributes``, and writes the ``child_*`` tables the web app and the CLI read.
Submodules:

- :mod:`~chc_equity.child.codes`: every code list, with the value set or specification it follows;
- :mod:`~chc_equity.child.bands`: the pediatric age bands (0-2, 3-5, 6-11, 12-17), in SQL, once;
- :mod:`~chc_equity.child.pediatric`: which measures include children (from their age criteria) and their
  rates by center, age band and equity stratum (``child_measure``);
- :mod:`~chc_equity.child.guardians`: parents and guardians (RelatedPerson, Patient.contact) and the
  family's language (``child_guardian``);
- :mod:`~chc_equity.child.referrals`: behavioral-health and specialist referrals, their Task lifecycle and
  the CMS50 consultant report that closes them (``child_referral``, ``child_referral_metrics``,
  ``child_referral_equity``);
- :mod:`~chc_equity.child.bh`: follow-up after an ED visit for mental illness or self-harm (modelled on
  HEDIS FUM) and positive depression screens without a follow-up plan (``child_bh_followup``,
  ``child_depression_open``);
- :mod:`~chc_equity.child.lists`: the patient-level lists (pediatric care gaps with the guardian's
  contact, open referrals by age) for roles allowed to see a center's patients;
- :mod:`~chc_equity.child.export`: the Excel workbook;
- :mod:`~chc_equity.child.build`: builds every table in order.
"""
