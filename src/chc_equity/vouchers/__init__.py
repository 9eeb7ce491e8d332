"""The farmworker health voucher program (PHS Act Section 330(g)): eligibility, vouchers, provider
claims, adjudication and budget.

Pure rules live in :mod:`.rules` (eligibility, adjudication with reason codes) and :mod:`.budget`
(paid + encumbered + remaining = budget); :mod:`.claims_file` reads the providers' claims template
(CSV or Excel); :mod:`.store` keeps the records in the app database (SQLAlchemy, Alembic revision
0020) and is the only module here that does I/O on it; :mod:`.season` makes a synthetic season with
planted errors. See docs/vouchers.md.
"""
