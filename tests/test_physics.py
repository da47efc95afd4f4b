"""The site physics against FORMAT.md's rules, with expectations computed by hand in comments.

Scenarios are built straight from the dataclasses of `hil.scenario`. Where the limit delay is not
what a test is about, limits take effect at once (`instant`) so the arithmetic stays simple.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from hil.physics import SitePhysics, StepResult
from hil.physics_ev import car_max_kw, share_charger_kw
from hil.scenario import (
    BatterySpec,
    ChargerOfflineEvent,
    ChargerSpec,
    ConnectorSpec,
    Curve,
    Event,
    GridLimitEvent,
    Phase,
    PvSpec,
    Scenario,
    SessionSpec,
    SiteSpec,
    Tariff,
    TariffPeriod,
)

INF = math.inf
NO_LOAD = Curve((0.0,), (0.0,))


def dc_charger(charger_id: str = "D1", max_kw: float = 120.0, connectors: int = 2) -> ChargerSpec:
    return ChargerSpec(
        id=charger_id,
        kind="dc",
        max_kw=max_kw,
        phases=3,
        phase=None,
        min_a=None,
        max_a=None,
        connectors=tuple(ConnectorSpec(i, 120.0) for i in range(1, connectors + 1)),
    )


def ac_charger(
    charger_id: str, phases: int, phase: Phase | None = None, max_kw: float = 22.0
) -> ChargerSpec:
    assert phases in (1, 3)
    return ChargerSpec(
        id=charger_id,
        kind="ac",
        max_kw=max_kw,
        phases=3 if phases == 3 else 1,
        phase=phase,
        min_a=6.0,
        max_a=32.0,
        connectors=(ConnectorSpec(1, max_kw),),
    )


def car(
    session_id: str,
    charger: str,
    connector: int = 1,
    *,
    arrive_s: float = 0.0,
    depart_s: float = 100_000.0,
    energy_kwh: float = 1000.0,
    max_kw: float = 150.0,
) -> SessionSpec:
    return SessionSpec(session_id, charger, connector, arrive_s, depart_s, energy_kwh, max_kw)


def battery(soc_init: float = 0.5) -> BatterySpec:
    return BatterySpec(
        capacity_kwh=100.0,
        max_charge_kw=50.0,
        max_discharge_kw=50.0,
        soc_init=soc_init,
        soc_min=0.1,
        soc_max=0.9,
        charge_efficiency=0.96,
        discharge_efficiency=0.96,
    )


def site(
    chargers: tuple[ChargerSpec, ...] = (),
    sessions: tuple[SessionSpec, ...] = (),
    *,
    base_load: Curve = NO_LOAD,
    pv: PvSpec | None = None,
    storage: BatterySpec | None = None,
    export_limit_kw: float = 100.0,
    events: tuple[Event, ...] = (),
) -> Scenario:
    return Scenario(
        name="test",
        description="",
        start=datetime(2025, 7, 15, tzinfo=UTC),
        duration_s=86_400,
        site=SiteSpec(1200.0, export_limit_kw, None, 230.0, base_load),
        pv=pv,
        battery=storage,
        tariff=Tariff((TariffPeriod("flat", 0, 1440, 0.2),), 0.05, "EUR"),
        chargers=chargers,
        sessions=sessions,
        events=events,
    )


def instant(scenario: Scenario) -> SitePhysics:
    """Limits take effect at once and never lapse."""
    return SitePhysics(scenario, dc_delay_s=0.0, ac_delay_s=0.0, setpoint_timeout_s=INF)


def run(physics: SitePhysics, seconds: int) -> list[StepResult]:
    return [physics.step(1.0) for _ in range(seconds)]


# -- energy balance ----------------------------------------------------------------------------


def test_energy_balances_every_step_and_delivered_energy_is_the_integral_of_ev_kw() -> None:
    scenario = site(
        (dc_charger("D1"), ac_charger("A3", 3), ac_charger("A1", 1, "L2", max_kw=7.4)),
        (
            car("s1", "D1", 1, arrive_s=20, depart_s=400, energy_kwh=2.0, max_kw=60.0),
            car("s2", "D1", 2, arrive_s=50, depart_s=700, max_kw=100.0),
            car("s3", "A3", 1, arrive_s=0, depart_s=300),
            car("s4", "A1", 1, arrive_s=100, depart_s=500),
            car("s5", "A3", 1, arrive_s=300, depart_s=650, energy_kwh=0.5),
        ),
        base_load=Curve((0.0, 600.0), (20.0, 40.0)),
        pv=PvSpec(30.0, Curve((0.0, 600.0), (0.0, 1.0))),
        storage=battery(),
        export_limit_kw=5.0,
        events=(ChargerOfflineEvent(200.0, "A3", 30.0), GridLimitEvent(250.0, 800.0)),
    )
    physics = SitePhysics(scenario)
    rows: list[StepResult] = []
    for second in range(700):
        if second % 20 == 0:  # the agent renews its limits within the 60 s watchdog
            physics.set_connector_limit("D1", 1, 80.0)
            physics.set_connector_limit("D1", 2, 70.0 if second < 300 else 120.0)
            physics.set_connector_limit("A3", 1, 16.0)
            physics.set_connector_limit("A1", 1, 5.0 if second < 200 else 32.0)
        physics.set_battery_kw(-20.0 if second < 350 else 30.0)
        physics.set_pv_limit_kw(None if second < 400 else 8.0)
        rows.append(physics.step(1.0))

    for row in rows:
        # grid = base + ev + battery charging - battery discharging - PV used (battery_kw + =
        # discharge, so "+ charging - discharging" is "- battery_kw").
        assert row.grid_kw == pytest.approx(
            row.base_load_kw + row.ev_kw - row.battery_kw - row.pv_used_kw, abs=1e-9
        )
        assert row.p_l1_kw + row.p_l2_kw + row.p_l3_kw == pytest.approx(row.grid_kw, abs=1e-9)
        assert row.i_l2_a == pytest.approx(row.p_l2_kw * 1000.0 / 230.0)
        assert 0.0 <= row.pv_used_kw <= row.pv_available_kw + 1e-12
    # The integral of ev_kw over 1 s rows (kW x 1/3600 h) is the energy the cars got.
    ev_kwh = sum(row.ev_kw for row in rows) / 3600.0
    assert ev_kwh > 1.0
    assert sum(physics.delivered_kwh().values()) == pytest.approx(ev_kwh, rel=1e-12)
    meters = sum(physics.connector_energy_kwh(c, n) for c, n in physics.connector_ids())
    assert meters == pytest.approx(ev_kwh, rel=1e-12)
    # s1 wanted 2 kWh and was plugged in long enough at up to 60 kW: it got all of it.
    assert physics.delivered_kwh()["s1"] == pytest.approx(2.0)
    # Spot check at t = 300 (midpoint 300.5 s): base = 20 + 20 x 300.5/600 = 30.01667 kW;
    # PV available = 30 x 300.5/600 = 15.025 kW; the grid limit event at 250 s is in force.
    assert rows[300].base_load_kw == pytest.approx(30.016667, abs=1e-6)
    assert rows[300].pv_available_kw == pytest.approx(15.025)
    assert (rows[249].grid_limit_kw, rows[250].grid_limit_kw) == (1200.0, 800.0)


# -- what a car draws --------------------------------------------------------------------------


def test_a_car_at_90_percent_of_its_energy_accepts_65_percent_of_max_kw() -> None:
    # At 90 %: halfway from 80 % to 100 %, so max falls halfway from 100 % to 30 %: 65 %.
    assert car_max_kw(100.0, 40.0, 36.0) == pytest.approx(65.0)
    assert car_max_kw(100.0, 40.0, 32.0) == 100.0  # at 80 % not yet derated
    assert car_max_kw(100.0, 40.0, 40.0) == pytest.approx(30.0)  # 30 % at 100 %

    physics = instant(site((dc_charger(),), (car("s", "D1", energy_kwh=40.0, max_kw=100.0),)))
    physics.set_connector_limit("D1", 1, 120.0)
    # 100 kW for 1152 s = 100 x 1152/3600 = 32 kWh = 80 % of 40 kWh.
    assert physics.step(1152.0).ev_kw == pytest.approx(100.0)
    # Still 100 kW at exactly 80 %: 144 s more bring 100 x 144/3600 = 4 kWh, so 36 kWh = 90 %.
    assert physics.step(144.0).ev_kw == pytest.approx(100.0)
    assert physics.delivered_kwh()["s"] == pytest.approx(36.0)
    assert physics.step(1.0).ev_kw == pytest.approx(65.0)


def test_a_car_stops_when_it_has_all_it_wanted() -> None:
    physics = instant(site((dc_charger(),), (car("s", "D1", energy_kwh=0.01, max_kw=100.0),)))
    physics.set_connector_limit("D1", 1, 120.0)
    # 0.01 kWh missing over a 1 s step is 0.01 x 3600 = 36 kW, under the car's 100 kW (it is at
    # 0 %, not derated): it draws 36 kW and is then full.
    assert physics.step(1.0).ev_kw == pytest.approx(36.0)
    assert physics.step(1.0).ev_kw == pytest.approx(0.0, abs=1e-9)
    assert physics.delivered_kwh()["s"] == pytest.approx(0.01)


def test_a_dc_charger_shares_its_max_kw_and_passes_on_what_a_car_leaves() -> None:
    # Two connectors on a 120 kW charger, both offered 120 kW. One car takes at most 30 kW:
    # equal shares are 60 + 60; the capped car leaves 30 of its 60, so the other gets 90.
    physics = instant(
        site((dc_charger(),), (car("a", "D1", 1, max_kw=30.0), car("b", "D1", 2, max_kw=150.0)))
    )
    physics.set_connector_limit("D1", 1, 120.0)
    physics.set_connector_limit("D1", 2, 120.0)
    assert physics.step().ev_kw == pytest.approx(120.0)
    assert physics.connector_power_kw("D1", 1) == pytest.approx(30.0)
    assert physics.connector_power_kw("D1", 2) == pytest.approx(90.0)

    # Both want 120 (cars accept 150, connectors cap at 120): 60 each.
    physics = instant(site((dc_charger(),), (car("a", "D1", 1), car("b", "D1", 2))))
    physics.set_connector_limit("D1", 1, 120.0)
    physics.set_connector_limit("D1", 2, 120.0)
    physics.step()
    assert physics.connector_power_kw("D1", 1) == pytest.approx(60.0)
    assert physics.connector_power_kw("D1", 2) == pytest.approx(60.0)


def test_water_filling_serves_small_wants_first() -> None:
    # 90 kW over wants of 100, 10, 50: equal share 30; the 10 kW want leaves 20, so the other two
    # share 80: 40 each (both want more than 40).
    assert share_charger_kw([100.0, 10.0, 50.0], 90.0) == pytest.approx([40.0, 10.0, 40.0])
    assert share_charger_kw([20.0, 30.0], 90.0) == [20.0, 30.0]  # under max_kw: as wanted


def test_ac_minimum_current_three_phase_power_and_a_one_phase_charger_on_l2() -> None:
    scenario = site(
        (ac_charger("A3", 3), ac_charger("A1", 1, "L2", max_kw=7.4)),
        (car("three", "A3"), car("one", "A1")),
    )
    physics = instant(scenario)
    # 5 A is under min_a 6 A: the car draws nothing.
    physics.set_connector_limit("A3", 1, 5.0)
    assert physics.step().ev_kw == 0.0
    # 10 A x 230 V x 3 phases = 6900 W = 6.9 kW, spread evenly: 2.3 kW per phase = 10 A each.
    physics.set_connector_limit("A3", 1, 10.0)
    row = physics.step()
    assert row.ev_kw == pytest.approx(6.9)
    assert (row.i_l1_a, row.i_l2_a, row.i_l3_a) == pytest.approx((10.0, 10.0, 10.0))

    physics = instant(scenario)
    # 1-phase on L2 at 16 A: 16 x 230 = 3.68 kW, all on L2: i_l2 = 3680 / 230 = 16 A.
    physics.set_connector_limit("A1", 1, 16.0)
    row = physics.step()
    assert row.ev_kw == pytest.approx(3.68)
    assert (row.i_l1_a, row.i_l2_a, row.i_l3_a) == pytest.approx((0.0, 16.0, 0.0))
    # Offers are capped at max_a: 40 A becomes 32 A = 32 x 230 = 7.36 kW.
    physics.set_connector_limit("A1", 1, 40.0)
    assert physics.step().ev_kw == pytest.approx(7.36)


# -- how chargers take limits ------------------------------------------------------------------


def test_a_new_limit_takes_effect_2_s_later_on_dc_and_5_s_later_on_ac() -> None:
    scenario = site((dc_charger(), ac_charger("A3", 3)), (car("d", "D1"), car("a", "A3")))
    physics = SitePhysics(scenario)
    physics.set_connector_limit("D1", 1, 50.0)  # sent at t = 0: DC at 2 s
    physics.set_connector_limit("A3", 1, 16.0)  # AC at 5 s
    assert physics.connector_limit("D1", 1) == 0.0  # still the safe value
    powers: list[tuple[float, float]] = []
    for _ in range(6):
        physics.step()
        dc_kw = physics.connector_power_kw("D1", 1)
        ac_kw = physics.connector_power_kw("A3", 1)
        powers.append((round(dc_kw, 9), round(ac_kw, 9)))
    # Rows t = 0..5. DC: 0, 0, then 50 from t = 2. AC: 16 A x 230 V x 3 = 11.04 kW from t = 5.
    assert powers == [(0, 0), (0, 0), (50, 0), (50, 0), (50, 0), (50, 11.04)]
    assert physics.connector_limit("D1", 1) == 50.0
    assert physics.connector_limit("A3", 1) == 16.0


def test_a_limit_not_renewed_within_the_timeout_lapses_to_the_safe_value() -> None:
    scenario = site((dc_charger(),), (car("d", "D1"),))
    physics = SitePhysics(scenario, setpoint_timeout_s=60.0, safe_dc_kw=10.0)
    assert physics.connector_limit("D1", 1) == 10.0  # before the first limit: the safe value
    physics.set_connector_limit("D1", 1, 50.0)  # received at 0, in force from 2
    rows = run(physics, 61)
    # In force from t = 2 until the watchdog runs out 60 s after it was received: rows 2..59 at
    # 50 kW, row 60 at the safe 10 kW.
    assert [r.ev_kw for r in rows[:3]] == [10.0, 10.0, 50.0]
    assert rows[59].ev_kw == 50.0
    assert rows[60].ev_kw == 10.0

    physics = SitePhysics(scenario, setpoint_timeout_s=60.0)
    physics.set_connector_limit("D1", 1, 50.0)
    run(physics, 50)
    physics.set_connector_limit("D1", 1, 50.0)  # renewed at 50: good until 110
    rows = run(physics, 70)  # rows 50..119
    assert rows[109 - 50].ev_kw == 50.0
    assert rows[110 - 50].ev_kw == 0.0
    # A limit sent after the lapse takes effect after the delay; until then the safe value holds
    # (the lapsed 50 kW does not come back).
    physics.set_connector_limit("D1", 1, 40.0)  # at 120
    rows = run(physics, 3)
    assert [r.ev_kw for r in rows] == [0.0, 0.0, 40.0]


def test_an_offline_charger_delivers_nothing_and_drops_new_limits() -> None:
    scenario = site(
        (dc_charger(),), (car("d", "D1"),), events=(ChargerOfflineEvent(10.0, "D1", 20.0),)
    )
    physics = SitePhysics(scenario, setpoint_timeout_s=INF)
    physics.set_connector_limit("D1", 1, 50.0)
    rows = run(physics, 15)
    assert physics.charger_offline("D1")
    physics.set_connector_limit("D1", 1, 20.0)  # at 15, while offline: never received
    rows += run(physics, 20)
    # Rows 2..9 at 50 kW; offline over [10, 30): nothing; back at 30 with the old 50 kW limit.
    assert [r.ev_kw for r in rows[8:12]] == [50.0, 50.0, 0.0, 0.0]
    assert all(r.ev_kw == 0.0 for r in rows[10:30])
    assert [r.ev_kw for r in rows[29:35]] == [0.0, 50.0, 50.0, 50.0, 50.0, 50.0]
    assert not physics.charger_offline("D1")
    assert physics.connector_limit("D1", 1) == 50.0


# -- cars coming and going -----------------------------------------------------------------------


def test_a_car_leaves_at_depart_s_whatever_it_got() -> None:
    scenario = site(
        (dc_charger(),),
        (
            car("first", "D1", arrive_s=10, depart_s=70, energy_kwh=100.0),
            car("next", "D1", arrive_s=70, depart_s=100),
        ),
    )
    physics = instant(scenario)
    physics.set_connector_limit("D1", 1, 50.0)
    rows = run(physics, 10)
    assert physics.connector_session("D1", 1) is not None  # plugged in at 10
    assert all(r.ev_kw == 0.0 for r in rows)  # rows 0..9: no car yet
    rows = run(physics, 60)  # rows 10..69 at 50 kW
    assert all(r.ev_kw == 50.0 for r in rows)
    session = physics.connector_session("D1", 1)
    assert session is not None
    assert session.id == "next"  # "first" left at 70 and "next" plugged in at once
    # 50 kW x 60 s = 50 x 60/3600 = 0.8333 kWh of the 100 wanted.
    assert physics.delivered_kwh()["first"] == pytest.approx(0.833333, abs=1e-6)
    assert physics.delivered_kwh()["next"] == 0.0
    run(physics, 40)
    assert physics.connector_session("D1", 1) is None
    assert physics.connector_power_kw("D1", 1) == 0.0  # nobody charged in the last step
    assert physics.delivered_kwh()["first"] == pytest.approx(0.833333, abs=1e-6)
    assert physics.delivered_kwh()["next"] == pytest.approx(50.0 * 30 / 3600)


# -- battery, PV and the grid connection -------------------------------------------------------


def test_battery_efficiency_on_charge_and_discharge() -> None:
    physics = instant(site(storage=battery(soc_init=0.5)))
    physics.set_battery_kw(-10.0)  # charge 10 kW for 1 h
    row = physics.step(3600.0)
    # 10 kWh in at 0.96 stores 9.6 kWh: 50 -> 59.6 kWh of 100. Charging imports 10 kW.
    assert row.battery_kw == -10.0
    assert row.battery_soc == pytest.approx(0.596)
    assert row.grid_kw == pytest.approx(10.0)

    physics = instant(site(storage=battery(soc_init=0.5)))
    physics.set_battery_kw(10.0)  # discharge 10 kW for 1 h
    row = physics.step(3600.0)
    # 10 kWh out at 0.96 takes 10 / 0.96 = 10.4167 kWh: 50 -> 39.5833 kWh.
    assert row.battery_kw == 10.0
    assert row.battery_soc == pytest.approx(0.395833, abs=1e-6)
    assert row.grid_kw == pytest.approx(-10.0)


def test_battery_power_is_clipped_to_its_limits_and_soc_window() -> None:
    physics = instant(site(storage=battery(soc_init=0.85)))
    physics.set_battery_kw(-20.0)
    row = physics.step(3600.0)
    # Room to soc_max 0.9: 5 kWh stored = 5 / 0.96 = 5.2083 kW for 1 h; lands exactly on 0.9.
    assert row.battery_kw == pytest.approx(-5.208333, abs=1e-6)
    assert row.battery_soc == pytest.approx(0.9, abs=1e-12)
    assert physics.step(1.0).battery_kw == 0.0  # full: nothing more goes in

    physics = instant(site(storage=battery(soc_init=0.12)))
    physics.set_battery_kw(20.0)
    row = physics.step(3600.0)
    # Room to soc_min 0.1: 2 kWh taken = 2 x 0.96 = 1.92 kW out for 1 h; lands on 0.1.
    assert row.battery_kw == pytest.approx(1.92)
    assert row.battery_soc == pytest.approx(0.1, abs=1e-12)

    physics = instant(site(storage=battery()))
    physics.set_battery_kw(-80.0)  # max_charge_kw is 50
    assert physics.step().battery_kw == -50.0
    physics.set_battery_kw(80.0)  # max_discharge_kw is 50
    assert physics.step().battery_kw == 50.0
    assert physics.battery_kw() == 50.0


def test_pv_is_curtailed_at_the_export_limit() -> None:
    scenario = site(
        base_load=Curve((0.0,), (10.0,)),
        pv=PvSpec(50.0, Curve((0.0,), (1.0,))),
        storage=battery(),
        export_limit_kw=20.0,
    )
    physics = instant(scenario)
    # 50 kW available, 10 kW of load, 20 kW may be exported: 30 kW used, grid -20 kW.
    row = physics.step()
    assert (row.pv_available_kw, row.pv_used_kw, row.grid_kw) == pytest.approx((50, 30, -20))
    assert row.grid_export_kw == pytest.approx(20.0)
    # The agent's curtailment limit of 25 kW: 25 used, grid 10 - 25 = -15 kW.
    physics.set_pv_limit_kw(25.0)
    row = physics.step()
    assert (row.pv_used_kw, row.grid_kw) == pytest.approx((25.0, -15.0))
    # No limit, battery charging 10 kW: the site uses 20, so 40 kW of PV; grid 10 + 10 - 40.
    physics.set_pv_limit_kw(None)
    physics.set_battery_kw(-10.0)
    row = physics.step()
    assert (row.pv_used_kw, row.grid_kw) == pytest.approx((40.0, -20.0))


def test_a_site_without_battery_or_pv_reports_none_and_zero() -> None:
    physics = instant(site(base_load=Curve((0.0,), (6.9,))))
    physics.set_battery_kw(50.0)  # nothing to command
    row = physics.step()
    assert (row.battery_kw, row.battery_soc, row.pv_available_kw) == (0.0, None, 0.0)
    # 6.9 kW over 3 phases = 2.3 kW = 10 A per phase.
    assert (row.i_l1_a, row.i_l2_a, row.i_l3_a) == pytest.approx((10.0, 10.0, 10.0))
    with pytest.raises(KeyError, match="no connector"):
        physics.set_connector_limit("X9", 1, 10.0)
