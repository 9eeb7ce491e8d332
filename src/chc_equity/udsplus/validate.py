"""A structural validator driven by the UDS+ IG's StructureDefinition snapshots (data/ig_rules.json).

No FHIR validator that reads IG snapshots runs in this Python-only stack (the HL7 Java validator needs a
JVM and network access to terminology), so this is the small checker the issue allows: for every element
of the resource's profile it checks cardinality (including ``0..0`` prohibitions), ``fixed[x]`` and
``pattern[x]`` values, choice types, slices (extensions by URL, Parameters by name, type slices by key),
extension content against the extension's own profile, and required bindings wherever the IG ships the
codes (its expansions and code systems, plus the few FHIR core status value sets below). ``strict``
adds the rules for our own output: only must-support or required elements at the top level, no
narrative (``text``) and no ``Reference.display`` anywhere, a UDS+ profile claimed in ``meta.profile``.
Each resource must also parse as FHIR with ``fhir.resources`` (its R4B models, the closest it
ships to R4).

Where the IG's narrative and its own examples relax the snapshot, :data:`RELAXED` says so (docs/udsplus.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from chc_equity.udsplus import ig

# FHIR R4 (4.0.1) required value sets the profiles bind to (codes from the R4 specification)
CORE_CODES: dict[str, tuple[str, ...]] = {
    "http://hl7.org/fhir/ValueSet/observation-status": (
        "registered",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "cancelled",
        "entered-in-error",
        "unknown",
    ),
    "http://hl7.org/fhir/ValueSet/encounter-status": (
        "planned",
        "arrived",
        "triaged",
        "in-progress",
        "onleave",
        "finished",
        "cancelled",
        "entered-in-error",
        "unknown",
    ),
    "http://hl7.org/fhir/ValueSet/fm-status": ("active", "cancelled", "draft", "entered-in-error"),
    "http://hl7.org/fhir/ValueSet/event-status": (
        "preparation",
        "in-progress",
        "not-done",
        "on-hold",
        "stopped",
        "completed",
        "entered-in-error",
        "unknown",
    ),
    "http://hl7.org/fhir/ValueSet/immunization-status": ("completed", "entered-in-error", "not-done"),
    "http://hl7.org/fhir/ValueSet/request-status": (
        "draft",
        "active",
        "on-hold",
        "revoked",
        "completed",
        "entered-in-error",
        "unknown",
    ),
    "http://hl7.org/fhir/ValueSet/request-intent": (
        "proposal",
        "plan",
        "directive",
        "order",
        "original-order",
        "reflex-order",
        "filler-order",
        "instance-order",
        "option",
    ),
    "http://hl7.org/fhir/ValueSet/medicationrequest-status": (
        "active",
        "on-hold",
        "cancelled",
        "completed",
        "entered-in-error",
        "stopped",
        "draft",
        "unknown",
    ),
    "http://hl7.org/fhir/ValueSet/medicationrequest-intent": (
        "proposal",
        "plan",
        "order",
        "original-order",
        "reflex-order",
        "filler-order",
        "instance-order",
        "option",
    ),
    "http://hl7.org/fhir/ValueSet/administrative-gender": ("male", "female", "other", "unknown"),
    "http://hl7.org/fhir/ValueSet/adverse-event-actuality": ("actual", "potential"),
    "http://hl7.org/fhir/ValueSet/data-absent-reason": (
        "unknown",
        "asked-unknown",
        "temp-unknown",
        "not-asked",
        "asked-declined",
        "masked",
        "not-applicable",
        "unsupported",
        "as-text",
        "error",
        "not-a-number",
        "negative-infinity",
        "positive-infinity",
        "not-performed",
        "not-permitted",
    ),
}

# snapshot min cardinalities that the IG's narrative and its own current examples relax
RELAXED: dict[str, str] = {
    # "If the reported race and ethnicity values are not null flavors then detailed values are mandatory"
    # (de-identified Patient page); the IG's de-identified Patient examples carry OMB categories only.
    "Extension.extension:detailed": "race/ethnicity detail only where the source records it",
}

PRIMITIVE = {
    "boolean",
    "integer",
    "string",
    "decimal",
    "uri",
    "url",
    "canonical",
    "base64Binary",
    "instant",
    "date",
    "dateTime",
    "time",
    "code",
    "oid",
    "id",
    "markdown",
    "unsignedInt",
    "positiveInt",
    "uuid",
}


@dataclass(frozen=True)
class Violation:
    resource: str  # "Patient/<id>" (or the resource type when there is no id)
    path: str  # element id in the profile, e.g. "Patient.extension:uds-plus-race"
    rule: str  # cardinality | fixed | pattern | binding | type | unknown-element | must-support | ...
    message: str

    def __str__(self) -> str:
        return f"{self.resource} {self.path} [{self.rule}] {self.message}"


class Profile:
    """One StructureDefinition's snapshot, indexed by element id."""

    def __init__(self, url: str, raw: dict[str, Any]) -> None:
        self.url, self.type = url, raw["type"]
        self.elements = {e["id"]: e for e in raw["elements"]}
        self.children: dict[str, list[str]] = defaultdict(list)
        self.slices: dict[str, list[str]] = defaultdict(list)
        for eid in self.elements:
            parent, _, last = eid.rpartition(".")
            if not parent:
                continue
            if ":" in last:
                name = last.split(":")[0]
                self.slices[f"{parent}.{name}"].append(eid)
            else:
                self.children[parent].append(eid)
        self.root = raw["elements"][0]["id"]
        # supported: must-support or required itself, or through a slice or descendant that is
        self.supported = {
            eid for eid, e in self.elements.items() if e.get("mustSupport") or e.get("min", 0) > 0
        }
        for eid in list(self.supported):
            parts = eid.split(".")
            for i in range(1, len(parts)):
                self.supported.add(".".join(parts[:i]) + "." + parts[i].split(":")[0])


@cache
def profiles() -> dict[str, Profile]:
    return {url: Profile(url, raw) for url, raw in ig.rules()["profiles"].items()}


@cache
def _codes(valueset: str) -> frozenset[tuple[str, str]] | None:
    url = valueset.split("|")[0]
    vs = ig.rules()["valuesets"].get(ig.canonical(url))
    if vs is not None:
        return frozenset((s, c) for s, c in vs)
    if url in CORE_CODES:
        return frozenset(("", c) for c in CORE_CODES[url])
    return None


def _values(node: dict[str, Any], name: str) -> list[tuple[str, Any]]:
    """(key, value) of the instance's element ``name`` (choice types expand); primitives are wrapped as
    ``{"value": v, ...their _name extension}`` so their ids and extensions can be checked too."""
    if name.endswith("[x]"):
        prefix = name[:-3]
        keys = [k for k in node if k.startswith(prefix) and k[len(prefix) : len(prefix) + 1].isupper()]
    else:
        keys = [name] if name in node or f"_{name}" in node else []
    out = []
    for k in keys:
        v, ext = node.get(k), node.get(f"_{k}")
        vs = v if isinstance(v, list) else [v]
        exts = ext if isinstance(ext, list) else [ext] * len(vs)
        for i, item in enumerate(vs):
            e = exts[i] if i < len(exts) else None
            if isinstance(item, dict) or item is None and isinstance(e, dict):
                out.append((k, item if item is not None else dict(e)))  # type: ignore[arg-type]
            else:
                wrapped: dict[str, Any] = {"value": item}
                if isinstance(e, dict):
                    wrapped.update(e)
                out.append((k, wrapped))
    return out


def _contains(actual: Any, pattern: Any) -> bool:
    """FHIR pattern[x] semantics: every property of the pattern is present (lists: each item matched)."""
    if isinstance(actual, dict) and "value" in actual and not isinstance(pattern, dict):
        actual = actual["value"]
    if isinstance(pattern, dict):
        return isinstance(actual, dict) and all(_contains(actual.get(k), v) for k, v in pattern.items())
    if isinstance(pattern, list):
        items = actual if isinstance(actual, list) else [actual]
        return all(any(_contains(a, p) for a in items) for p in pattern)
    return actual == pattern


def _fixed(el: dict[str, Any], prefix: str) -> tuple[str, Any] | None:
    for k, v in el.items():
        if k.startswith(prefix):
            return k, v
    return None


class Checker:
    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.out: list[Violation] = []
        self.ref = ""

    def add(self, path: str, rule: str, message: str) -> None:
        self.out.append(Violation(self.ref, path, rule, message))

    # --- slices ------------------------------------------------------------------------------------
    def _slice_key(self, prof: Profile, slice_id: str) -> tuple[str, Any] | None:
        return _slice_key(prof.url, slice_id)

    def _matches(self, prof: Profile, slice_id: str, key: str, value: dict[str, Any]) -> bool:
        name = slice_id.rsplit(":", 1)[1]
        base = slice_id.rsplit(".", 1)[1].split(":")[0]
        if base.endswith("[x]"):  # type slice: value[x]:valueCodeableConcept
            return key == name
        disc = self._slice_key(prof, slice_id)
        if disc is None:
            return False
        got = value.get(disc[0])
        return got is not None and ig.canonical(str(got)) == ig.canonical(str(disc[1]))

    # --- the walk ----------------------------------------------------------------------------------
    def element(self, prof: Profile, eid: str, node: dict[str, Any], shown: str | None = None) -> None:
        """Check ``node`` (an instance of element ``eid``, reported as ``shown``) against its children."""
        shown = shown or eid
        kids = prof.children.get(eid, [])
        if not kids:
            base = eid.rsplit(":", 1)[0] if ":" in eid.rsplit(".", 1)[-1] else None
            kids = prof.children.get(base, []) if base else []
            if base and kids:
                return self._children(prof, base, kids, node, shown)
        if kids:
            self._children(prof, eid, kids, node, shown)

    def _children(self, prof: Profile, base: str, kids: list[str], node: dict[str, Any], shown: str) -> None:
        seen: set[str] = set()
        for kid in kids:
            name = kid.rsplit(".", 1)[1]
            values = _values(node, name)
            seen.update(k for k, _ in values)
            seen.update(f"_{k}" for k, _ in values)
            el = prof.elements[kid]
            kid_shown = shown + kid[len(base) :]
            self.values(prof, kid, el, values, kid_shown)
        if self.strict and base == prof.root:
            for k in node:
                if k in ("resourceType", "id", "meta") or k.startswith("_"):
                    continue
                el = prof.elements.get(f"{base}.{k}") or next(
                    (
                        prof.elements[c]
                        for c in kids
                        if c.endswith("[x]") and k.startswith(c.rsplit(".", 1)[1][:-3])
                    ),
                    None,
                )
                if el is not None and el["id"] not in prof.supported:
                    self.add(f"{shown}.{k}", "must-support", f"{k} is not a supported element of the profile")
        # unknown elements: only where the snapshot lists every child (the resource, backbone elements,
        # extensions); a datatype's children are listed only where the profile constrains one of them
        types = [t["code"] for t in prof.elements[base].get("type", [])]
        if base != prof.root and not (set(types) & {"BackboneElement", "Element"}) and base != "Extension":
            return
        unknown = [k for k in node if k not in seen and k != "resourceType" and not (k == "value" and base)]
        for k in unknown:
            if k.startswith("_") and k[1:] in seen:
                continue
            if k == "value" and any(c.endswith(".value") for c in kids):
                continue
            self.add(f"{shown}.{k}", "unknown-element", f"{k} is not an element of {prof.type}")

    def values(
        self, prof: Profile, eid: str, el: dict[str, Any], values: list[tuple[str, Any]], shown: str
    ) -> None:
        slices = prof.slices.get(eid, [])
        matched: dict[str, list[tuple[str, Any]]] = {s: [] for s in slices}
        rest: list[tuple[str, Any]] = []
        for key, v in values:
            hit = next((s for s in slices if self._matches(prof, s, key, v)), None)
            (matched[hit] if hit else rest).append((key, v))
        self.cardinality(eid, el, len(values), shown)
        for s in slices:
            sel = prof.elements[s]
            s_shown = shown + s[len(eid) :]
            self.cardinality(s, sel, len(matched[s]), s_shown)
            for key, v in matched[s]:
                self.one(prof, s, sel, key, v, s_shown)
        for key, v in rest:
            self.one(prof, eid, el, key, v, shown)

    def cardinality(self, eid: str, el: dict[str, Any], n: int, shown: str) -> None:
        lo, hi = el.get("min", 0), el.get("max", "*")
        if n < lo and eid not in RELAXED:
            self.add(shown, "cardinality", f"{n} present, at least {lo} required")
        if hi != "*" and n > int(hi):
            what = "not allowed" if hi == "0" else f"at most {hi} allowed"
            self.add(shown, "cardinality", f"{n} present, {what}")

    def one(
        self, prof: Profile, eid: str, el: dict[str, Any], key: str, value: dict[str, Any], shown: str
    ) -> None:
        types = [t["code"] for t in el.get("type", [])]
        name = eid.rsplit(".", 1)[1].split(":")[0]
        if name.endswith("[x]") and types:
            suffix = key[len(name) - 3 :]
            allowed = {t[0].upper() + t[1:] for t in types}
            if suffix not in allowed:
                self.add(
                    shown, "type", f"{key}: type {suffix} not allowed (allowed: {', '.join(sorted(allowed))})"
                )
                return
            types = [t for t in types if t[0].upper() + t[1:] == suffix]
        fx = _fixed(el, "fixed")
        if fx and fx[0] in ("fixedUri", "fixedCanonical", "fixedUrl") and isinstance(value.get("value"), str):
            fx = (fx[0], ig.canonical(fx[1])) if ig.canonical(value["value"]) == ig.canonical(fx[1]) else fx
            value = {**value, "value": ig.canonical(value["value"])}
        if fx and not _contains(value, fx[1]) or fx and isinstance(fx[1], dict) and value != fx[1]:
            self.add(shown, "fixed", f"must be {fx[1]!r}, found {value.get('value', value)!r}")
        pt = _fixed(el, "pattern")
        if pt and not _contains(value, pt[1]):
            self.add(shown, "pattern", f"must match {pt[1]!r}")
        b = el.get("binding")
        if b and b["strength"] == "required":
            self.binding(shown, b["valueSet"], types, value)
        if types and types[0] in PRIMITIVE and "value" not in value and "extension" not in value:
            self.add(shown, "type", f"{key} has no value")
        for t in el.get("type", []):
            for p in t.get("profile", []) if t["code"] == "Extension" else []:
                ext = profiles().get(ig.canonical(p))
                if ext is not None:
                    self.element(ext, ext.root, value, shown)
        self.element(prof, eid, value, shown)

    def binding(self, shown: str, valueset: str, types: list[str], value: dict[str, Any]) -> None:
        codes = _codes(valueset)
        if codes is None:
            return
        bare = {c for _, c in codes}
        if "value" in value and not isinstance(value["value"], dict):  # code
            if value["value"] not in bare:
                self.add(shown, "binding", f"code {value['value']!r} not in {valueset}")
            return
        codings = value.get("coding") if "coding" in value else [value] if "code" in value else []
        ok = any(
            (c.get("system", ""), c.get("code")) in codes or ("", c.get("code")) in codes
            for c in codings or []
        )
        if not ok:
            shown_codes = [f"{c.get('system', '')}|{c.get('code')}" for c in codings or []]
            self.add(shown, "binding", f"{shown_codes or 'no coding'} not in {valueset}")


def _narrative(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every ``text`` narrative and every ``Reference.display`` (the IG: neither may be submitted)."""
    if isinstance(node, dict):
        if "reference" in node and "display" in node:
            yield f"{path}.display", "reference display"
        for k, v in node.items():
            if (
                k == "text"
                and (path.count(".") == 0 or isinstance(v, (dict, str)))
                and not (isinstance(v, dict) and "url" in node)
            ):
                yield f"{path}.text", "narrative text"
            yield from _narrative(v, f"{path}.{k}")
    elif isinstance(node, list):
        for v in node:
            yield from _narrative(v, path)


@cache
def _slice_key(url: str, slice_id: str) -> tuple[str, Any] | None:
    """(discriminating child, expected value) of a slice: an extension's URL, a part's name."""
    prof = profiles()[url]
    for child in ("url", "name"):
        el = prof.elements.get(f"{slice_id}.{child}")
        if el is not None:
            fx = _fixed(el, "fixed") or _fixed(el, "pattern")
            if fx:
                return child, fx[1]
    for t in prof.elements[slice_id].get("type", []):
        for p in t.get("profile", []):
            ext = profiles().get(ig.canonical(p))
            if ext is not None and "Extension.url" in ext.elements:
                fx = _fixed(ext.elements["Extension.url"], "fixed")
                if fx:
                    return "url", fx[1]
    return None


def profile_of(resource: dict[str, Any]) -> str | None:
    for p in resource.get("meta", {}).get("profile", []):
        if ig.canonical(p) in profiles():
            return ig.canonical(p)
    return None


@cache
def _fhir_model(resource_type: str) -> Any:
    from fhir.resources.R4B import get_fhir_model_class  # a runtime dependency: nothing leaves unparsed

    return get_fhir_model_class(resource_type)


def validate(resource: dict[str, Any], *, strict: bool = False, parse: bool = True) -> list[Violation]:
    """Violations of ``resource`` against its UDS+ profile (``meta.profile``); [] when it conforms."""
    chk = Checker(strict)
    rtype = resource.get("resourceType", "?")
    chk.ref = f"{rtype}/{resource.get('id', '')}"
    url = profile_of(resource)
    if url is None:
        chk.add(
            rtype, "profile", f"no UDS+ profile in meta.profile {resource.get('meta', {}).get('profile')}"
        )
        return chk.out
    prof = profiles()[url]
    if prof.type != rtype:
        chk.add(rtype, "profile", f"profile {url} is for {prof.type}, not {rtype}")
        return chk.out
    chk.element(prof, prof.root, resource)
    if strict:
        for path, what in _narrative(resource, rtype):
            chk.add(path, "narrative", f"{what} may carry identifying text and is not submitted")
    if parse:
        model = _fhir_model(rtype)
        if model is not None:
            try:
                model.model_validate(resource)
            except Exception as exc:  # pydantic ValidationError: report its first line
                chk.add(rtype, "fhir", " / ".join(str(exc).splitlines()[1:3])[:300])
    return chk.out


def validate_all(resources: Iterable[dict[str, Any]], *, strict: bool = False) -> list[Violation]:
    out: list[Violation] = []
    for r in resources:
        out += validate(r, strict=strict)
    return out
