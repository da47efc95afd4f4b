"""Read a scenario file (../shared/scenarios/FORMAT.md, version 1) into a typed `Scenario`.

A bad file is refused as a whole: `ScenarioError` lists every problem at once, one per line, as
`<file>: <key path>: <reason>`, list entries named by id (`sessions[S0042].depart_s: before
arrive_s`), so a hand-edited scenario is fixed in one pass instead of one error per run.

All keys of the format are required except `pv` and `battery`, which may be absent or `null` for
a site without PV or without a battery. `events` is required but may be `[]`; the events come
back sorted by `t_s` whatever order the file lists them in. `site.phase_limit_a` is required and
may be `null` (no per-phase limit).

`load_scenario("reference-station")` reads `hil/scenarios/reference-station.json`: a string that
is a bare scenario name (`[a-z0-9-]+`) means a shipped scenario; anything else is a path.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from hil.scenario import (
    BatterySpec,
    ChargerOfflineEvent,
    ChargerSpec,
    ConnectorSpec,
    Curve,
    Event,
    GridLimitEvent,
    MeterOutageEvent,
    Phase,
    PvSpec,
    Scenario,
    SessionSpec,
    SiteSpec,
    Tariff,
    TariffPeriod,
)
from hil.scenario_checks import NAME_PATTERN, check_scenario
from hil.scenario_values import JsonObject, ScenarioProblem, clock_minutes

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"


class ScenarioError(Exception):
    """The scenario cannot be used; the message is every problem, one line each."""

    def __init__(self, origin: str, problems: Sequence[ScenarioProblem]) -> None:
        self.origin = origin
        self.problems = list(problems)
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [f"{self.origin}: {p.path}: {p.reason}" for p in self.problems]


def scenario_names() -> list[str]:
    """The shipped scenarios, by the name `load_scenario` accepts."""
    return sorted(path.stem for path in SCENARIO_DIR.glob("*.json"))


def scenario_path(path_or_name: str | Path) -> Path:
    if isinstance(path_or_name, str) and NAME_PATTERN.fullmatch(path_or_name):
        return SCENARIO_DIR / f"{path_or_name}.json"
    return Path(path_or_name)


def load_scenario(path_or_name: str | Path) -> Scenario:
    """The scenario in a file (or a shipped one by name), or `ScenarioError` with every problem."""
    path = scenario_path(path_or_name)
    origin = str(path)
    if not path.is_file() and path.parent == SCENARIO_DIR and path_or_name == path.stem:
        known = ", ".join(scenario_names()) or "none"
        raise ScenarioError(origin, [_whole(f"no scenario named {path.stem} (known: {known})")])
    data = read_json(path)
    problems = check_scenario(data)
    if problems:
        raise ScenarioError(origin, problems)
    return build_scenario(data)


def read_json(path: Path) -> Any:
    """The parsed file; a syntax error names its line and column."""
    origin = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(origin, [_whole("file not found")]) from None
    except IsADirectoryError:
        raise ScenarioError(origin, [_whole("is a directory, not a file")]) from None
    except PermissionError:
        raise ScenarioError(origin, [_whole("permission denied")]) from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(origin, [_whole(f"not UTF-8 text: {exc}")]) from None
    try:
        return json.loads(text, object_pairs_hook=JsonObject)
    except json.JSONDecodeError as exc:
        where = ScenarioProblem(f"line {exc.lineno}, column {exc.colno}", f"JSON error: {exc.msg}")
        raise ScenarioError(origin, [where]) from None


def _whole(reason: str) -> ScenarioProblem:
    return ScenarioProblem("(file)", reason)


def build_scenario(data: dict[str, Any]) -> Scenario:
    """The typed scenario from data `check_scenario` passed: shapes and types are trusted here."""
    site = data["site"]
    limits = site["phase_limit_a"]
    return Scenario(
        name=data["name"],
        description=data["description"],
        start=datetime.fromisoformat(data["start"]),
        duration_s=int(data["duration_s"]),
        site=SiteSpec(
            grid_limit_kw=float(site["grid_limit_kw"]),
            export_limit_kw=float(site["export_limit_kw"]),
            phase_limit_a=None if limits is None else _three(limits),
            voltage_v=float(site["voltage_v"]),
            base_load_kw=_curve(site["base_load_kw"]),
        ),
        pv=_pv(data.get("pv")),
        battery=_battery(data.get("battery")),
        tariff=_tariff(data["tariff"]),
        chargers=tuple(_charger(charger) for charger in data["chargers"]),
        sessions=tuple(_session(session) for session in data["sessions"]),
        events=tuple(sorted((_event(event) for event in data["events"]), key=lambda e: e.t_s)),
    )


def _three(amps: list[float]) -> tuple[float, float, float]:
    return float(amps[0]), float(amps[1]), float(amps[2])


def _curve(points: list[list[float]]) -> Curve:
    return Curve(tuple(float(t) for t, _ in points), tuple(float(v) for _, v in points))


def _pv(pv: dict[str, Any] | None) -> PvSpec | None:
    if pv is None:
        return None
    return PvSpec(peak_kw=float(pv["peak_kw"]), profile=_curve(pv["profile"]))


def _battery(battery: dict[str, Any] | None) -> BatterySpec | None:
    if battery is None:
        return None
    return BatterySpec(**{key: float(value) for key, value in battery.items()})


def _tariff(tariff: dict[str, Any]) -> Tariff:
    periods = [
        TariffPeriod(
            name=period["name"],
            start_min=_minutes(period["start"]),
            end_min=_minutes(period["end"], end=True),
            price=float(period["price"]),
        )
        for period in tariff["periods"]
    ]
    return Tariff(
        periods=tuple(sorted(periods, key=lambda period: period.start_min)),
        export_price=float(tariff["export_price"]),
        currency=tariff["currency"],
    )


def _minutes(text: str, *, end: bool = False) -> int:
    minutes = clock_minutes(text, end=end)
    assert minutes is not None, "checked by check_scenario"
    return minutes


def _charger(charger: dict[str, Any]) -> ChargerSpec:
    kind: Literal["dc", "ac"] = "ac" if charger["kind"] == "ac" else "dc"
    phases: Literal[1, 3] = 1 if charger["phases"] == 1 else 3
    phase: Phase | None = charger.get("phase")
    min_a, max_a = charger.get("min_a"), charger.get("max_a")
    return ChargerSpec(
        id=charger["id"],
        kind=kind,
        max_kw=float(charger["max_kw"]),
        phases=phases,
        phase=phase if phases == 1 else None,
        min_a=None if min_a is None else float(min_a),
        max_a=None if max_a is None else float(max_a),
        connectors=tuple(
            ConnectorSpec(id=c["id"], max_kw=float(c["max_kw"])) for c in charger["connectors"]
        ),
    )


def _session(session: dict[str, Any]) -> SessionSpec:
    return SessionSpec(
        id=session["id"],
        charger=session["charger"],
        connector=session["connector"],
        arrive_s=float(session["arrive_s"]),
        depart_s=float(session["depart_s"]),
        energy_kwh=float(session["energy_kwh"]),
        max_kw=float(session["max_kw"]),
    )


def _event(event: dict[str, Any]) -> Event:
    t_s = float(event["t_s"])
    if event["type"] == "grid_limit":
        return GridLimitEvent(t_s=t_s, kw=float(event["kw"]))
    if event["type"] == "meter_outage":
        return MeterOutageEvent(t_s=t_s, duration_s=float(event["duration_s"]))
    return ChargerOfflineEvent(
        t_s=t_s, charger=event["charger"], duration_s=float(event["duration_s"])
    )
