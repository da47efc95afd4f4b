"""Write ac-car-park.json: an office and residential AC car park behind a 63 A fuse.

Ten wallboxes: five 11 kW 3-phase (16 A) and five 7.4 kW 1-phase (32 A), the 1-phase ones
wired three to L1 and one each to L2 and L3, so L1 is the phase the fuse limits first (all boxes
at full current would put 176 A on L1 against 112 A on L2 and L3). The grid limit is the
fuse's 63 A x 230 V x 3 = 43.5 kW, rounded down to 43 kW. 30 kWp of PV on a clear July day,
a 30 kWh / 15 kW battery and a peak / flat / valley tariff with the reference station's hours.

The cars: two residents still plugged in from the night before who leave 06:30-07:20,
commuters arriving 07:30-09:30 for 8-9 h wanting 10-30 kWh, short visitor stays during the day
and residents arriving 18:00-20:30 who stay overnight and leave 06:30-07:20 the next morning.
Each car takes a free wallbox at random; a visitor who finds none drives on. The run goes on
to 08:00 the next morning (`TAIL_S`), once the last resident has left, so that every stay is
whole: a run that ended at midnight would score a controller that leaves the residents for the
22:00 valley (as the site's history says it may) as having sent them away short.

Deterministic (fixed seed): `python -m hil.scenarios.make_ac_car_park` rewrites the same file.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.scenario_checks import check_scenario
from hil.scenario_loader import ScenarioError

TARGET = Path(__file__).resolve().parent / "ac-car-park.json"
SEED = 20250715
START = "2025-07-15T00:00:00+02:00"  # a Tuesday, local midnight
HOUR = 3600
DAY = 24 * HOUR  # the run starts at local midnight, so t_s / 3600 is local time
TAIL_S = 8 * HOUR  # into the next morning: the overnight residents leave by 07:20
VOLTAGE_V = 230.0
FUSE_A = 63.0

# (id, phase): None is an 11 kW 3-phase box (16 A), "L1".."L3" a 7.4 kW 1-phase box (32 A)
WALLBOXES: list[tuple[str, str | None]] = [
    ("W01", None), ("W02", "L1"), ("W03", None), ("W04", "L2"), ("W05", "L1"),
    ("W06", None), ("W07", "L3"), ("W08", None), ("W09", "L1"), ("W10", None),
]  # fmt: skip

# offices from 08:00, lights and ventilation through the day, homes in the evening
BASE_LOAD_KW: list[list[float]] = [
    [0, 4.0], [6 * HOUR, 4.0], [8 * HOUR, 11.0], [12 * HOUR, 14.0],
    [17 * HOUR, 12.0], [19 * HOUR, 7.0], [22 * HOUR, 5.0], [DAY, 4.0],
]  # fmt: skip

SUNRISE_S, SUNSET_S = 5 * HOUR + 40 * 60, 21 * HOUR + 10 * 60  # mid-July, UTC+2
PV_CLEAR_PEAK = 0.8  # of kWp at solar noon: module temperature, inverter and wiring losses


@dataclass(frozen=True, slots=True)
class Stay:
    arrive_s: int
    depart_s: int
    energy_kwh: float
    max_kw: float


def uniform(rng: random.Random, low: float, high: float, digits: int = 1) -> float:
    return round(rng.uniform(low, high), digits)


def seconds(rng: random.Random, low_h: float, high_h: float) -> int:
    return round(rng.uniform(low_h * HOUR, high_h * HOUR))


def stays(rng: random.Random) -> list[Stay]:
    """The day's cars, in arrival order."""
    found = [
        Stay(0, seconds(rng, 6.5, 7 + 1 / 3), uniform(rng, 5, 15), uniform(rng, 7, 11))
        for _ in range(2)  # residents from last night
    ]
    for _ in range(8):  # commuters
        arrive = seconds(rng, 7.5, 9.5)
        stay = seconds(rng, 8, 9)
        found.append(Stay(arrive, arrive + stay, uniform(rng, 10, 30), uniform(rng, 7, 11)))
    for _ in range(6):  # visitors
        arrive = seconds(rng, 10, 16)
        stay = seconds(rng, 0.5, 2)
        found.append(Stay(arrive, arrive + stay, uniform(rng, 3, 10), uniform(rng, 7, 11)))
    # Their departures come from a generator of their own, so the rest of the day's draws
    # (and the cars' wallboxes) are those of the day the scenario first had.
    leaving = random.Random(SEED + 1)
    for _ in range(3):  # residents home for the night
        arrive = seconds(rng, 18, 20.5)
        depart = DAY + seconds(leaving, 6.5, 7 + 1 / 3)
        found.append(Stay(arrive, depart, uniform(rng, 15, 30), uniform(rng, 7, 11)))
    return sorted(found, key=lambda stay: stay.arrive_s)


def sessions(rng: random.Random, cars: list[Stay]) -> list[dict[str, Any]]:
    """Each car on a free wallbox, chosen at random; a car that finds none drives on."""
    free_from = {box: 0 for box, _ in WALLBOXES}
    found: list[dict[str, Any]] = []
    for car in cars:
        free = [box for box, t_s in free_from.items() if t_s <= car.arrive_s]
        if not free:
            continue
        box = rng.choice(free)
        free_from[box] = car.depart_s
        found.append(
            {
                "id": f"S{len(found) + 1:03d}",
                "charger": box,
                "connector": 1,
                "arrive_s": car.arrive_s,
                "depart_s": car.depart_s,
                "energy_kwh": car.energy_kwh,
                "max_kw": car.max_kw,
            }
        )
    return found


def charger(box: str, phase: str | None) -> dict[str, Any]:
    max_kw, max_a = (11.0, 16.0) if phase is None else (7.4, 32.0)
    wiring: dict[str, Any] = {"phases": 3} if phase is None else {"phases": 1, "phase": phase}
    return {
        "id": box,
        "kind": "ac",
        "max_kw": max_kw,
        **wiring,
        "min_a": 6.0,
        "max_a": max_a,
        "connectors": [{"id": 1, "max_kw": max_kw}],
    }


def pv_profile() -> list[list[float]]:
    """A clear summer day every 15 min: a sine arch from sunrise to sunset, flattened a bit
    (the next morning's the same)."""
    points = []
    for t_s in range(0, DAY + TAIL_S + 1, 15 * 60):
        x = (t_s % DAY - SUNRISE_S) / (SUNSET_S - SUNRISE_S)
        fraction = PV_CLEAR_PEAK * math.sin(math.pi * x) ** 1.3 if 0 < x < 1 else 0.0
        points.append([t_s, round(fraction, 4)])
    return points


def car_park() -> dict[str, Any]:
    rng = random.Random(SEED)
    return {
        "name": "ac-car-park",
        "description": (
            "Office and residential AC car park: 10 wallboxes (5 x 11 kW 3-phase, 5 x 7.4 kW "
            "1-phase: 3 on L1, 1 on L2, 1 on L3) behind a 63 A fuse (43 kW), 30 kWp PV, "
            "30 kWh / 15 kW battery, peak/flat/valley tariff."
        ),
        "start": START,
        "duration_s": DAY + TAIL_S,
        "site": {
            "grid_limit_kw": 43.0,
            "export_limit_kw": 21.0,  # 70 % of the PV's peak, a common feed-in cap
            "phase_limit_a": [FUSE_A, FUSE_A, FUSE_A],
            "voltage_v": VOLTAGE_V,
            "base_load_kw": [
                *BASE_LOAD_KW,
                *([DAY + t_s, kw] for t_s, kw in BASE_LOAD_KW[1:] if t_s <= TAIL_S),
            ],
        },
        "pv": {"peak_kw": 30.0, "profile": pv_profile()},
        "battery": {
            "capacity_kwh": 30.0,
            "max_charge_kw": 15.0,
            "max_discharge_kw": 15.0,
            "soc_init": 0.5,
            "soc_min": 0.1,
            "soc_max": 0.95,
            "charge_efficiency": 0.95,
            "discharge_efficiency": 0.95,
        },
        "tariff": {
            "periods": [
                {"start": "00:00", "end": "08:00", "price": 0.18, "name": "valley"},
                {"start": "08:00", "end": "11:00", "price": 0.38, "name": "peak"},
                {"start": "11:00", "end": "17:00", "price": 0.27, "name": "flat"},
                {"start": "17:00", "end": "22:00", "price": 0.38, "name": "peak"},
                {"start": "22:00", "end": "24:00", "price": 0.18, "name": "valley"},
            ],
            "export_price": 0.07,
            "currency": "EUR",
        },
        "chargers": [charger(box, phase) for box, phase in WALLBOXES],
        "sessions": sessions(rng, stays(rng)),
        "events": [],
    }


def main() -> None:
    scenario = car_park()
    problems = check_scenario(scenario)  # never leave an invalid file behind
    if problems:
        raise ScenarioError(str(TARGET), problems)
    TARGET.write_text(json.dumps(scenario, indent=1) + "\n", encoding="utf-8")
    energy = sum(session["energy_kwh"] for session in scenario["sessions"])
    print(f"wrote {TARGET.name}: {len(scenario['sessions'])} sessions, {energy:.1f} kWh requested")


if __name__ == "__main__":
    main()
