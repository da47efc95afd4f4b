"""How fast the site physics steps: `python -m hil.physics_bench`.

Builds a station like the reference one (91 dual-connector 120 kW DC chargers, ~660 sessions over
a day, PV, battery) from the dataclasses and steps it 86,400 times at 1 s, with the agent's part
reduced to writing limits: none after the first (an endless watchdog), every connector every 10 s,
and every connector every second. A stress case keeps a car on every connector all day.
"""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta, timezone

from hil.physics import SitePhysics
from hil.scenario import (
    BatterySpec,
    ChargerSpec,
    ConnectorSpec,
    Curve,
    PvSpec,
    Scenario,
    SessionSpec,
    SiteSpec,
    Tariff,
    TariffPeriod,
)

DAY_S = 86_400


def synthetic_station(sessions: int = 660, chargers: int = 91, *, seed: int = 1) -> Scenario:
    """A day at a DC taxi hub; sessions are spread over the day, never overlapping per connector.

    `sessions=0` puts one car on every connector for the whole day (the stress case).
    """
    rng = random.Random(seed)
    specs = tuple(
        ChargerSpec(
            id=f"C{index:03d}",
            kind="dc",
            max_kw=120.0,
            phases=3,
            phase=None,
            min_a=None,
            max_a=None,
            connectors=(ConnectorSpec(1, 120.0), ConnectorSpec(2, 120.0)),
        )
        for index in range(1, chargers + 1)
    )
    slots = [(spec.id, connector.id) for spec in specs for connector in spec.connectors]
    booked: list[SessionSpec] = []
    if sessions == 0:
        for charger, connector in slots:
            booked.append(
                SessionSpec(f"S{len(booked):04d}", charger, connector, 0, DAY_S, 5000.0, 150.0)
            )
    free_at = dict.fromkeys(slots, 0.0)
    for arrive in sorted(rng.randrange(0, DAY_S - 900) for _ in range(sessions)):
        arrive_s = float(arrive)
        free = [slot for slot in slots if free_at[slot] <= arrive_s]
        if not free:
            continue
        charger, connector = rng.choice(free)
        depart_s = min(float(DAY_S), arrive_s + rng.randrange(900, 5400))
        free_at[(charger, connector)] = depart_s
        energy_kwh = round(rng.uniform(10.0, 60.0), 1)
        max_kw = round(rng.uniform(40.0, 150.0), 1)
        booked.append(
            SessionSpec(
                f"S{len(booked):04d}", charger, connector, arrive_s, depart_s, energy_kwh, max_kw
            )
        )
    hours = [h * 3600.0 for h in range(25)]
    sun = [max(0.0, 1.0 - abs(h - 12) / 6.5) for h in range(25)]
    return Scenario(
        name="synthetic-station",
        description="physics benchmark",
        start=datetime(2025, 7, 15, tzinfo=timezone(timedelta(hours=8))),
        duration_s=DAY_S,
        site=SiteSpec(
            grid_limit_kw=1200.0,
            export_limit_kw=1000.0,
            phase_limit_a=None,
            voltage_v=230.0,
            base_load_kw=Curve((0.0, 43_200.0, 86_400.0), (60.0, 140.0, 60.0)),
        ),
        pv=PvSpec(1100.0, Curve(tuple(hours), tuple(sun))),
        battery=BatterySpec(2000.0, 1000.0, 1000.0, 0.3, 0.1, 0.95, 0.96, 0.96),
        tariff=Tariff((TariffPeriod("flat", 0, 1440, 0.2),), 0.05, "EUR"),
        chargers=specs,
        sessions=tuple(booked),
        events=(),
    )


def steps_per_second(scenario: Scenario, renew_every_s: int | None) -> tuple[float, float]:
    """Step a day; return (steps per CPU second, kWh delivered)."""
    timeout_s = float("inf") if renew_every_s is None else 60.0
    physics = SitePhysics(scenario, setpoint_timeout_s=timeout_s)
    connectors = physics.connector_ids()
    started = time.process_time()
    for second in range(scenario.duration_s):
        if second == 0 or (renew_every_s is not None and second % renew_every_s == 0):
            for charger, connector in connectors:
                physics.set_connector_limit(charger, connector, 60.0)
            physics.set_battery_kw(-200.0 if 36_000 <= second < 50_000 else 100.0)
        physics.step(1.0)
    cpu_s = time.process_time() - started
    return scenario.duration_s / cpu_s, sum(physics.delivered_kwh().values())


def main() -> None:
    station = synthetic_station()
    print(f"{len(station.sessions)} sessions on {len(station.chargers) * 2} DC connectors, a day:")
    for renew in (None, 10, 1):
        rate, kwh = steps_per_second(station, renew)
        label = "limits set once" if renew is None else f"all limits renewed every {renew} s"
        print(f"  {label:34} {rate:9,.0f} steps/s  ({DAY_S / rate:5.1f} s CPU, {kwh:,.0f} kWh)")
    rate, kwh = steps_per_second(synthetic_station(sessions=0), 1)
    label = "stress: a car on every connector"
    print(f"  {label:34} {rate:9,.0f} steps/s  ({DAY_S / rate:5.1f} s CPU, {kwh:,.0f} kWh)")


if __name__ == "__main__":
    main()
