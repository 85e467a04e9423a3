"""Routing rules for `srmed serve --rules FILE`: which received series are upscaled, and with what options. Rules
are tried in order and the first that matches decides; every problem with the file is one line naming file and key.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pydicom

from medical.job import MODES
from training.errors import SrstreamError
from training.toml_file import read_toml

ACTIONS = ("upscale", "skip", "forward")
_BOUNDS = (("min_thickness", "max_thickness"), ("min_matrix", "max_matrix"), ("min_images", "max_images"))
_COUNTS = {"min_matrix", "max_matrix", "min_images", "max_images"}
_TEXTS = {"description", "action", "model", "mode"}


class RulesError(SrstreamError, ValueError):
    """The rules file cannot be used: one line naming the file, the rule or key, and the problem."""


@dataclass(frozen=True)
class SeriesFacts:
    """What a rule can look at in a received series."""

    modality: str
    description: str
    slice_thickness: float | None  # mm; None when the series does not say
    rows: int
    columns: int
    images: int  # instances, or frames of multi-frame instances


def facts_of(folder: Path) -> SeriesFacts:
    """The facts of the series in `folder`, from the headers of its *.dcm files; a field missing is "", 0 or None."""
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(Path(folder).glob("*.dcm")) if p.is_file()]
    first = headers[0] if headers else pydicom.Dataset()
    return SeriesFacts(
        modality=_field(first, "Modality", str, ""),
        description=_field(first, "SeriesDescription", str, ""),
        slice_thickness=_field(first, "SliceThickness", float, None),
        rows=_field(first, "Rows", int, 0),
        columns=_field(first, "Columns", int, 0),
        images=sum(_field(h, "NumberOfFrames", int, 1) for h in headers),
    )


def _field(header: pydicom.Dataset, keyword: str, kind: type, default: Any) -> Any:
    try:  # senders leave fields out, empty or malformed: none of that should stop a series being routed
        return kind(header.get(keyword)) if header.get(keyword) not in (None, "") else default
    except (TypeError, ValueError):
        return default


@dataclass(frozen=True)
class Rule:
    """One [rules.NAME] table: what a series must be to match (None: anything), what then happens, and the
    upscale's options (None: the node's command-line default)."""

    name: str
    modality: tuple[str, ...] | None = None  # upper case: DICOM writes modalities so, a rules file may not
    description: str | None = None  # a regex, searched case-insensitively
    min_thickness: float | None = None
    max_thickness: float | None = None
    min_matrix: int | None = None
    max_matrix: int | None = None
    min_images: int | None = None
    max_images: int | None = None
    action: str = "upscale"
    model: str | None = None
    mode: str | None = None
    scale: float | None = None
    spacing: float | None = None

    def matches(self, facts: SeriesFacts) -> bool:
        """Whether `facts` meets every condition this rule sets (a rule that sets none matches every series)."""
        if self.modality is not None and facts.modality.strip().upper() not in self.modality:
            return False
        if self.description is not None and not re.search(self.description, facts.description, re.IGNORECASE):
            return False
        return (
            _within(facts.slice_thickness, self.min_thickness, self.max_thickness)
            and _within(max(facts.rows, facts.columns), self.min_matrix, self.max_matrix)
            and _within(facts.images, self.min_images, self.max_images)
        )

    def options(self) -> dict[str, object]:
        """The upscale options this rule sets (of model, mode, scale, spacing); the rest stay the node's."""
        chosen = {key: getattr(self, key) for key in ("model", "mode", "scale", "spacing")}
        return {key: value for key, value in chosen.items() if value is not None}


def _within(value: float | None, low: float | None, high: float | None) -> bool:
    if value is None:  # a series that does not say its thickness cannot be shown to be within a bound
        return low is None and high is None
    return (low is None or value >= low) and (high is None or value <= high)


@dataclass(frozen=True)
class Rules:
    """A whole rules file: its rules in the order they are tried, and what happens to a series none matches."""

    path: Path
    rules: tuple[Rule, ...]
    forward_unmatched: bool = False  # True: sent on unchanged; False: only logged as skipped

    def route(self, facts: SeriesFacts) -> Rule | None:
        """The first rule that matches `facts`, or None (then forward_unmatched decides)."""
        return next((rule for rule in self.rules if rule.matches(facts)), None)


def load_rules(path: str | Path) -> Rules:
    """Read and check a rules file; raises RulesError (one line) on anything wrong."""
    path = Path(path)
    data = read_toml(path, RulesError)
    _unknown(f"{path}:", data, {"forward_unmatched", "order", "rules"})
    forward = data.get("forward_unmatched", False)
    if not isinstance(forward, bool):
        raise RulesError(f"{path}: forward_unmatched: expected true or false, got {forward!r}")
    tables = data.get("rules")
    if not isinstance(tables, dict) or not tables:
        raise RulesError(f"{path}: no rules (write each as a [rules.NAME] table)")
    rules = {name: _rule(f"{path}: rule {name!r}:", name, table) for name, table in tables.items()}
    order = data.get("order", list(rules))
    if not isinstance(order, list) or not all(isinstance(name, str) for name in order):
        raise RulesError(f"{path}: order: expected a list of rule names, got {order!r}")
    for i, name in enumerate(order):
        if name not in rules or name in order[:i]:
            raise RulesError(f"{path}: order names rule {name!r} {'twice' if name in rules else 'that does not exist'}")
    left_out = [name for name in rules if name not in order]
    if left_out:
        raise RulesError(f"{path}: rule {left_out[0]!r} is left out of order, so it is never tried")
    return Rules(path=path, rules=tuple(rules[name] for name in order), forward_unmatched=forward)


def _rule(where: str, name: str, table: Any) -> Rule:
    if not isinstance(table, dict):
        raise RulesError(f"{where} expected a table ([rules.{name}]), got {table!r}")
    _unknown(where, table, {f.name for f in fields(Rule)} - {"name"})
    rule = Rule(name=name, **{key: _value(f"{where} {key}", key, value) for key, value in table.items()})
    for low, high in _BOUNDS:
        lowest, highest = getattr(rule, low), getattr(rule, high)
        if lowest is not None and highest is not None and lowest > highest:
            raise RulesError(f"{where} {low} {lowest} is more than {high} {highest}: nothing could match")
    return rule


def _value(where: str, key: str, value: Any) -> Any:
    if key == "modality":
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n.strip() for n in names):
            raise RulesError(f"{where}: expected a string or a list of strings, got {value!r}")
        return tuple(n.strip().upper() for n in names)
    if key in _TEXTS:
        if not isinstance(value, str) or not value:
            raise RulesError(f"{where}: expected a non-empty string, got {value!r}")
        allowed = {"action": ACTIONS, "mode": MODES}.get(key, (value,))
        if value not in allowed:
            raise RulesError(f"{where} {value!r} is not one of {', '.join(allowed)}")
        if key == "description":
            try:
                re.compile(value, re.IGNORECASE)
            except re.error as exc:
                raise RulesError(f"{where} {value!r} is not a valid pattern ({exc})") from None
        return value
    kinds = (int,) if key in _COUNTS else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value) or value <= 0:
        raise RulesError(
            f"{where}: expected {'an integer' if key in _COUNTS else 'a finite number'} above 0, got {value!r}"
        )
    return value if key in _COUNTS else float(value)


def _unknown(where: str, table: dict, known: set[str]) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise RulesError(f"{where} unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
