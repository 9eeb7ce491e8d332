"""The eCQMs chc-equity implements: one module per measure under ``chc_equity.measures.ecqm``.

A module defines ``MEASURE`` (a :class:`~chc_equity.measures.model.Measure`), ``defines(ctx)`` (its
CQL defines as one ``WITH`` of named relations) and ``POPULATIONS`` (population -> define, per group;
:mod:`chc_equity.measures.populations`); the engine writes the population SELECT. Adding a measure means
adding its module name here.
"""

from __future__ import annotations

import importlib
from functools import cache

from chc_equity.measures.engine import MeasureModule
from chc_equity.measures.populations import declared_criteria

# Module names under chc_equity.measures.ecqm, in CMS-number order.
MODULES: tuple[str, ...] = (
    "cms2",
    "cms22",
    "cms69",
    "cms74",
    "cms75",
    "cms117",
    "cms122",
    "cms124",
    "cms125",
    "cms130",
    "cms131",
    "cms138",
    "cms139",
    "cms155",
    "cms159",
    "cms165",
    "cms177",
    "cms314",
    "cms347",
    "cms349",
    "cms951",
)


def load_modules(names: tuple[str, ...]) -> tuple[MeasureModule, ...]:
    """Import the named measure modules; any that fails to import (or lacks ``MEASURE``, ``defines``
    or ``POPULATIONS``) raises, naming the module, so a typo can never silently drop a measure."""
    found = []
    for name in names:
        qualified = f"chc_equity.measures.ecqm.{name}"
        try:
            module = importlib.import_module(qualified)
            criteria = declared_criteria(module.defines, module.POPULATIONS, module.MEASURE.basis)
            found.append(MeasureModule(module.MEASURE, criteria))
        except (ImportError, AttributeError) as exc:
            raise ImportError(f"measure module {qualified} is registered but does not load: {exc}") from exc
    return tuple(found)


@cache
def all_measures() -> tuple[MeasureModule, ...]:
    """Every registered measure, in :data:`MODULES` order."""
    return load_modules(MODULES)


def find(ids: list[str] | tuple[str, ...] | None) -> tuple[MeasureModule, ...]:
    """Measures by folder-style name ("CMS122FHIRDiabetesAssessGT9Pct") or CMS id ("CMS122", "cms122")."""
    measures = all_measures()
    if not ids:
        return measures
    wanted = []
    for ident in ids:
        key = ident.lower()
        match = [m for m in measures if key in (m.measure.name.lower(), m.measure.cms_id.lower())]
        if not match:
            known = ", ".join(m.measure.cms_id for m in measures)
            raise KeyError(f"unknown measure {ident!r}; implemented: {known}")
        wanted.extend(match)
    return tuple(wanted)
