"""Improvement analytics: run and control charts that tell a real change in a measure from noise.

``runs`` holds the run-chart rules (Anhøj; IHI), ``spc`` the Shewhart control charts (p, Laney p',
u, XmR) with their rules, ``signals`` the typed signal every rule returns, worded for people, and
``charts`` draws them with Altair. The rules are pure numpy functions of a series, so the web app,
the CLI and the tests share one implementation (docs/improvement.md cites the sources).
"""
