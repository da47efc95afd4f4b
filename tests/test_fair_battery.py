"""The fair strategy's battery: it shaves what the chargers can deliver, stores what the cars
leave while storing pays, and never discharges into the export."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from types import MappingProxyType

from agent.config import TariffPeriod, TariffSection
from agent.control.battery_lp import BatteryLimits as PlannerBattery
from agent.control.fair import FairStrategy
from agent.control.observe import observe
from agent.control.planner import Planner
from agent.control.site_model import BatteryLimits, SiteModel
from agent.state import Quality, Reading, Snapshot, SnapshotValue
from tests.test_fair_strategy import dc_site

MIDNIGHT = datetime(2026, 1, 5, tzinfo=UTC)
TARIFF = TariffSection(
    timezone="UTC",
    periods=[
        TariffPeriod(name="valley", start="00:00", end="08:00", price=0.3),
        TariffPeriod(name="peak", start="08:00", end="24:00", price=1.05),
    ],
)


def site(chargers: int = 2, limit_kw: float = 300.0) -> SiteModel:
    """The fair-strategy tests' DC site, with no margin or reserve, and a battery and PV."""
    return replace(
        dc_site(chargers, limit_kw), export_limit_kw=100.0, safety_margin_kw=0.0,
        reserve_kw=0.0, battery="battery", inverters=("pv",),
        battery_limits=BatteryLimits(500.0, 500.0, 0.1, 0.95),
    )  # fmt: skip


def strategy(model: SiteModel) -> FairStrategy:
    battery = PlannerBattery(1000.0, 0.5, 0.1, 0.95, 500.0, 500.0)
    return FairStrategy(model, Planner(battery, TARIFF, model.import_limit_kw, 100.0))


def snapshot(
    t: float, wall: datetime, base_kw: float, pv_kw: float, battery_kw: float,
    draws: dict[str, float], bms: Mapping[str, float | None] | None = None,
) -> Snapshot:  # fmt: skip
    """The site's meters for loads that balance: grid = base + cars - PV - battery discharge."""
    values = {}

    def put(device: str, quantity: str, value: float) -> None:
        values[(device, quantity)] = SnapshotValue(
            Reading(device, quantity, value, t, wall), 0.0, Quality.GOOD
        )

    grid = base_kw + sum(draws.values()) - pv_kw - battery_kw
    put("grid-meter", "power", grid * 1000)
    for device, kw in draws.items():
        put(device, "power", kw * 1000)
        put(device, "charging_state", 2.0 if kw > 0 else 1.0)  # plugged in
    put("battery", "soc", 50.0)
    put("battery", "power", -battery_kw * 1000)  # the agent's quantity: + = charging
    put("pv", "power", pv_kw * 1000)
    for quantity, value in (bms or {}).items():  # None: the BMS stopped answering
        reading = Reading("battery", quantity, value or 0.0, t, wall)
        quality = Quality.GOOD if value is not None else Quality.STALE
        values[("battery", quantity)] = SnapshotValue(reading, 0.0, quality)
    return Snapshot(t, MappingProxyType(values), MappingProxyType({}))


def run(
    s: FairStrategy, wall: datetime, base_kw: float, pv_kw: float, takes: dict[str, float],
    seconds: int = 30, bms: Mapping[str, float | None] | None = None,
) -> list[float]:  # fmt: skip
    """Cars that take at most `takes` follow their limits after 2 s; returns battery commands."""
    sent: dict[str, list[float]] = {d: [] for d in takes}
    battery_kw = 0.0
    commands = []
    for t in range(seconds):
        draws = {d: min(takes[d], sent[d][-3] if len(sent[d]) >= 3 else 0.0) for d in takes}
        plan = s.step(snapshot(float(t), wall + timedelta(seconds=t), base_kw, pv_kw,
                               battery_kw, draws, bms), float(t))  # fmt: skip
        for d in takes:
            sent[d].append(plan.connectors[d].value)
        battery_kw = plan.battery_kw or 0.0
        commands.append(battery_kw)
    return commands


def test_two_cars_on_one_charger_are_shaved_for_the_charger_not_for_two() -> None:
    # Peak hours; 300 kW limit, 250 kW base load: 50 kW of grid room. Two cars on one 120 kW
    # charger can draw 120 kW together: the battery covers 70, not the 190 two cars "want".
    s = strategy(site(chargers=1))
    commands = run(s, MIDNIGHT + timedelta(hours=12), 250.0, 0.0, {"c01-1": 120, "c01-2": 120})
    assert 65.0 <= commands[-1] <= 75.0


def test_valley_room_the_cars_leave_is_stored() -> None:
    # Valley: 300 kW limit, 50 kW base, one car that takes 40 kW: 210 kW go into the battery.
    s = strategy(site())
    commands = run(s, MIDNIGHT + timedelta(hours=2), 50.0, 0.0, {"c01-1": 40.0})
    assert commands[-1] == -(300.0 - 50.0 - 41.0)  # the car's estimate: its draw + 1 kW


def test_a_planned_discharge_never_exceeds_what_the_site_draws() -> None:
    # Peak hours, PV 150 kW covers the 50 kW base and most of a car taking 60 kW. Whatever the
    # planner wants, discharging more than the 10 kW the site still needs would be exported.
    s = strategy(site())
    assert s.planner is not None
    wall = MIDNIGHT + timedelta(hours=18)
    for minute in range(24 * 60):  # yesterday the site drew 200 kW all day
        s.planner.record(wall - timedelta(days=1, minutes=minute), 200.0, 0.0)
    s.planner.replan(wall, 0.9)  # full battery, dear evening: the plan discharges
    planned = s.planner.planned_kw(wall)
    assert planned is not None
    assert planned > 100.0
    commands = run(s, wall, 50.0, 100.0, {"c01-1": 60.0})
    assert max(commands[10:]) > 5.0  # it does discharge, for the site's own need ...
    assert all(kw <= 10.0 + 1e-6 for kw in commands[10:])  # ... and no more


BMS: dict[str, float | None] = {
    "battery_voltage": 800.0, "charge_current_limit": 100.0, "discharge_current_limit": 100.0,
    "cell_temperature_min": 20.0, "cell_temperature_max": 24.0,
}  # fmt: skip


def test_shaving_stays_within_what_the_bms_allows() -> None:
    # The same 70 kW shortfall as above, but the BMS allows 100 A at 800 V: 80 kW DC, 76 AC
    # after a 0.95 conversion. Below that it shaves as before; a 40 A limit caps it at 30.4.
    model = site(chargers=1)
    assert model.battery_limits is not None
    limits = model.battery_limits
    model = replace(model, battery_limits=replace(limits, discharge_efficiency=0.95))
    wall = MIDNIGHT + timedelta(hours=12)
    takes = {"c01-1": 120.0, "c01-2": 120.0}
    assert 65.0 <= run(strategy(model), wall, 250.0, 0.0, takes, bms=BMS)[-1] <= 75.0
    weak = {**BMS, "discharge_current_limit": 40.0}
    assert run(strategy(model), wall, 250.0, 0.0, takes, bms=weak)[-1] == 40 * 800 / 1000 * 0.95


def test_a_dead_or_cold_bms_takes_the_battery_out() -> None:
    wall = MIDNIGHT + timedelta(hours=12)
    takes = {"c01-1": 120.0, "c01-2": 120.0}
    dead = {**BMS, "discharge_current_limit": None}
    assert run(strategy(site(chargers=1)), wall, 250.0, 0.0, takes, bms=dead)[-1] == 0.0
    # 200 kW of PV surplus at noon: a cold battery may not store it (the PV is exported or
    # curtailed instead); a warm one stores it.
    cold = {**BMS, "cell_temperature_min": -3.0}
    assert run(strategy(site()), wall, 50.0, 250.0, {}, bms=cold)[-1] == 0.0
    assert run(strategy(site()), wall, 50.0, 250.0, {}, bms=BMS)[-1] == -80.0


class ChargingPlanner(Planner):
    """A planner whose path says: charge 200 kW now, and for whom storing never pays."""

    def planned_kw(self, now: datetime) -> float | None:
        return -200.0

    def storing_pays(self, now: datetime) -> bool:
        return False


def test_a_planned_charge_takes_only_what_the_cars_leave() -> None:
    model = site(chargers=3, limit_kw=300.0)
    battery = PlannerBattery(1000.0, 0.5, 0.1, 0.95, 500.0, 500.0)
    planner = ChargingPlanner(battery, TARIFF, model.import_limit_kw, 100.0)
    # The cars want 240 kW of the 300: the plan's 200 kW charge gets the 60 they leave.
    takes = {"c01-1": 120.0, "c02-1": 120.0}
    assert run(FairStrategy(model, planner), MIDNIGHT, 0.0, 0.0, takes)[-1] == -60.0
    # Three cars on three chargers want 360 kW: no charging, the battery shaves the 60 over.
    takes["c03-1"] = 120.0
    assert run(FairStrategy(model, planner), MIDNIGHT, 0.0, 0.0, takes)[-1] == 60.0


class SunnyPlanner(Planner):
    """A planner whose plan sees PV it cannot use tomorrow, and plans no charge now."""

    def expects_unused_pv(self, now: datetime) -> bool:
        return True

    def planned_kw(self, now: datetime) -> float | None:
        return 0.0


def test_the_valley_room_is_left_to_the_pv_when_the_plan_sees_a_surplus_ahead() -> None:
    model = site()
    battery = PlannerBattery(1000.0, 0.5, 0.1, 0.95, 500.0, 500.0)
    planner = SunnyPlanner(battery, TARIFF, model.import_limit_kw, 100.0)
    commands = run(FairStrategy(model, planner), MIDNIGHT, 50.0, 0.0, {"c01-1": 60.0})
    assert commands[-1] == 0.0  # the valley's room would be stored without the sunny plan


def test_a_planned_discharge_is_handed_back_when_the_cars_will_not_draw_it() -> None:
    # The plan discharges in the dear evening; PV covers the site but for 10 kW, and the cars
    # it was cut for (cars waiting for cheaper hours, or cut by a lower budget) will draw
    # nothing: the discharge falls to the site's 10 kW, not into the export. Behind a phase
    # limit it falls only as far as the phases can carry the difference.
    for phase_limit_a, room_left_kw, expected in ((None, 500.0, 10.0), (2000.0, 500.0, 10.0),
                                                  (2000.0, 30.0, 70.0)):  # fmt: skip
        model = replace(site(), phase_limit_a=phase_limit_a)
        s = strategy(model)
        assert s.planner is not None
        wall = MIDNIGHT + timedelta(hours=18)
        for minute in range(24 * 60):
            s.planner.record(wall - timedelta(days=1, minutes=minute), 200.0, 0.0)
        s.planner.replan(wall, 0.9)
        obs = observe(snapshot(0.0, wall, 50.0, 100.0, 0.0, {"c01-1": 60.0}), model)
        first = s.battery.first_cut(obs, grid_room=250.0, wanted=60.0, non_controllable=-50.0)
        assert first == 10.0  # what the site and the car draw now, net of PV
        first = 100.0  # as if the car had drawn 140 kW when the cut was made
        settled = s.battery.settle(obs, first, 250.0, 0.0, 10.0, partial(float, room_left_kw))
        assert settled == expected
