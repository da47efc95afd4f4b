"""Scenario files: the shipped ones load as built; a bad file names every mistake by key path."""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hil.scenario import ChargerOfflineEvent, GridLimitEvent, MeterOutageEvent
from hil.scenario_loader import (
    SCENARIO_DIR,
    ScenarioError,
    build_scenario,
    load_scenario,
    scenario_names,
)
from hil.scenarios.make_ac_car_park import car_park
from hil.scenarios.make_ac_car_park_week import SEED, START, prior_week, week
from hil.scenarios.make_reference_fault_day import fault_day

HOUR = 3600
Mutation = Callable[[dict[str, Any]], None]


def test_reference_station_loads_as_built() -> None:
    station = load_scenario("reference-station")
    assert station.name == "reference-station"
    assert station.start.isoformat() == "2025-07-15T00:00:00+08:00"
    assert station.duration_s == 86400
    assert len(station.chargers) == 91
    assert sum(len(charger.connectors) for charger in station.chargers) == 182
    assert len(station.sessions) == 661
    assert station.events == ()
    charger = station.charger("C001")
    assert (charger.kind, charger.max_kw, charger.phases, charger.phase) == ("dc", 120, 3, None)
    assert (charger.min_a, charger.max_a) == (None, None)
    assert [(c.id, c.max_kw) for c in charger.connectors] == [(1, 120.0), (2, 120.0)]
    session = next(s for s in station.sessions if s.id == "S0042")
    assert (session.charger, session.connector) == ("C089", 2)
    assert (session.arrive_s, session.depart_s) == (3365, 6880)
    assert (session.energy_kwh, session.max_kw) == (52.6, 106.5)
    assert station.price_at(9 * HOUR) == 1.05
    assert station.price_at(12 * HOUR) == 0.65
    assert station.tariff.currency == "CNY"
    assert station.grid_limit_at(12 * HOUR) == 1200
    assert station.site.phase_limit_a is None
    assert station.pv is not None
    assert station.pv.available_kw(12 * HOUR) == pytest.approx(1100 * 0.8189)
    assert station.battery is not None
    assert station.battery.capacity_kwh == 2000


def test_reference_station_is_a_byte_copy_of_the_shared_one() -> None:
    shared = SCENARIO_DIR.parents[2] / "shared" / "scenarios" / "reference-station.json"
    if not shared.is_file():
        pytest.skip("no ../shared next to this clone")
    assert (SCENARIO_DIR / "reference-station.json").read_bytes() == shared.read_bytes()


@pytest.mark.parametrize("name", scenario_names())
def test_every_shipped_scenario_loads(name: str) -> None:
    scenario = load_scenario(SCENARIO_DIR / f"{name}.json")
    assert scenario.name == name
    assert scenario.sessions


def test_shipped_scenarios() -> None:
    assert {"reference-station", "reference-fault-day", "ac-car-park", "ac-car-park-week"} <= set(
        scenario_names()
    )


def test_generated_files_match_their_scripts() -> None:
    """Nobody hand-edited a generated file (or forgot to rerun its script)."""
    reference = json.loads((SCENARIO_DIR / "reference-station.json").read_text())
    generated = (
        ("ac-car-park", car_park()),
        ("reference-fault-day", fault_day(reference)),
        ("ac-car-park-week", week(SEED, START, "ac-car-park-week")),
    )
    for name, data in generated:
        text = (SCENARIO_DIR / f"{name}.json").read_text(encoding="utf-8")
        assert text == json.dumps(data, indent=1) + "\n", name


def test_fault_day_events_take_effect() -> None:
    day = load_scenario("reference-fault-day")
    assert [type(e) for e in day.events] == [
        MeterOutageEvent, ChargerOfflineEvent, GridLimitEvent, GridLimitEvent,
    ]  # fmt: skip
    assert day.grid_limit_at(18 * HOUR - 1) == 1200
    assert day.grid_limit_at(18 * HOUR) == 720
    assert day.grid_limit_at(19 * HOUR - 1) == 720
    assert day.grid_limit_at(19 * HOUR) == 1200
    outage = 15 * HOUR + 12 * 60
    assert not day.meter_out(outage - 1)
    assert day.meter_out(outage)
    assert day.meter_out(outage + 89)
    assert not day.meter_out(outage + 90)
    assert not day.charger_offline("C041", 17 * HOUR - 1)
    assert day.charger_offline("C041", 17 * HOUR)
    assert day.charger_offline("C041", 17.5 * HOUR - 1)
    assert not day.charger_offline("C041", 17.5 * HOUR)
    assert not day.charger_offline("C042", 17 * HOUR)


def test_fault_day_keeps_the_reference_day_but_clouds_noon() -> None:
    day, reference = load_scenario("reference-fault-day"), load_scenario("reference-station")
    assert day.sessions == reference.sessions
    assert day.chargers == reference.chargers
    assert day.tariff == reference.tariff
    assert day.pv is not None
    assert reference.pv is not None
    for t_s in (11 * HOUR, 11.6 * HOUR, 12.4 * HOUR, 14 * HOUR):  # outside the front
        assert day.pv.available_kw(t_s) == pytest.approx(reference.pv.available_kw(t_s), abs=0.1)
    for t_s in (11.75 * HOUR, 12 * HOUR, 12.3 * HOUR):  # under the cloud
        clear = reference.pv.available_kw(t_s)
        assert day.pv.available_kw(t_s) == pytest.approx(0.2 * clear, abs=0.1)


def test_ac_car_park_makes_one_phase_the_tight_one() -> None:
    park = load_scenario("ac-car-park")
    assert len(park.chargers) == 10
    assert all(c.kind == "ac" and c.min_a == 6 for c in park.chargers)
    single = Counter(c.phase for c in park.chargers if c.phases == 1)
    assert single == {"L1": 3, "L2": 1, "L3": 1}
    assert {(c.phases, c.max_kw, c.max_a) for c in park.chargers} == {(3, 11, 16), (1, 7.4, 32)}
    assert park.site.phase_limit_a == (63, 63, 63)
    assert park.site.grid_limit_kw == pytest.approx(63 * 230 * 3 / 1000, abs=1)
    assert park.pv is not None
    assert park.pv.peak_kw == 30
    assert park.pv.available_kw(0) == 0
    assert park.pv.available_kw(13.5 * HOUR) > 20
    assert park.price_at(9 * HOUR) > park.price_at(12 * HOUR) > park.price_at(3 * HOUR)


# A small valid scenario; each broken variant below changes one thing in it.
def tiny() -> dict[str, Any]:
    return {
        "name": "tiny",
        "description": "two chargers, three cars",
        "start": "2025-01-06T08:00:00+01:00",
        "duration_s": 7200,
        "site": {
            "grid_limit_kw": 50,
            "export_limit_kw": 10,
            "phase_limit_a": [63, 63, 63],
            "voltage_v": 230,
            "base_load_kw": [[0, 5], [3600, 8], [7200, 5]],
        },
        "pv": {"peak_kw": 10, "profile": [[0, 0.1], [3600, 0.5], [7200, 0.4]]},
        "battery": {
            "capacity_kwh": 30,
            "max_charge_kw": 15,
            "max_discharge_kw": 15,
            "soc_init": 0.5,
            "soc_min": 0.1,
            "soc_max": 0.95,
            "charge_efficiency": 0.95,
            "discharge_efficiency": 0.95,
        },
        "tariff": {
            "periods": [
                {"start": "00:00", "end": "12:00", "price": 0.2, "name": "low"},
                {"start": "12:00", "end": "24:00", "price": 0.3, "name": "high"},
            ],
            "export_price": 0.05,
            "currency": "EUR",
        },
        "chargers": [
            {
                "id": "C001",
                "kind": "dc",
                "max_kw": 50,
                "phases": 3,
                "connectors": [{"id": 1, "max_kw": 50}, {"id": 2, "max_kw": 50}],
            },
            {
                "id": "C003",
                "kind": "ac",
                "max_kw": 7.4,
                "phases": 1,
                "phase": "L1",
                "min_a": 6,
                "max_a": 32,
                "connectors": [{"id": 1, "max_kw": 7.4}],
            },
        ],
        "sessions": [
            {
                "id": "S0001",
                "charger": "C001",
                "connector": 1,
                "arrive_s": 0,
                "depart_s": 1800,
                "energy_kwh": 20,
                "max_kw": 50,
            },
            {
                "id": "S0002",
                "charger": "C001",
                "connector": 2,
                "arrive_s": 900,
                "depart_s": 3600,
                "energy_kwh": 15,
                "max_kw": 40,
            },
            {
                "id": "S0042",
                "charger": "C003",
                "connector": 1,
                "arrive_s": 600,
                "depart_s": 7200,
                "energy_kwh": 10,
                "max_kw": 7.4,
            },
        ],
        "events": [
            {"t_s": 3600, "type": "grid_limit", "kw": 30},
            {"t_s": 1200, "type": "meter_outage", "duration_s": 90},
            {"t_s": 2400, "type": "charger_offline", "charger": "C001", "duration_s": 600},
        ],
    }


def put(*keys: str | int, value: object) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        node: Any = data
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return mutate


def drop(*keys: str | int) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        node: Any = data
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]

    return mutate


def add_charger(data: dict[str, Any]) -> None:
    data["chargers"].append(copy.deepcopy(data["chargers"][1]))


def add_connector(data: dict[str, Any]) -> None:
    data["chargers"][0]["connectors"].append({"id": 2, "max_kw": 50})


def add_session(data: dict[str, Any]) -> None:
    data["sessions"].append(dict(data["sessions"][0], arrive_s=5000, depart_s=6000))


def late_arrival(data: dict[str, Any]) -> None:
    data["sessions"][1].update(arrive_s=7200, depart_s=7500)


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert str(caught.value) == "\n".join(caught.value.lines())
    return caught.value.lines()


BROKEN: list[tuple[str, Mutation, str]] = [
    ("depart-before-arrive", put("sessions", 2, "depart_s", value=500),
     "sessions[S0042].depart_s: before arrive_s"),
    ("depart-at-arrive", put("sessions", 2, "depart_s", value=600),
     "sessions[S0042].depart_s: equal to arrive_s (a car must stay a while)"),
    ("one-phase-without-phase", drop("chargers", 1, "phase"),
     "chargers[C003].phase: a 1-phase charger needs L1, L2 or L3"),
    ("one-phase-bad-phase", put("chargers", 1, "phase", value="L4"),
     'chargers[C003].phase: a 1-phase charger needs L1, L2 or L3, got "L4"'),
    ("event-unknown-charger", put("events", 2, "charger", value="C999"),
     "events[2].charger: no charger C999"),
    ("curve-times-go-back", put("site", "base_load_kw", 2, 0, value=3600),
     "site.base_load_kw[2]: times must increase"),
    ("curve-empty", put("pv", "profile", value=[]),
     "pv.profile: must be a non-empty list of [t_s, fraction] points, got []"),
    ("curve-not-a-pair", put("site", "base_load_kw", 1, value=[3600]),
     "site.base_load_kw[1]: must be a [t_s, kW] pair, got [3600]"),
    ("pv-fraction-above-one", put("pv", "profile", 1, 1, value=1.2),
     "pv.profile[1]: fraction must be within 0..1, got 1.2"),
    ("bad-name", put("name", value="Tiny Site"),
     "name: must be lower-case letters, digits and '-', got \"Tiny Site\""),
    ("start-without-offset", put("start", value="2025-01-06T08:00:00"),
     "start: needs a UTC offset (tariff times are local to it), e.g. +08:00"),
    ("start-not-a-timestamp", put("start", value="monday"),
     'start: not an ISO-8601 timestamp, got "monday"'),
    ("zero-duration", put("duration_s", value=0), "duration_s: must be above 0, got 0"),
    ("fractional-duration", put("duration_s", value=7200.5),
     "duration_s: must be a whole number of seconds, got 7200.5"),
    ("bool-is-not-a-number", put("site", "grid_limit_kw", value=True),
     "site.grid_limit_kw: must be a number, got true"),
    ("string-is-not-a-number", put("battery", "capacity_kwh", value="30"),
     'battery.capacity_kwh: must be a number, got "30"'),
    ("negative-limit", put("site", "export_limit_kw", value=-1),
     "site.export_limit_kw: must be at least 0, got -1"),
    ("phase-limit-two-values", put("site", "phase_limit_a", value=[63, 63]),
     "site.phase_limit_a: must be null or [L1, L2, L3] amps, got [63, 63]"),
    ("phase-limit-zero", put("site", "phase_limit_a", 2, value=0),
     "site.phase_limit_a[2]: must be above 0, got 0"),
    ("unknown-key", put("site", "grid_limit", value=40),
     "site.grid_limit: unknown key (allowed: grid_limit_kw, export_limit_kw, phase_limit_a, "
     "voltage_v, base_load_kw)"),
    ("missing-key", drop("site", "voltage_v"), "site.voltage_v: required key is missing"),
    ("soc-init-below-min", put("battery", "soc_init", value=0.05),
     "battery.soc_init: below soc_min"),
    ("soc-min-above-max", put("battery", "soc_min", value=0.96),
     "battery.soc_min: above soc_max"),
    ("soc-above-one", put("battery", "soc_max", value=1.5),
     "battery.soc_max: must be within 0..1, got 1.5"),
    ("zero-efficiency", put("battery", "charge_efficiency", value=0),
     "battery.charge_efficiency: must be above 0 and at most 1, got 0"),
    ("tariff-gap", put("tariff", "periods", 1, "start", value="13:00"),
     "tariff.periods: 12:00-13:00 is not covered by any period"),
    ("tariff-overlap", put("tariff", "periods", 1, "start", value="11:00"),
     "tariff.periods[1]: overlaps periods[0]"),
    ("tariff-short-day", put("tariff", "periods", 1, "end", value="23:00"),
     "tariff.periods: 23:00-24:00 is not covered by any period"),
    ("tariff-bad-clock", put("tariff", "periods", 0, "end", value="12h"),
     'tariff.periods[0].end: must be "HH:MM" from 00:00 to 24:00, got "12h"'),
    ("tariff-start-at-24", put("tariff", "periods", 0, "start", value="24:00"),
     'tariff.periods[0].start: must be "HH:MM" from 00:00 to 23:59, got "24:00"'),
    ("tariff-backwards", put("tariff", "periods", 1, "end", value="06:00"),
     "tariff.periods[1].end: not after start (12:00); split a period at midnight"),
    ("duplicate-charger", add_charger, "chargers[C003].id: used 2 times; must be unique"),
    ("bad-kind", put("chargers", 0, "kind", value="hybrid"),
     'chargers[C001].kind: must be dc or ac, got "hybrid"'),
    ("two-phases", put("chargers", 0, "phases", value=2),
     "chargers[C001].phases: must be 1 or 3, got 2"),
    ("ac-min-above-max", put("chargers", 1, "min_a", value=40),
     "chargers[C003].min_a: above max_a (32)"),
    ("ac-without-max-a", drop("chargers", 1, "max_a"),
     "chargers[C003].max_a: an AC charger needs min_a and max_a (amps per phase)"),
    ("dc-with-amps", put("chargers", 0, "max_a", value=200),
     "chargers[C001].max_a: only for AC chargers (a DC connector is set in kW)"),
    ("three-phase-with-phase", put("chargers", 0, "phase", value="L2"),
     "chargers[C001].phase: only for 1-phase chargers (a 3-phase one uses all three)"),
    ("duplicate-connector", add_connector,
     "chargers[C001].connectors[2].id: used 2 times; must be unique"),
    ("connector-zero-kw", put("chargers", 0, "connectors", 1, "max_kw", value=0),
     "chargers[C001].connectors[2].max_kw: must be above 0, got 0"),
    ("connector-id-zero", put("chargers", 1, "connectors", 0, "id", value=0),
     "chargers[C003].connectors[0].id: must be a positive whole number, got 0"),
    ("duplicate-session", add_session, "sessions[S0001].id: used 2 times; must be unique"),
    ("session-unknown-charger", put("sessions", 0, "charger", value="C999"),
     "sessions[S0001].charger: no charger C999"),
    ("session-unknown-connector", put("sessions", 0, "connector", value=3),
     "sessions[S0001].connector: charger C001 has no connector 3"),
    ("sessions-overlap", put("sessions", 1, "connector", value=1),
     "sessions[S0002].arrive_s: overlaps S0001 on C001 connector 1 (plugged in until 1800 s)"),
    ("arrive-after-end", late_arrival,
     "sessions[S0002].arrive_s: at or after the end of the run (7200 s)"),
    ("zero-energy", put("sessions", 0, "energy_kwh", value=0),
     "sessions[S0001].energy_kwh: must be above 0, got 0"),
    ("event-type", put("events", 1, "type", value="blackout"),
     'events[1].type: must be grid_limit, meter_outage or charger_offline, got "blackout"'),
    ("event-after-end", put("events", 0, "t_s", value=7201),
     "events[0].t_s: after the end of the run (7200 s)"),
    ("event-negative-kw", put("events", 0, "kw", value=-5),
     "events[0].kw: must be at least 0, got -5"),
    ("event-missing-duration", drop("events", 1, "duration_s"),
     "events[1].duration_s: required key is missing"),
    ("event-key-of-another-type", put("events", 0, "duration_s", value=60),
     "events[0].duration_s: unknown key (allowed: t_s, type, kw)"),
    ("not-an-object", put("chargers", 1, value="C003"),
     'chargers[1]: must be an object, got "C003"'),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "expected"), [(m, e) for _, m, e in BROKEN], ids=[name for name, _, _ in BROKEN]
)
def test_broken_variant_names_the_key_and_the_reason(
    tmp_path: Path, mutate: Mutation, expected: str
) -> None:
    data = tiny()
    mutate(data)
    path = write(tmp_path, data)
    assert problems(path) == [f"{path}: {expected}"]


def test_the_tiny_scenario_itself_is_valid(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, tiny()))
    assert [event.t_s for event in scenario.events] == [1200, 2400, 3600]  # sorted
    assert scenario.price_at(0) == 0.2  # 08:00 local
    assert scenario.price_at(4 * HOUR) == 0.3  # 12:00 local
    assert scenario.charger("C003").phases_used() == ("L1",)
    assert scenario.site.phase_limit_a == (63.0, 63.0, 63.0)


def test_pv_and_battery_may_be_absent_or_null(tmp_path: Path) -> None:
    data = tiny()
    del data["pv"]
    data["battery"] = None
    scenario = load_scenario(write(tmp_path, data))
    assert scenario.pv is None
    assert scenario.battery is None


def test_several_mistakes_are_all_reported(tmp_path: Path) -> None:
    data = tiny()
    for _, mutate, _ in (BROKEN[0], BROKEN[2], BROKEN[4], BROKEN[5], BROKEN[12]):
        mutate(data)
    path = write(tmp_path, data)
    assert problems(path) == [
        f"{path}: duration_s: must be above 0, got 0",
        f"{path}: site.base_load_kw[2]: times must increase",
        f"{path}: chargers[C003].phase: a 1-phase charger needs L1, L2 or L3",
        f"{path}: sessions[S0042].depart_s: before arrive_s",
        f"{path}: events[2].charger: no charger C999",
    ]


def test_invalid_json_gives_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n "name": "x",\n "start" 5\n}\n', encoding="utf-8")
    assert problems(path) == [f"{path}: line 3, column 10: JSON error: Expecting ':' delimiter"]


def test_a_key_given_twice_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, tiny())
    text = path.read_text().replace('"duration_s": 7200,', '"duration_s": 60, "duration_s": 7200,')
    path.write_text(text)
    assert problems(path) == [f"{path}: duration_s: given twice (JSON keeps only the last)"]


def test_not_an_object(tmp_path: Path) -> None:
    path = write(tmp_path, [1, 2])
    assert problems(path) == [f"{path}: (file): must be an object, got [1, 2]"]


def test_missing_file_and_unknown_name(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    assert problems(path) == [f"{path}: (file): file not found"]
    with pytest.raises(ScenarioError) as caught:
        load_scenario("no-such-site")
    (line,) = caught.value.lines()
    assert line.startswith(f"{SCENARIO_DIR / 'no-such-site.json'}: (file): no scenario named")
    assert "reference-station" in line


def test_a_path_is_used_as_given(tmp_path: Path) -> None:
    path = write(tmp_path, tiny())
    assert load_scenario(str(path)).name == "tiny"
    assert load_scenario(path).name == "tiny"


def test_the_car_park_week_is_a_week_of_complete_stays_with_quiet_weekends() -> None:
    scenario = load_scenario("ac-car-park-week")
    assert scenario.duration_s == 7 * 86_400 + 8 * 3600
    assert all(s.depart_s <= scenario.duration_s for s in scenario.sessions)
    commuters_by_day = [0] * 7
    for s in scenario.sessions:  # arriving 07:30-09:30 and staying 8 h or more
        if 7.5 * 3600 <= s.arrive_s % 86_400 <= 9.5 * 3600 and s.depart_s - s.arrive_s >= 8 * 3600:
            commuters_by_day[int(s.arrive_s // 86_400)] += 1
    assert commuters_by_day[5:] == [0, 0]  # Saturday and Sunday
    assert all(n >= 6 for n in commuters_by_day[:5])  # most find a free wallbox
    prior = build_scenario(prior_week())
    assert prior.duration_s == 7 * 86_400
    assert prior.sessions[5].arrive_s != scenario.sessions[5].arrive_s  # another week's cars
