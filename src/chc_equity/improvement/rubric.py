"""Assessment rubrics as data: a versioned YAML (or JSON) file of domains -> items -> levels.

Why a file and not code: a state program brings its own instrument, and the instrument changes between
rounds; an assessment records the rubric's ``id`` and ``version`` it was scored with, so an older
assessment is always read with its own items. The packaged rubric (``rubrics/*.yaml``) is written for
this project (docs/assessment.md). A program's rubrics are YAML/JSON files in the folder named by
``$CHC_EQUITY_RUBRICS``; :func:`available` lists both.

A bad file fails with a :class:`RubricError` naming the file, the line and the field.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PACKAGED = Path(__file__).with_name("rubrics")
ENV_DIR = "CHC_EQUITY_RUBRICS"
DEFAULT_RUBRIC = "chc-equity-readiness"
_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class RubricError(ValueError):
    """A rubric file that cannot be used: ``file:line: field: message``."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LevelName(_Strict):
    level: int = Field(ge=0, le=10)
    name: str = Field(min_length=1, max_length=80)


class Level(_Strict):
    level: int = Field(ge=0, le=10)
    anchor: str = Field(min_length=1, max_length=1000)


class Item(_Strict):
    id: str = Field(pattern=_ID)
    text: str = Field(min_length=1, max_length=2000)
    guidance: str = Field(default="", max_length=2000)
    evidence: str = Field(default="", max_length=1000)
    levels: tuple[Level, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _ordinal(self) -> Item:
        values = [lv.level for lv in self.levels]
        if values != sorted(set(values)):
            raise ValueError("levels must be listed once each, in increasing order")
        return self

    @property
    def min_level(self) -> int:
        return self.levels[0].level

    @property
    def max_level(self) -> int:
        return self.levels[-1].level

    def anchor(self, level: int) -> str:
        return next((lv.anchor for lv in self.levels if lv.level == level), "")


class Domain(_Strict):
    id: str = Field(pattern=_ID)
    title: str = Field(min_length=1, max_length=200)
    items: tuple[Item, ...] = Field(min_length=1)


class Rubric(_Strict):
    id: str = Field(pattern=_ID)
    version: str = Field(min_length=1, max_length=32)
    title: str = Field(min_length=1, max_length=200)
    levels: tuple[LevelName, ...] = ()
    domains: tuple[Domain, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Rubric:
        seen: set[str] = set()
        for d in self.domains:
            for i in d.items:
                if i.id in seen:
                    raise ValueError(f"item id {i.id!r} is used twice")
                seen.add(i.id)
        if len({d.id for d in self.domains}) != len(self.domains):
            raise ValueError("domain ids must be unique")
        return self

    @property
    def key(self) -> str:
        return f"{self.id}@{self.version}"

    @property
    def items(self) -> dict[str, Item]:
        return {i.id: i for d in self.domains for i in d.items}

    def domain_of(self, item_id: str) -> Domain:
        return next(d for d in self.domains if any(i.id == item_id for i in d.items))

    def level_name(self, level: int) -> str:
        return next((x.name for x in self.levels if x.level == level), str(level))


def _line_of(root: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
    """The 1-based line of the YAML node at ``loc`` (as deep as the document goes)."""
    node, line = root, None
    for key in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            node = None
    if node is not None:
        line = node.start_mark.line + 1
    return line


def parse_rubric(text: str, source: str = "<rubric>") -> Rubric:
    """The rubric in ``text`` (YAML; JSON is YAML too), or a :class:`RubricError` saying where it is wrong."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise RubricError(f"{source}{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise RubricError(f"{source}:1: a rubric is a mapping with id, version, title and domains")
    try:
        return Rubric.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        line = _line_of(root, loc)
        field = ".".join(str(p) for p in loc) or "(top level)"
        where = f"{source}:{line}" if line else source
        raise RubricError(f"{where}: {field}: {first['msg']}") from None


def load_rubric(path: str | Path) -> Rubric:
    path = Path(path)
    return parse_rubric(path.read_text(encoding="utf-8"), str(path))


def _files() -> list[Path]:
    files = sorted(PACKAGED.glob("*.yaml"))
    extra = os.environ.get(ENV_DIR)
    if extra:
        folder = Path(extra)
        files += sorted([*folder.glob("*.yaml"), *folder.glob("*.yml"), *folder.glob("*.json")])
    return files


@cache
def _load_cached(path: Path, mtime: float) -> Rubric:
    return load_rubric(path)


def available() -> dict[str, Rubric]:
    """Every rubric the app knows, by ``id@version``: the packaged one and the program's own."""
    out: dict[str, Rubric] = {}
    for f in _files():
        r = _load_cached(f, f.stat().st_mtime)
        out[r.key] = r
    return out


def get(rubric_id: str, version: str) -> Rubric:
    try:
        return available()[f"{rubric_id}@{version}"]
    except KeyError:
        raise KeyError(f"no rubric {rubric_id} version {version} (packaged or in ${ENV_DIR})") from None


def default() -> Rubric:
    """The newest version of the packaged rubric (the one new assessments use unless told otherwise)."""
    mine = [r for r in available().values() if r.id == DEFAULT_RUBRIC]
    return max(mine, key=lambda r: [int(p) if p.isdigit() else p for p in r.version.split(".")])
