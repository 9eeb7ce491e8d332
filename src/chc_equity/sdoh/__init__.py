"""Social needs: PRAPARE / AHC-HRSN screening and closed-loop community referrals (docs/sdoh.md).

A stage beside :mod:`chc_equity.equity`: it reads only the flat views (QuestionnaireResponse items,
screening Observations, Conditions, ServiceRequests, Tasks) and the equity layer's
``patient_attributes`` (site and age band, so that those rules live in one place), and writes
``sdoh_patient``, ``sdoh_referral`` and ``sdoh_metrics``. Submodules:

- :mod:`~chc_equity.sdoh.mapping`: the one mapping table (``mapping.csv``) from answers, LOINC
  screening items, ICD-10-CM Z codes, SNOMED and Gravity category codes to domains;
- :mod:`~chc_equity.sdoh.tier`: the social-risk tier rule, shared with the worklist and the equity
  attributes (no imports, so anyone may import it);
- :mod:`~chc_equity.sdoh.metrics`: the SQL that builds the tables;
- :mod:`~chc_equity.sdoh.strata`: every metric through the equity layer (strata, intervals, suppression).

Kept import-free here so that ``chc_equity.sdoh.tier`` stays cheap for its importers.
"""
