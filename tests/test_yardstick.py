"""The offline yardstick: hand-checkable tiny sites, the reference day, the cache and compare()."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from hil import yardstick_report
from hil.scenario import (
    BatterySpec,
    ChargerOfflineEvent,
    ChargerSpec,
    ConnectorSpec,
    Curve,
    Event,
    GridLimitEvent,
    Phase,
    Scenario,
    SessionSpec,
    SiteSpec,
    Tariff,
    TariffPeriod,
)
from hil.scenario_loader import load_scenario
from hil.yardstick import Yardstick, solve_yardstick
from hil.yardstick_inputs import price_mean
from hil.yardstick_report import compare, yardstick_for

REFERENCE_DELIVERED_KWH = 25_048.0  # the project's independent computation
REFERENCE_COST = 10_458.0
AGREEMENT = 0.005


def flat(value: float) -> Curve:
    return Curve((0.0,), (value,))


def tariff(*periods: tuple[int, int, float]) -> Tariff:
    return Tariff(
        periods=tuple(
            TariffPeriod(f"p{i}", a, b, price) for i, (a, b, price) in enumerate(periods)
        ),
        export_price=0.0,
        currency="CNY",
    )


def dc_charger(max_kw: float = 100.0) -> ChargerSpec:
    return ChargerSpec(
        id="C1", kind="dc", max_kw=max_kw, phases=3, phase=None, min_a=None, max_a=None,
        connectors=(ConnectorSpec(1, max_kw), ConnectorSpec(2, max_kw)),
    )  # fmt: skip


def session(
    sid: str, connector: int, arrive: float, depart: float, kwh: float, kw: float
) -> SessionSpec:
    """A car on charger C1: id, connector, arrive_s, depart_s, energy_kwh, max_kw."""
    return SessionSpec(sid, "C1", connector, arrive, depart, kwh, kw)


def site(
    *sessions: SessionSpec,
    grid_limit_kw: float = 30.0,
    base_kw: float = 5.0,
    battery: BatterySpec | None = None,
    prices: Tariff | None = None,
    chargers: tuple[ChargerSpec, ...] = (),
    phase_limit_a: tuple[float, float, float] | None = None,
    events: tuple[Event, ...] = (),
    duration_s: int = 3600,
) -> Scenario:
    return Scenario(
        name="tiny",
        description="hand-checkable",
        start=datetime.fromisoformat("2025-07-15T00:00:00+08:00"),
        duration_s=duration_s,
        site=SiteSpec(grid_limit_kw, 0.0, phase_limit_a, 230.0, flat(base_kw)),
        pv=None,
        battery=battery,
        tariff=prices or tariff((0, 1440, 1.0)),
        chargers=chargers or (dc_charger(),),
        sessions=sessions,
        events=events,
    )


def test_limit_binding_delivers_the_hand_computed_maximum() -> None:
    # 30 kW limit - 5 kW base = 25 kW for the cars. No car in step 0 (0-300 s). In step 1 car A
    # (30 kW max) is in for 450-600 s, half the step: 15 kW on average. From 600 s on, A and
    # then B (50 kW) could each take the 25 kW alone, 40 kWh wanted in all: the limit binds.
    scenario = site(session("A", 1, 450, 1800, 20.0, 30.0), session("B", 2, 900, 3600, 20.0, 50.0))
    y = solve_yardstick(scenario)
    assert y.delivered_kwh == pytest.approx((15.0 * 300 + 25.0 * 3000) / 3600, rel=1e-6)
    assert y.peak_import_kw == pytest.approx(30.0)
    assert y.cost == pytest.approx(y.grid_import_kwh * 1.0)
    assert y.grid_import_kwh == pytest.approx(5.0 + y.delivered_kwh, rel=1e-6)
    assert sum(y.delivered_by_session().values()) == pytest.approx(y.delivered_kwh)
    assert y.battery_soc_end is None
    assert y.status == "Optimal"


def test_the_car_and_the_charger_cap_before_the_grid() -> None:
    # One car, 10 kW max, for the hour; a 60 kW limit is not what binds: 10 kWh.
    capped = site(session("A", 1, 0, 3600, 50.0, 10.0), grid_limit_kw=60.0)
    assert solve_yardstick(capped).delivered_kwh == pytest.approx(10.0, rel=1e-6)
    # Two 50 kW cars on a 40 kW charger: 40 kWh, the charger's max for the hour.
    shared = site(
        session("A", 1, 0, 3600, 50.0, 50.0), session("B", 2, 0, 3600, 50.0, 50.0),
        grid_limit_kw=200.0, chargers=(replace(dc_charger(), max_kw=40.0),),
    )  # fmt: skip
    assert solve_yardstick(shared).delivered_kwh == pytest.approx(40.0, rel=1e-6)


def cheap_then_dear() -> Scenario:
    """00:00-00:05 at 0.1, then 1.0; a 10 kWh battery at 50 %; a car in for the dear step
    only, wanting 1 kWh."""
    battery = BatterySpec(
        capacity_kwh=10.0, max_charge_kw=20.0, max_discharge_kw=20.0, soc_init=0.5,
        soc_min=0.0, soc_max=1.0, charge_efficiency=0.9, discharge_efficiency=0.9,
    )  # fmt: skip
    return site(
        session("A", 1, 300, 600, 1.0, 12.0),
        grid_limit_kw=100.0, base_kw=0.0, battery=battery, duration_s=600,
        prices=tariff((0, 5, 0.1), (5, 1440, 1.0)),
    )  # fmt: skip


def test_the_battery_charges_cheap_and_discharges_dear() -> None:
    # 00:00-00:05 at 0.1, then 1.0. The car is in only during the dear step and wants 1 kWh.
    # The cheapest way: store 1 / 0.9 kWh in the cheap step (1 / 0.81 kWh from the grid) and
    # discharge it to the car, leaving the battery where it started.
    scenario = cheap_then_dear()
    y = solve_yardstick(scenario)
    assert y.delivered_kwh == pytest.approx(1.0, rel=1e-6)
    assert y.grid_import_kwh == pytest.approx(1.0 / 0.81, rel=1e-6)
    assert y.cost == pytest.approx(0.1 / 0.81, rel=1e-6)  # all of it bought at the cheap price
    assert y.peak_import_kw == pytest.approx(12.0 / 0.81, rel=1e-6)
    assert y.battery_soc_end is not None
    assert y.battery_soc_end >= 0.5 - 1e-9  # not drained to pay for the car


def test_one_phase_charger_is_held_by_its_phase_fuse() -> None:
    # A 7.4 kW 1-phase wallbox on L1 behind 16 A per phase: 16 A x 230 V = 3.68 kW for the hour.
    phase: Phase = "L1"
    wallbox = ChargerSpec(
        id="C1", kind="ac", max_kw=7.4, phases=1, phase=phase, min_a=6.0, max_a=32.0,
        connectors=(ConnectorSpec(1, 7.4),),
    )  # fmt: skip
    scenario = site(
        session("A", 1, 0, 3600, 10.0, 7.4), grid_limit_kw=50.0, base_kw=0.0,
        chargers=(wallbox,), phase_limit_a=(16.0, 16.0, 16.0),
    )  # fmt: skip
    assert solve_yardstick(scenario).delivered_kwh == pytest.approx(3.68, rel=1e-6)


def test_events_take_power_away() -> None:
    # The charger is offline for the first half hour and the limit drops to 15 kW at 45 min:
    # 25 kW x 0.25 h + 10 kW x 0.25 h.
    cars = (session("A", 1, 0, 3600, 50.0, 50.0),)
    events: tuple[Event, ...] = (
        ChargerOfflineEvent(t_s=0.0, charger="C1", duration_s=1800.0),
        GridLimitEvent(t_s=2700.0, kw=15.0),
    )
    y = solve_yardstick(site(*cars, events=events))
    assert y.delivered_kwh == pytest.approx(25.0 * 0.25 + 10.0 * 0.25, rel=1e-6)


def test_price_is_the_mean_over_the_step_when_a_period_ends_inside_it() -> None:
    scenario = site(prices=tariff((0, 7, 0.1), (7, 1440, 1.0)))
    assert price_mean(scenario, 300.0, 600.0) == pytest.approx((120 * 0.1 + 180 * 1.0) / 300)


def test_reference_station_agrees_with_the_independent_computation() -> None:
    y = solve_yardstick(load_scenario("reference-station"))
    assert y.delivered_kwh == pytest.approx(REFERENCE_DELIVERED_KWH, rel=AGREEMENT)
    assert y.cost == pytest.approx(REFERENCE_COST, rel=AGREEMENT)
    assert y.peak_import_kw <= 1200.0 + 1e-6
    assert y.battery_soc_end is not None
    assert y.battery_soc_end >= 0.3 - 1e-9
    assert y.delivered_kwh <= y.requested_kwh
    # Modelling the derating is a tighter bound: a little less energy, still in agreement.
    derated = solve_yardstick(load_scenario("reference-station"), derating=True)
    assert derated.delivered_kwh <= y.delivered_kwh + 1e-6
    assert derated.delivered_kwh == pytest.approx(REFERENCE_DELIVERED_KWH, rel=AGREEMENT)
    assert derated.cost == pytest.approx(REFERENCE_COST, rel=AGREEMENT)


def test_yardstick_for_caches_by_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = site(session("A", 1, 450, 1800, 20.0, 50.0))
    first = yardstick_for(scenario, cache_dir=tmp_path)
    files = list(tmp_path.glob("tiny-*.json"))
    assert len(files) == 1

    def no_solve(*_: object, **__: object) -> Yardstick:
        raise AssertionError("solved again despite the cache")

    monkeypatch.setattr(yardstick_report, "solve_yardstick", no_solve)
    assert yardstick_for(scenario, cache_dir=tmp_path) == first
    monkeypatch.undo()

    # Another step or another scenario content is another entry; a broken file is re-solved.
    yardstick_for(scenario, step_s=600, cache_dir=tmp_path)
    yardstick_for(replace(scenario, duration_s=1800), cache_dir=tmp_path)
    assert len(list(tmp_path.glob("tiny-*.json"))) == 3
    files[0].write_text("{not json", encoding="utf-8")
    again = yardstick_for(scenario, cache_dir=tmp_path)
    assert replace(again, solve_s=first.solve_s) == first
    assert json.loads(files[0].read_text(encoding="utf-8"))["delivered_kwh"] == first.delivered_kwh


def test_compare_gives_the_ratios() -> None:
    tiny = site(session("A", 1, 0, 3600, 50.0, 10.0))
    y = solve_yardstick(tiny)  # 10 kWh for 15 CNY
    kpis: dict[str, object] = {"energy_delivered_kwh": 8.0, "energy_cost": 12.0}
    assert compare(kpis, y, tiny) == pytest.approx(
        {
            "yardstick_delivered_kwh": 10.0,
            "yardstick_cost": 15.0,
            "delivered_vs_yardstick": 0.8,
            "cost_vs_yardstick": 0.8,
        }
    )
    free = replace(y, cost=0.0)
    assert "cost_vs_yardstick" not in compare(kpis, free, tiny)
    with pytest.raises(ValueError, match="energy_cost"):
        compare({"energy_delivered_kwh": 8.0}, y, tiny)


def test_compare_brings_both_batteries_back_to_the_starting_soc() -> None:
    scenario = cheap_then_dear()
    y = solve_yardstick(scenario)
    assert y.battery_soc_end == pytest.approx(0.5, abs=1e-6)
    per_kwh = 0.1 / 0.9  # the cheapest price over the charge efficiency
    fuller = {"energy_delivered_kwh": 1.0, "energy_cost": 0.5, "battery_soc_end": 0.6}
    result = compare(fuller, y, scenario)
    assert result["energy_cost_same_soc"] == pytest.approx(0.5 - 1.0 * per_kwh)  # 1 kWh more
    assert result["yardstick_cost_same_soc"] == pytest.approx(y.cost, abs=1e-6)
    assert result["cost_same_soc_vs_yardstick"] == pytest.approx((0.5 - per_kwh) / y.cost, rel=1e-5)
    emptier = compare({**fuller, "battery_soc_end": 0.3}, y, scenario)
    assert emptier["energy_cost_same_soc"] == pytest.approx(0.5 + 2.0 * per_kwh)
    # Without a battery there is nothing to bring back.
    plain = site(session("A", 1, 0, 3600, 50.0, 10.0))
    assert "energy_cost_same_soc" not in compare(fuller, solve_yardstick(plain), plain)
