"""Derive the shipped value sets from FHIR ValueSet resources (pure functions, no I/O).

VSAC pages its expansions at 1,000 codes: a ValueSet whose ``expansion.total`` is larger ships only
the first page. A measure that joins such a truncated list silently misses patients, so every
truncated expansion is rebuilt here before it is shipped:

* a *grouping* value set (``compose.include[].valueSet``) is the union of its children's expansions,
  rebuilt recursively; the result must have exactly ``expansion.total`` codes when every child is exact;
* a value set whose ``compose`` is an explicit ``concept`` list is rebuilt from that list. The expansion
  of such a list is always a subset of it (codes absent from the code-system version used for the
  expansion are dropped), so when the list has exactly ``expansion.total`` codes it *is* the expansion.
  When the list is longer, the codes that sort before the last shipped code and are not shipped are
  known to be dropped; the rest cannot be told apart offline, so the result is a small, counted superset
  and is marked incomplete;
* anything else (code-system filters) cannot be expanded offline: the first page is shipped, marked
  incomplete, with the expected total.

``build_valuesets`` raises :class:`RebuildError` whenever a rebuild that should be exact is not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

VSAC_PREFIX = "http://cts.nlm.nih.gov/fhir/ValueSet/"

Code = tuple[str, str]  # (system url, code)


class RebuildError(ValueError):
    """A truncated expansion could not be rebuilt to the size the server reported."""


@dataclass(frozen=True)
class BuiltValueSet:
    """One value set as shipped: its identity, its codes and how far they can be trusted."""

    url: str
    oid: str
    name: str
    title: str
    version: str
    codes: frozenset[Code]
    expected_total: int
    complete: bool
    source: str  # expansion | children | compose | compose-superset | truncated
    children: tuple[str, ...] = ()
    note: str | None = None

    @property
    def surplus(self) -> int:
        """Codes shipped beyond the official count (positive: superset, negative: codes missing)."""
        return len(self.codes) - self.expected_total


@dataclass
class _Index:
    resources: Mapping[str, dict]
    built: dict[str, BuiltValueSet] = field(default_factory=dict)


def canonical_url(url: str) -> str:
    """Drop a ``|version`` suffix: value sets are keyed by their unversioned canonical URL."""
    return url.split("|", 1)[0]


def oid_of(resource: dict) -> str:
    """The OID of a VSAC value set, from its identifier or, failing that, its canonical URL."""
    for ident in resource.get("identifier", []):
        value = ident.get("value", "")
        if value.startswith("urn:oid:"):
            return value.removeprefix("urn:oid:")
    url = canonical_url(resource["url"])
    return url.removeprefix(VSAC_PREFIX) if url.startswith(VSAC_PREFIX) else ""


def shipped_codes(resource: dict) -> list[Code]:
    """The codes of the expansion as shipped, in server order (nested ``contains`` flattened)."""
    out: list[Code] = []

    def walk(items: Iterable[dict]) -> None:
        for item in items:
            if "code" in item and not item.get("abstract", False):
                out.append((item["system"], item["code"]))
            walk(item.get("contains", []))

    walk(resource.get("expansion", {}).get("contains", []))
    return out


def is_truncated(resource: dict) -> bool:
    """True when the server reported more codes than it returned."""
    expansion = resource.get("expansion", {})
    total = expansion.get("total")
    return total is not None and total > len(shipped_codes(resource))


def _children(resource: dict) -> list[str]:
    return [
        canonical_url(vs)
        for inc in resource.get("compose", {}).get("include", [])
        for vs in inc.get("valueSet", [])
    ]


def _concept_list(resource: dict) -> set[Code] | None:
    """The compose as an explicit code list, or None when it uses filters, children or excludes."""
    compose = resource.get("compose", {})
    if not compose.get("include") or compose.get("exclude"):
        return None
    codes: set[Code] = set()
    for inc in compose["include"]:
        if set(inc) - {"system", "version", "concept"} or "concept" not in inc:
            return None
        codes.update((inc["system"], c["code"]) for c in inc["concept"])
    return codes


def _identity(resource: dict) -> dict:
    return {
        "url": canonical_url(resource["url"]),
        "oid": oid_of(resource),
        "name": resource.get("name", ""),
        "title": resource.get("title", ""),
        "version": resource.get("version", ""),
    }


def _from_children(resource: dict, index: _Index) -> BuiltValueSet:
    ident = _identity(resource)
    total = resource["expansion"]["total"]
    kids = _children(resource)
    missing = [k for k in kids if k not in index.resources]
    if missing:
        raise RebuildError(f"{ident['name']} ({ident['url']}): child value sets not available: {missing}")
    built_kids = [_build(index.resources[k], index) for k in kids]
    codes = frozenset().union(*(k.codes for k in built_kids))
    shipped = set(shipped_codes(resource))
    if not shipped <= codes:
        raise RebuildError(f"{ident['name']} ({ident['url']}): children do not cover the shipped page")
    inexact = [k for k in built_kids if not k.complete]
    if not inexact:
        if len(codes) != total:
            raise RebuildError(
                f"{ident['name']} ({ident['url']}): union of {len(kids)} children has {len(codes)} codes, "
                f"expansion.total is {total}"
            )
        return BuiltValueSet(**ident, codes=codes, expected_total=total, complete=True,
                             source="children", children=tuple(kids))
    # Some child is itself only approximately known: the union can only be checked for plausibility.
    slack = sum(max(k.surplus, 0) for k in inexact)
    short = sum(max(-k.surplus, 0) for k in inexact)
    if not total - short <= len(codes) <= total + slack:
        raise RebuildError(
            f"{ident['name']} ({ident['url']}): union has {len(codes)} codes, outside "
            f"[{total - short}, {total + slack}] allowed by its inexact children"
        )
    names = ", ".join(f"{k.name} ({k.oid})" for k in inexact)
    return BuiltValueSet(
        **ident, codes=codes, expected_total=total, complete=False, source="children",
        children=tuple(kids),
        note=f"union of its children, of which {names} cannot be rebuilt exactly; "
             f"{len(codes)} codes shipped for an expected {total}",
    )


def _from_concepts(resource: dict, listed: set[Code]) -> BuiltValueSet:
    ident = _identity(resource)
    total = resource["expansion"]["total"]
    page = shipped_codes(resource)
    if not set(page) <= listed:
        raise RebuildError(f"{ident['name']} ({ident['url']}): shipped page is not within its compose list")
    if len(listed) == total:
        return BuiltValueSet(**ident, codes=frozenset(listed), expected_total=total, complete=True,
                             source="compose")
    if len(listed) < total:
        raise RebuildError(
            f"{ident['name']} ({ident['url']}): compose lists {len(listed)} codes, fewer than "
            f"expansion.total {total}"
        )
    # Longer list: some listed codes are not in the expansion. The page is sorted by (system, code),
    # so listed codes that sort inside the page but are not on it are known to be dropped.
    codes = set(listed)
    if page == sorted(page):
        last = page[-1]
        codes = set(page) | {c for c in listed if c > last}
    dropped = len(listed) - len(codes)
    return BuiltValueSet(
        **ident, codes=frozenset(codes), expected_total=total, complete=False, source="compose-superset",
        note=(
            f"expansion truncated at {len(page)} of {total}; compose lists {len(listed)} codes, "
            f"{dropped} of them provably not in the expansion; shipped {len(codes)} codes = the expansion "
            f"plus {len(codes) - total} listed codes that cannot be identified offline "
            f"(not in the code-system version used for the expansion)"
        ),
    )


def _build(resource: dict, index: _Index) -> BuiltValueSet:
    url = canonical_url(resource["url"])
    if url in index.built:
        return index.built[url]
    ident = _identity(resource)
    page = shipped_codes(resource)
    if not is_truncated(resource):
        total = resource.get("expansion", {}).get("total", len(set(page)))
        built = BuiltValueSet(**ident, codes=frozenset(page), expected_total=total, complete=True,
                              source="expansion", children=tuple(_children(resource)))
    elif _children(resource):
        built = _from_children(resource, index)
    elif (listed := _concept_list(resource)) is not None:
        built = _from_concepts(resource, listed)
    else:
        total = resource["expansion"]["total"]
        built = BuiltValueSet(
            **ident, codes=frozenset(page), expected_total=total, complete=False, source="truncated",
            note=f"expansion truncated at {len(page)} of {total}; compose uses filters that cannot be "
                 f"expanded offline",
        )
    index.built[url] = built
    return built


def check_grouping(resource: dict, resources: Mapping[str, dict]) -> None:
    """A complete grouping expansion must equal the union of its children's: evidence the rule holds."""
    kids = [resources.get(k) for k in _children(resource)]
    if not kids or is_truncated(resource) or any(k is None or is_truncated(k) for k in kids):
        return
    union = set().union(*(shipped_codes(k) for k in kids if k is not None))
    if union != set(shipped_codes(resource)):
        raise RebuildError(f"{resource.get('name')} ({resource['url']}): expansion != union of its children")


def build_valuesets(resources: Iterable[dict]) -> list[BuiltValueSet]:
    """Every value set, truncated ones rebuilt; sorted by URL. Raises RebuildError on any inconsistency."""
    by_url: dict[str, dict] = {}
    for res in resources:
        url = canonical_url(res["url"])
        if url in by_url:
            raise RebuildError(f"two ValueSet resources for {url}: keep one version per canonical URL")
        by_url[url] = res
    index = _Index(by_url)
    for res in by_url.values():
        check_grouping(res, by_url)
    return sorted((_build(res, index) for res in by_url.values()), key=lambda b: b.url)
