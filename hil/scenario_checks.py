"""Validate a parsed scenario file (FORMAT.md, version 1): every problem at once, never the first.

The checks alone decide what a valid file is; the loader builds the typed `Scenario` only from
data that passed them, so it can trust shapes and types. Each problem carries the key path the
way a person reads the file: list entries by their id (`sessions[S0042].depart_s`), by position
where they have none (`events[2].kw`, `tariff.periods[1].end`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

NAME_PATTERN = re.compile(r"[a-z0-9-]+")
_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
MINUTES_PER_DAY = 24 * 60

Check = Callable[[float], str | None]  # a reason if the number is out of range, else None


@dataclass(frozen=True, slots=True)
class ScenarioProblem:
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
    return lambda v: None if v >= low else f"must be at least {low:g}, got {show(v)}"


def above(low: float) -> Check:
    return lambda v: None if v > low else f"must be above {low:g}, got {show(v)}"


def within(low: float, high: float) -> Check:
    def check(v: float) -> str | None:
        return None if low <= v <= high else f"must be within {low:g}..{high:g}, got {show(v)}"

    return check


def efficiency(v: float) -> str | None:
    return None if 0 < v <= 1 else f"must be above 0 and at most 1, got {show(v)}"


def whole_seconds(v: float) -> str | None:
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
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class Problems:
    """Collects problems while typed readers pull values out of the parsed JSON."""

    def __init__(self) -> None:
        self.found: list[ScenarioProblem] = []

    def add(self, path: str, reason: str) -> None:
        self.found.append(ScenarioProblem(path or "(file)", reason))

    def obj(self, value: object, path: str) -> dict[str, Any] | None:
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


def check_tariff_day(p: Problems, spans: Sequence[tuple[int, int, int]]) -> None:
    """Periods (index, start, end) must cover 00:00-24:00 once: no gap, no overlap."""
    covered = 0
    last_index = -1
    for index, start, end in sorted(spans, key=lambda span: (span[1], span[2])):
        if start > covered:
            p.add("tariff.periods", f"{hhmm(covered)}-{hhmm(start)} is not covered by any period")
        elif start < covered:
            p.add(f"tariff.periods[{index}]", f"overlaps periods[{last_index}]")
        if end > covered:
            covered, last_index = end, index
    if covered < MINUTES_PER_DAY:
        p.add("tariff.periods", f"{hhmm(covered)}-24:00 is not covered by any period")


TOP_REQUIRED = (
    "name", "description", "start", "duration_s", "site", "tariff",
    "chargers", "sessions", "events",
)  # fmt: skip
TOP_OPTIONAL = ("pv", "battery")  # absent or null: the site has none
SITE_KEYS = ("grid_limit_kw", "export_limit_kw", "phase_limit_a", "voltage_v", "base_load_kw")
BATTERY_KEYS = (
    "capacity_kwh", "max_charge_kw", "max_discharge_kw", "soc_init", "soc_min", "soc_max",
    "charge_efficiency", "discharge_efficiency",
)  # fmt: skip
CHARGER_KEYS = ("id", "kind", "max_kw", "phases", "connectors")
SESSION_KEYS = ("id", "charger", "connector", "arrive_s", "depart_s", "energy_kwh", "max_kw")
EVENT_KEYS = {
    "grid_limit": ("kw",),
    "meter_outage": ("duration_s",),
    "charger_offline": ("charger", "duration_s"),
}
PHASE_NAMES = ("L1", "L2", "L3")


@dataclass(slots=True)
class Known:
    """The chargers sessions and events may name, as far as the chargers list could be read."""

    # charger id -> its connector ids, or None when the charger's entry has a problem of its
    # own (then sessions naming it are not checked further: that problem is reported already)
    connectors: dict[str, frozenset[int] | None] = field(default_factory=dict)
    complete: bool = True  # False when an entry has no readable id: "no charger X" is unsure

    def lacks(self, charger_id: str) -> bool:
        return self.complete and charger_id not in self.connectors


def check_scenario(data: object) -> list[ScenarioProblem]:
    """Every problem of a parsed scenario file, section by section; empty when it is valid."""
    p = Problems()
    top = p.obj(data, "")
    if top is None:
        return p.found
    p.keys(top, "", TOP_REQUIRED, TOP_OPTIONAL)
    name = p.string(top, "name", "")
    if name is not None and not NAME_PATTERN.fullmatch(name):
        p.add("name", f"must be lower-case letters, digits and '-', got {show(name)}")
    p.string(top, "description", "")
    _check_start(p, top)
    duration = p.number(top, "duration_s", "", whole_seconds)
    if "site" in top:
        _check_site(p, top["site"])
    if top.get("pv") is not None:
        _check_pv(p, top["pv"])
    if top.get("battery") is not None:
        _check_battery(p, top["battery"])
    if "tariff" in top:
        _check_tariff(p, top["tariff"])
    known = _check_chargers(p, top)
    _check_sessions(p, top, known, duration)
    _check_events(p, top, known, duration)
    return p.found


def _check_start(p: Problems, top: dict[str, Any]) -> None:
    text = p.string(top, "start", "")
    if text is None:
        return
    try:
        start = datetime.fromisoformat(text)
    except ValueError:
        p.add("start", f"not an ISO-8601 timestamp, got {show(text)}")
        return
    if start.tzinfo is None:
        p.add("start", "needs a UTC offset (tariff times are local to it), e.g. +08:00")


def _check_site(p: Problems, value: object) -> None:
    site = p.obj(value, "site")
    if site is None:
        return
    p.keys(site, "site", SITE_KEYS)
    p.number(site, "grid_limit_kw", "site", at_least(0))
    p.number(site, "export_limit_kw", "site", at_least(0))
    p.number(site, "voltage_v", "site", above(0))
    limits = site.get("phase_limit_a")
    if limits is not None:
        if isinstance(limits, list) and len(limits) == 3:
            for index, amps in enumerate(limits):
                p.number_value(amps, f"site.phase_limit_a[{index}]", above(0))
        else:
            p.add("site.phase_limit_a", f"must be null or [L1, L2, L3] amps, got {show(limits)}")
    if "base_load_kw" in site:
        check_curve(p, site["base_load_kw"], "site.base_load_kw", at_least(0), "kW")


def _check_pv(p: Problems, value: object) -> None:
    pv = p.obj(value, "pv")
    if pv is None:
        return
    p.keys(pv, "pv", ("peak_kw", "profile"))
    p.number(pv, "peak_kw", "pv", above(0))
    if "profile" in pv:
        check_curve(p, pv["profile"], "pv.profile", within(0, 1), "fraction")


def _check_battery(p: Problems, value: object) -> None:
    battery = p.obj(value, "battery")
    if battery is None:
        return
    p.keys(battery, "battery", BATTERY_KEYS)
    p.number(battery, "capacity_kwh", "battery", above(0))
    p.number(battery, "max_charge_kw", "battery", at_least(0))
    p.number(battery, "max_discharge_kw", "battery", at_least(0))
    soc_min, soc_init, soc_max = (
        p.number(battery, key, "battery", within(0, 1))
        for key in ("soc_min", "soc_init", "soc_max")
    )
    p.number(battery, "charge_efficiency", "battery", efficiency)
    p.number(battery, "discharge_efficiency", "battery", efficiency)
    if soc_min is None or soc_init is None or soc_max is None:
        return
    if soc_min > soc_max:
        p.add("battery.soc_min", "above soc_max")
    elif soc_init < soc_min:
        p.add("battery.soc_init", "below soc_min")
    elif soc_init > soc_max:
        p.add("battery.soc_init", "above soc_max")


def _check_tariff(p: Problems, value: object) -> None:
    tariff = p.obj(value, "tariff")
    if tariff is None:
        return
    p.keys(tariff, "tariff", ("periods", "export_price", "currency"))
    p.number(tariff, "export_price", "tariff")
    p.string(tariff, "currency", "tariff", empty=False)
    periods = p.entries(tariff, "periods", "tariff", by_id=False)
    if periods is None:
        return
    if not periods and not tariff["periods"]:
        p.add("tariff.periods", "must list at least one period")
        return
    spans = []
    for index, path, period in periods:
        p.keys(period, path, ("start", "end", "price", "name"))
        p.number(period, "price", path)
        p.string(period, "name", path, empty=False)
        start = _clock(p, period, "start", path)
        end = _clock(p, period, "end", path)
        if start is not None and end is not None:
            if end <= start:
                p.add(f"{path}.end", f"not after start ({hhmm(start)}); split a period at midnight")
            else:
                spans.append((index, start, end))
    if len(spans) == len(tariff["periods"]):  # a broken period would show up as a false gap
        check_tariff_day(p, spans)


def _clock(p: Problems, period: dict[str, Any], key: str, path: str) -> int | None:
    text = p.string(period, key, path)
    if text is None:
        return None
    minutes = clock_minutes(text, end=key == "end")
    if minutes is None:
        allowed = '"HH:MM" from 00:00 to 24:00' if key == "end" else '"HH:MM" from 00:00 to 23:59'
        p.add(join(path, key), f"must be {allowed}, got {show(text)}")
    return minutes


def _check_chargers(p: Problems, top: dict[str, Any]) -> Known:
    """Each charger's own keys; returns what sessions and events may refer to."""
    entries = p.entries(top, "chargers", "")
    if entries is None:
        return Known(complete=False)
    p.unique_ids(entries, "chargers")
    known = Known(complete=len(entries) == len(top["chargers"]))
    for _, path, charger in entries:
        before = len(p.found)
        p.keys(charger, path, CHARGER_KEYS, ("phase", "min_a", "max_a"))
        charger_id = p.string(charger, "id", path, empty=False)
        kind = p.choice(charger, "kind", path, ("dc", "ac"))
        p.number(charger, "max_kw", path, above(0))
        phases = p.choice(charger, "phases", path, (1, 3))
        _check_wiring(p, charger, path, phases)
        if kind == "ac":
            _check_current_range(p, charger, path)
        elif kind == "dc":
            for key in ("min_a", "max_a"):
                if charger.get(key) is not None:
                    p.add(join(path, key), "only for AC chargers (a DC connector is set in kW)")
        connectors = _check_connectors(p, charger, path)
        if charger_id is None:
            known.complete = False
        elif charger_id not in known.connectors:
            known.connectors[charger_id] = connectors if len(p.found) == before else None
    return known


def _check_wiring(p: Problems, charger: dict[str, Any], path: str, phases: object) -> None:
    phase = charger.get("phase")
    if phases == 1 and phase not in PHASE_NAMES:
        got = "" if phase is None else f", got {show(phase)}"
        p.add(join(path, "phase"), f"a 1-phase charger needs L1, L2 or L3{got}")
    elif phases == 3 and phase is not None:
        p.add(join(path, "phase"), "only for 1-phase chargers (a 3-phase one uses all three)")


def _check_current_range(p: Problems, charger: dict[str, Any], path: str) -> None:
    for key in ("min_a", "max_a"):
        if charger.get(key) is None:
            p.add(join(path, key), "an AC charger needs min_a and max_a (amps per phase)")
    min_a = p.number(charger, "min_a", path, above(0)) if charger.get("min_a") is not None else None
    max_a = p.number(charger, "max_a", path, above(0)) if charger.get("max_a") is not None else None
    if min_a is not None and max_a is not None and min_a > max_a:
        p.add(join(path, "min_a"), f"above max_a ({max_a:g})")


def _check_connectors(p: Problems, charger: dict[str, Any], path: str) -> frozenset[int]:
    entries = p.entries(charger, "connectors", path)
    if entries is None:
        return frozenset()
    where = join(path, "connectors")
    if not entries and not charger["connectors"]:
        p.add(where, "must list at least one connector")
    p.unique_ids(entries, where)
    ids = set()
    for _, connector_path, connector in entries:
        p.keys(connector, connector_path, ("id", "max_kw"))
        connector_id = p.positive_int(connector, "id", connector_path)
        p.number(connector, "max_kw", connector_path, above(0))
        if connector_id is not None:
            ids.add(connector_id)
    return frozenset(ids)


def _check_sessions(p: Problems, top: dict[str, Any], known: Known, duration: float | None) -> None:
    entries = p.entries(top, "sessions", "")
    if entries is None:
        return
    p.unique_ids(entries, "sessions")
    plugged: dict[tuple[str, int], list[tuple[float, float, str]]] = {}
    for _, path, session in entries:
        p.keys(session, path, SESSION_KEYS)
        session_id = p.string(session, "id", path, empty=False)
        charger = p.string(session, "charger", path, empty=False)
        connector = p.positive_int(session, "connector", path)
        arrive = p.number(session, "arrive_s", path, at_least(0))
        depart = p.number(session, "depart_s", path, at_least(0))
        p.number(session, "energy_kwh", path, above(0))
        p.number(session, "max_kw", path, above(0))
        slot_ok = _check_slot(p, path, known, charger, connector)
        if arrive is not None and duration is not None and arrive >= duration:
            p.add(join(path, "arrive_s"), f"at or after the end of the run ({duration:g} s)")
        if arrive is None or depart is None:
            continue
        if depart < arrive:
            p.add(join(path, "depart_s"), "before arrive_s")
        elif depart == arrive:
            p.add(join(path, "depart_s"), "equal to arrive_s (a car must stay a while)")
        elif slot_ok and charger is not None and connector is not None:
            label = session_id if session_id is not None else path
            plugged.setdefault((charger, connector), []).append((arrive, depart, label))
    _check_overlaps(p, plugged)


def _check_slot(
    p: Problems, path: str, known: Known, charger: str | None, connector: int | None
) -> bool:
    """Whether the session's charger and connector exist (unsure counts as no)."""
    if charger is None:
        return False
    if known.lacks(charger):
        p.add(join(path, "charger"), f"no charger {charger}")
        return False
    connectors = known.connectors.get(charger)
    if connectors is None or connector is None:
        return False
    if connector not in connectors:
        p.add(join(path, "connector"), f"charger {charger} has no connector {connector}")
        return False
    return True


def _check_overlaps(
    p: Problems, plugged: dict[tuple[str, int], list[tuple[float, float, str]]]
) -> None:
    """One car per connector: a session may arrive when the one before departs, not earlier."""
    for (charger, connector), sessions in plugged.items():
        sessions.sort()
        occupant: tuple[float, float, str] | None = None
        for arrive, depart, label in sessions:
            if occupant is not None and arrive < occupant[1]:
                p.add(
                    f"sessions[{label}].arrive_s",
                    f"overlaps {occupant[2]} on {charger} connector {connector} "
                    f"(plugged in until {occupant[1]:g} s)",
                )
            if occupant is None or depart > occupant[1]:
                occupant = (arrive, depart, label)


def _check_events(p: Problems, top: dict[str, Any], known: Known, duration: float | None) -> None:
    entries = p.entries(top, "events", "", by_id=False)
    for _, path, event in entries or ():
        kind = p.choice(event, "type", path, tuple(EVENT_KEYS))
        if kind is None:
            any_type = dict.fromkeys(key for keys in EVENT_KEYS.values() for key in keys)
            p.keys(event, path, ("t_s", "type"), tuple(any_type))
        else:
            p.keys(event, path, ("t_s", "type", *EVENT_KEYS[kind]))
        t_s = p.number(event, "t_s", path, at_least(0))
        if t_s is not None and duration is not None and t_s > duration:
            p.add(join(path, "t_s"), f"after the end of the run ({duration:g} s)")
        if kind == "grid_limit":
            p.number(event, "kw", path, at_least(0))
        if kind in ("meter_outage", "charger_offline"):
            p.number(event, "duration_s", path, above(0))
        if kind == "charger_offline":
            charger = p.string(event, "charger", path, empty=False)
            if charger is not None and known.lacks(charger):
                p.add(join(path, "charger"), f"no charger {charger}")
