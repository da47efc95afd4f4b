"""Read and validate parsed JSON values generically, collecting each problem under its key path.

Nothing here knows about chargers, sessions or tariffs: `scenario_checks` builds the section
checks from these readers.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
MINUTES_PER_DAY = 24 * 60

Check = Callable[[float], str | None]  # a reason if the number is out of range, else None


@dataclass(frozen=True, slots=True)
class ScenarioProblem:
    """One problem: where it is in the file and what is wrong there."""

    path: str  # "(file)" for the file as a whole
    reason: str


class JsonObject(dict[str, Any]):
    """A JSON object that remembers keys given twice (plain `json` silently keeps the last)."""

    def __init__(self, pairs: Sequence[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        keys = [key for key, _ in pairs]
        self.duplicates = sorted({key for key in keys if keys.count(key) > 1})


def show(value: object) -> str:
    """A value as the file spells it, cut short: `"abc"`, `true`, `null`, `[1, 2]`."""
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def at_least(low: float) -> Check:
    """A check that the number is `low` or more."""
    return lambda v: None if v >= low else f"must be at least {low:g}, got {show(v)}"


def above(low: float) -> Check:
    """A check that the number is more than `low`."""
    return lambda v: None if v > low else f"must be above {low:g}, got {show(v)}"


def within(low: float, high: float) -> Check:
    """A check that the number is from `low` to `high`, both included."""

    def check(v: float) -> str | None:
        return None if low <= v <= high else f"must be within {low:g}..{high:g}, got {show(v)}"

    return check


def efficiency(v: float) -> str | None:
    """Check a fraction above 0 and at most 1."""
    return None if 0 < v <= 1 else f"must be above 0 and at most 1, got {show(v)}"


def whole_seconds(v: float) -> str | None:
    """Check a positive whole number of seconds."""
    if v <= 0:
        return f"must be above 0, got {show(v)}"
    return None if float(v).is_integer() else f"must be a whole number of seconds, got {show(v)}"


def clock_minutes(text: str, *, end: bool = False) -> int | None:
    """'HH:MM' -> minutes after midnight; '24:00' only as the end of a period."""
    if end and text == "24:00":
        return MINUTES_PER_DAY
    match = _CLOCK.fullmatch(text)
    return None if match is None else int(match[1]) * 60 + int(match[2])


def hhmm(minutes: int) -> str:
    """Minutes after midnight -> 'HH:MM'."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def join(path: str, key: str) -> str:
    """The key path of `key` inside `path` (the top level has the empty path)."""
    return f"{path}.{key}" if path else key


class Problems:
    """Collects problems while typed readers pull values out of the parsed JSON."""

    def __init__(self) -> None:
        self.found: list[ScenarioProblem] = []

    def add(self, path: str, reason: str) -> None:
        """Record a problem; an empty path means the file as a whole."""
        self.found.append(ScenarioProblem(path or "(file)", reason))

    def obj(self, value: object, path: str) -> dict[str, Any] | None:
        """The value if it is an object, else None (reported)."""
        if isinstance(value, dict):
            return value
        self.add(path, f"must be an object, got {show(value)}")
        return None

    def keys(
        self,
        obj: dict[str, Any],
        path: str,
        required: Sequence[str],
        optional: Sequence[str] = (),
    ) -> None:
        """Report missing required keys, unknown keys and keys given twice."""
        for key in required:
            if key not in obj:
                self.add(join(path, key), "required key is missing")
        allowed = (*required, *optional)
        for key in obj:
            if key not in allowed:
                self.add(join(path, key), f"unknown key (allowed: {', '.join(allowed)})")
        for key in getattr(obj, "duplicates", ()):
            self.add(join(path, key), "given twice (JSON keeps only the last)")

    def number_value(
        self, value: object, path: str, check: Check | None = None, what: str = ""
    ) -> float | None:
        """Numbers only: `true` is not 1 here, and NaN or Infinity are refused."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add(path, f"{what}must be a number, got {show(value)}")
            return None
        if not math.isfinite(value):
            self.add(path, f"{what}must be a finite number, got {value}")
            return None
        reason = None if check is None else check(value)
        if reason is not None:
            self.add(path, what + reason)
            return None
        return value

    def number(
        self, obj: dict[str, Any], key: str, path: str, check: Check | None = None
    ) -> float | None:
        """`obj[key]` read by `number_value`; None if absent (keys() reports that) or bad."""
        if key not in obj:
            return None  # reported by keys()
        return self.number_value(obj[key], join(path, key), check)

    def positive_int(self, obj: dict[str, Any], key: str, path: str) -> int | None:
        """A whole number from 1 (connector ids, as in OCPP: 0 would be the whole charger)."""
        if key not in obj:
            return None
        value = obj[key]
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        self.add(join(path, key), f"must be a positive whole number, got {show(value)}")
        return None

    def string(self, obj: dict[str, Any], key: str, path: str, *, empty: bool = True) -> str | None:
        """`obj[key]` if it is a string (not blank unless `empty`), else None."""
        if key not in obj:
            return None
        value = obj[key]
        if not isinstance(value, str):
            self.add(join(path, key), f"must be a string, got {show(value)}")
            return None
        if not empty and not value.strip():
            self.add(join(path, key), "must not be empty")
            return None
        return value

    def choice(self, obj: dict[str, Any], key: str, path: str, allowed: Sequence[object]) -> Any:
        """One of `allowed` exactly (so `true` is not 1 and 3.0 is not 3), else None."""
        if key not in obj:
            return None
        value = obj[key]
        if any(type(value) is type(a) and value == a for a in allowed):
            return value
        names = ", ".join(str(a) for a in allowed[:-1]) + f" or {allowed[-1]}"
        self.add(join(path, key), f"must be {names}, got {show(value)}")
        return None

    def entries(
        self, obj: dict[str, Any], key: str, path: str, *, by_id: bool = True
    ) -> list[tuple[int, str, dict[str, Any]]] | None:
        """The objects of a list with their paths, named by id where they have a usable one."""
        if key not in obj:
            return None
        where = join(path, key)
        items = obj[key]
        if not isinstance(items, list):
            self.add(where, f"must be a list, got {show(items)}")
            return None
        found = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                self.add(f"{where}[{index}]", f"must be an object, got {show(item)}")
                continue
            label = item.get("id") if by_id else None
            usable = (isinstance(label, str) and label.strip()) or type(label) is int
            found.append((index, f"{where}[{label if usable else index}]", item))
        return found

    def unique_ids(self, entries: Sequence[tuple[int, str, dict[str, Any]]], path: str) -> None:
        """Report every id that more than one entry uses."""
        counts: dict[object, int] = {}
        for _, _, item in entries:
            key = item.get("id")
            if isinstance(key, str | int) and not isinstance(key, bool):
                counts[key] = counts.get(key, 0) + 1
        for key, count in counts.items():
            if count > 1:
                self.add(f"{path}[{key}].id", f"used {count} times; must be unique")


def check_curve(p: Problems, value: object, path: str, check: Check, what: str) -> None:
    """`[[t_s, value], ...]`: non-empty, times at least 0 and increasing, values in range."""
    if not isinstance(value, list) or not value:
        p.add(path, f"must be a non-empty list of [t_s, {what}] points, got {show(value)}")
        return
    last: float | None = None
    for index, point in enumerate(value):
        here = f"{path}[{index}]"
        if not isinstance(point, list) or len(point) != 2:
            p.add(here, f"must be a [t_s, {what}] pair, got {show(point)}")
            continue
        t_s = p.number_value(point[0], here, at_least(0), "time ")
        p.number_value(point[1], here, check, what + " ")
        if t_s is None:
            continue
        if last is not None and t_s <= last:
            p.add(here, "times must increase")
        last = t_s if last is None else max(last, t_s)
