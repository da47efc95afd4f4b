"""Validate a parsed scenario file (FORMAT.md, version 1): every problem at once, never the first.

The checks alone decide what a valid file is; the loader builds the typed `Scenario` only from
data that passed them, so it can trust shapes and types. Each problem carries the key path the
way a person reads the file: list entries by their id (`sessions[S0042].depart_s`), by position
where they have none (`events[2].kw`, `tariff.periods[1].end`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hil.scenario_values import (
    MINUTES_PER_DAY,
    Problems,
    ScenarioProblem,
    above,
    at_least,
    check_curve,
    clock_minutes,
    efficiency,
    hhmm,
    join,
    show,
    whole_seconds,
    within,
)

NAME_PATTERN = re.compile(r"[a-z0-9-]+")


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
