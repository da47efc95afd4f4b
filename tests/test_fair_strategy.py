"""The fair strategy on hand-made snapshots: unknown means less, and the budget holds.

Property (hypothesis): whatever the connectors report, a stale or missing grid meter never
yields more than the fail-safe total; with a fresh meter, the limits never add up to more than
the budget the measurements leave. Plus the fail-safe's gradual recovery, by hand.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.control.failsafe import FailSafe
from agent.control.fair import FairStrategy
from agent.control.plan import ConnectorLimit, Reason
from agent.control.site_model import ALL_PHASES, ChargerModel, ConnectorModel, SiteModel
from agent.control.static import charging_budget_kw
from agent.state import Quality, Reading, Snapshot, SnapshotValue

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def dc_site(chargers: int, limit_kw: float = 500.0) -> SiteModel:
    models = []
    for index in range(1, chargers + 1):
        charger = f"c{index:02d}"
        connectors = tuple(
            ConnectorModel(f"{charger}-{n}", charger, n, "dc", 120.0, ALL_PHASES, None, None)
            for n in (1, 2)
        )
        models.append(ChargerModel(charger, "dc", 120.0, connectors))
    return SiteModel(
        name="t", import_limit_kw=limit_kw, export_limit_kw=0.0, phase_limit_a=None,
        voltage_v=230.0, safety_margin_kw=5.0, reserve_kw=50.0, grid_meter="grid-meter",
        chargers=tuple(models), meter_max_age_s=3.0, charger_delay_s=2.0,
    )  # fmt: skip


def snapshot(
    at: float, grid_kw: float | None, grid_age_s: float, draws: dict[str, float]
) -> Snapshot:
    values = {}

    def put(device: str, quantity: str, value: float, age: float = 0.0) -> None:
        reading = Reading(device, quantity, value, at - age, NOW)
        values[(device, quantity)] = SnapshotValue(reading, age, Quality.GOOD)

    if grid_kw is not None:
        put("grid-meter", "power", grid_kw * 1000, grid_age_s)
        for phase in ("l1", "l2", "l3"):
            put("grid-meter", f"current_{phase}", abs(grid_kw) * 1000 / 690, grid_age_s)
    for device, kw in draws.items():
        put(device, "power", kw * 1000)
        put(device, "charging_state", 2.0 if kw > 0 else 1.0)
    return Snapshot(at, MappingProxyType(values), MappingProxyType({}))


def total_kw(limits: Mapping[str, ConnectorLimit]) -> float:
    return sum(limit.value for limit in limits.values())


@settings(max_examples=60, deadline=None)
@given(
    chargers=st.integers(1, 8),
    draws=st.lists(st.floats(0.0, 120.0), min_size=16, max_size=16),
    grid_kw=st.one_of(st.none(), st.floats(-200.0, 900.0)),
    age_s=st.floats(0.0, 30.0),
)
def test_unknown_grid_never_gets_more_than_the_failsafe_total(
    chargers: int, draws: list[float], grid_kw: float | None, age_s: float
) -> None:
    site = dc_site(chargers)
    strategy = FairStrategy(site)
    devices = [c.device for c in site.connectors]
    readings = dict(zip(devices, draws, strict=False))
    for second in range(4):  # a few cycles, so the ramp guard and acceptance have history
        plan = strategy.step(snapshot(float(second), grid_kw, age_s, readings), float(second))
        allowed = charging_budget_kw(site)
        if grid_kw is None or age_s > site.meter_max_age_s:
            assert total_kw(plan.connectors) <= allowed + 1e-6
            assert all(limit.reason is Reason.FAILSAFE for limit in plan.connectors.values())
        else:
            budget = (
                site.import_limit_kw - site.safety_margin_kw - (grid_kw - sum(readings.values()))
            )
            assert total_kw(plan.connectors) <= max(budget, 0.0) + 1e-6


def test_equal_cars_get_equal_shares_of_a_binding_limit() -> None:
    site = dc_site(3, limit_kw=200.0)
    strategy = FairStrategy(site)
    draws = {c.device: 10.0 for c in site.connectors}  # six cars, each taking what it gets
    for second in range(30):
        grid = 2.0 + sum(draws.values())  # a 2 kW base load plus what the cars draw
        plan = strategy.step(snapshot(float(second), grid, 0.0, draws), float(second))
        draws = {d: limit.value for d, limit in plan.connectors.items()}
    values = sorted(limit.value for limit in plan.connectors.values())
    # 200 kW - 5 margin - 2 base load = 193 kW over six cars: 32.1 kW each (0.1 kW steps).
    assert values[0] == values[-1] == 32.1


def test_failsafe_drops_at_once_and_recovers_gradually() -> None:
    failsafe = FailSafe(safe_kw=100.0, recovery_kw_per_s=50.0)
    assert failsafe.cap(0.0, False, 400.0) == 100.0  # start-up: safe until the meter is read
    assert failsafe.cap(1.0, True, 400.0) == 150.0  # ... then growing from there
    assert failsafe.cap(9.0, True, 400.0) == 400.0
    assert (failsafe.entries, failsafe.exits) == (0, 0)  # start-up is not an entry
    failsafe = FailSafe(safe_kw=100.0, recovery_kw_per_s=50.0)
    assert failsafe.cap(0.0, True, 400.0) == 100.0
    assert failsafe.cap(1.0, False, 400.0) == 100.0  # meter unknown: safe at once
    assert (failsafe.active, failsafe.entries, failsafe.entered_at) == (True, 1, [1.0])
    assert failsafe.cap(2.0, True, 400.0) == 150.0  # back: +50 kW per second from the safe value
    assert failsafe.cap(3.0, True, 400.0) == 200.0
    assert failsafe.cap(9.0, True, 400.0) == 400.0  # fully recovered
    assert failsafe.cap(10.0, True, 900.0) == 900.0
    assert failsafe.exits == 1


def test_a_growing_budget_never_cuts_a_car() -> None:
    # Start-up: the budget grows from the safe value at 50 kW/s while 16 cars want all they
    # can get. Each car's limit may only rise: a cut would be a write (a bus carries 32
    # connectors) and, with the chargers' delay, the start of an oscillation.
    site = dc_site(8, limit_kw=1200.0)
    strategy = FairStrategy(site)
    draws = {c.device: 0.0 for c in site.connectors}
    history: dict[str, list[float]] = {d: [] for d in draws}
    sent: dict[str, list[float]] = {d: [] for d in draws}
    for second in range(40):
        grid = 50.0 + sum(draws.values())
        plan = strategy.step(snapshot(float(second), grid, 0.0, draws), float(second))
        for device, limit in plan.connectors.items():
            history[device].append(limit.value)
            sent[device].append(limit.value)
        # The cars follow after 2 s and take everything they are given.
        draws = {d: sent[d][-3] if len(sent[d]) >= 3 else 0.0 for d in draws}
    for device, values in history.items():
        cuts = [(t, a, b) for t, (a, b) in enumerate(itertools.pairwise(values)) if b < a]
        assert cuts == [], device
