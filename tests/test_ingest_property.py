"""Property: every input record is either loaded or quarantined -- nothing is lost, nothing is invented."""

from __future__ import annotations

import tempfile
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chc_equity.ingest import load
from chc_equity.warehouse import connect_memory

_ids = st.one_of(
    st.from_regex(r"[A-Za-z0-9.\-]{1,8}", fullmatch=True), st.just("bad id"), st.integers(-(2**63), 2**63 - 1)
)
_dates = st.one_of(
    st.dates().map(str),
    st.just("2023-02-30"),
    st.just("2024-13-01"),
    st.text(max_size=12),
)
_resources = st.fixed_dictionaries(
    {"resourceType": st.sampled_from(["Patient", "Encounter", "Observation", "Nope"]), "id": _ids},
    optional={
        "birthDate": _dates,
        "meta": st.fixed_dictionaries(
            {
                "lastUpdated": st.sampled_from(
                    ["2024-01-01T00:00:00Z", "2024-01-02T00:00:00+01:00", "2024-01-01"]
                )
            }
        ),
    },
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=3), kids, max_size=3),
    max_leaves=5,
)
_lines = st.lists(
    st.one_of(
        _resources.map(orjson.dumps),
        _json.map(orjson.dumps),
        st.binary(min_size=1, max_size=20).filter(lambda b: b"\n" not in b and b.strip() != b""),
    ),
    max_size=30,
)


def _key(line: bytes) -> tuple | None:
    """The (type, id) a line would be stored under if it is a plausible resource (for the row count bound)."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    key = (obj.get("resourceType"), obj.get("id"))
    return key if all(isinstance(part, str) for part in key) else None


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=_lines)
def test_resources_in_equal_loaded_plus_quarantined(lines: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.ndjson"
        path.write_bytes(b"".join(line + b"\n" for line in lines))
        con = connect_memory()
        result = load(con, [path], "c")
        # a lone CR ends a line too (CR-only exports): count records the way bytes.splitlines does
        records = sum(1 for line in lines for part in line.splitlines() if part.strip())
        expected_read = records if records else 1  # an input with no records is one empty-file reject
        assert result.resources_read == expected_read == result.loaded + result.quarantined
        assert con.execute("SELECT count(*) FROM rejects").fetchone()[0] == result.quarantined
        stored = con.execute("SELECT count(*) FROM resources").fetchone()[0]
        assert stored == result.inserted <= result.loaded
        assert stored == len(
            {k for k in map(_key, lines) if k is not None}
            & set(con.execute("SELECT type, id FROM resources").fetchall())
        )
