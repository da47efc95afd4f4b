"""Write ac-car-park-week.json: the AC car park over a week, Monday 00:00 to next Monday 08:00.

The one-day car park cannot show what a controller learns: its cars come once, and its
evening residents are cut off by the end of the run. Here the same site (wallboxes, fuse, PV,
battery, tariff: `make_ac_car_park`) sees a week of cars, each day drawn afresh:

- weekdays: eight commuters arriving 07:30-09:30 for 8-9 h wanting 10-30 kWh, six visitors
  (10:00-16:00, 0.5-2 h, 3-10 kWh) and three residents arriving 18:00-20:30 who leave the next
  morning (06:30-07:20 before a weekday, 08:30-11:00 before a weekend day) wanting 15-30 kWh;
- weekends: no commuters, eight visitors (10:00-18:00, 0.5-3 h), the same residents;
- the offices' load only on weekdays; each day's PV is clear sky times a clearness of 0.4-1.

The run ends at 08:00 on the eighth day, once the last night's residents have left, so every
stay is complete. `week(seed, start)` builds any week; the shipped file is `SEED`'s week from
Monday 2025-07-14, and the benchmark lets the controller learn from the week before (another
seed) first, as an agent that has been running at the site would have.

Deterministic: `python -m hil.scenarios.make_ac_car_park_week` rewrites the same file.
"""

from __future__ import annotations

import json
import math
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hil.scenario_checks import check_scenario
from hil.scenario_loader import ScenarioError
from hil.scenarios.make_ac_car_park import (
    BASE_LOAD_KW,
    DAY,
    HOUR,
    PV_CLEAR_PEAK,
    SUNRISE_S,
    SUNSET_S,
    Stay,
    car_park,
    seconds,
    sessions,
    uniform,
)
from hil.scenarios.make_ac_car_park import START as ONE_DAY_START

TARGET = Path(__file__).resolve().parent / "ac-car-park-week.json"
SEED = 20250714
START = datetime.fromisoformat("2025-07-14T00:00:00+02:00")  # a Monday
PRIOR_SEED = 20250707  # the week before, for the benchmark's learning run
DAY_PRIOR_SEED = 20250708  # the week before the one-day car park, likewise
DAYS = 7
TAIL_S = 8 * HOUR  # into the eighth day: the last residents leave by 07:20 (11:00 on weekends)
WEEKEND_BASE_LOAD_KW: list[list[float]] = [
    [0, 4.0], [8 * HOUR, 5.0], [12 * HOUR, 6.0], [19 * HOUR, 7.0], [22 * HOUR, 5.0], [DAY, 4.0],
]  # fmt: skip  # homes only: the offices are closed


def is_weekend(day: datetime) -> bool:
    return day.weekday() >= 5


def day_stays(rng: random.Random, day: datetime, offset_s: int) -> list[Stay]:
    """One day's arrivals (the residents leave the next morning)."""
    found: list[Stay] = []

    def add(arrive: int, depart: int, energy: float, max_kw: float) -> None:
        found.append(Stay(offset_s + arrive, offset_s + depart, energy, max_kw))

    weekend = is_weekend(day)
    if not weekend:
        for _ in range(8):  # commuters
            arrive = seconds(rng, 7.5, 9.5)
            add(arrive, arrive + seconds(rng, 8, 9), uniform(rng, 10, 30), uniform(rng, 7, 11))
    for _ in range(8 if weekend else 6):  # visitors
        arrive = seconds(rng, 10, 18 if weekend else 16)
        stay = seconds(rng, 0.5, 3 if weekend else 2)
        add(arrive, arrive + stay, uniform(rng, 3, 10), uniform(rng, 7, 11))
    leave_h = (8.5, 11.0) if is_weekend(day + timedelta(days=1)) else (6.5, 7 + 1 / 3)
    for _ in range(3):  # residents home for the night
        arrive = seconds(rng, 18, 20.5)
        add(arrive, DAY + seconds(rng, *leave_h), uniform(rng, 15, 30), uniform(rng, 7, 11))
    return found


def profile(points: list[list[float]], offset_s: int, scale: float = 1.0) -> list[list[float]]:
    return [[offset_s + t_s, round(value * scale, 4)] for t_s, value in points]


def clear_sky() -> list[list[float]]:
    """The clear-sky fraction every 15 min of a day (the one-day car park's arch)."""
    points = []
    for t_s in range(0, DAY, 15 * 60):
        x = (t_s - SUNRISE_S) / (SUNSET_S - SUNRISE_S)
        points.append([t_s, PV_CLEAR_PEAK * math.sin(math.pi * x) ** 1.3 if 0 < x < 1 else 0.0])
    return points


def week(seed: int, start: datetime, name: str, tail_s: int = TAIL_S) -> dict[str, Any]:
    rng = random.Random(seed)
    cars = [Stay(0, seconds(rng, 6.5, 7 + 1 / 3), uniform(rng, 5, 15), uniform(rng, 7, 11))]
    cars.append(Stay(0, seconds(rng, 6.5, 7 + 1 / 3), uniform(rng, 5, 15), uniform(rng, 7, 11)))
    base: list[list[float]] = []
    pv: list[list[float]] = []
    for index in range(DAYS + 1):
        day = start + timedelta(days=index)
        offset = index * DAY
        weekday_load = BASE_LOAD_KW[:-1]
        base += profile(WEEKEND_BASE_LOAD_KW[:-1] if is_weekend(day) else weekday_load, offset)
        pv += profile(clear_sky(), offset, uniform(rng, 0.4, 1.0, 2))
        if index < DAYS:
            cars += day_stays(rng, day, offset)
    duration = DAYS * DAY + tail_s
    base = [point for point in base if point[0] <= duration]
    pv = [point for point in pv if point[0] <= duration]
    one_day = car_park()
    scenario: dict[str, Any] = {
        "name": name,
        "description": (
            "The AC car park (10 wallboxes behind a 63 A fuse, 30 kWp PV, 30 kWh battery, "
            "peak/flat/valley tariff) over a week: commuters on weekdays, visitors, residents "
            "overnight; offices closed at the weekend; a clearness of 0.4-1 per day."
        ),
        "start": start.isoformat(),
        "duration_s": duration,
        **{key: one_day[key] for key in ("site", "battery", "tariff", "chargers")},
        "pv": {"peak_kw": one_day["pv"]["peak_kw"], "profile": pv},
        "sessions": sessions(rng, sorted(cars, key=lambda car: car.arrive_s)),
        "events": [],
    }
    scenario["site"] = {**scenario["site"], "base_load_kw": base}
    return scenario


def write(scenario: dict[str, Any], target: Path) -> None:
    problems = check_scenario(scenario)  # never leave an invalid file behind
    if problems:
        raise ScenarioError(str(target), problems)
    target.write_text(json.dumps(scenario, indent=1) + "\n", encoding="utf-8")


def week_before(start: datetime, seed: int, name: str) -> dict[str, Any]:
    """The week that ends where a run starting at `start` begins (its last residents are still
    plugged in): what the agent at the site would have learnt from."""
    return week(seed, start - timedelta(days=DAYS), name, tail_s=0)


def prior_week() -> dict[str, Any]:
    """The week before the shipped one, drawn with another seed."""
    return week_before(START, PRIOR_SEED, "ac-car-park-prior-week")


def week_before_the_day() -> dict[str, Any]:
    """The week before the one-day car park (Tuesday 2025-07-15), drawn with another seed."""
    start = datetime.fromisoformat(ONE_DAY_START)
    return week_before(start, DAY_PRIOR_SEED, "ac-car-park-week-before-the-day")


def main() -> None:
    scenario = week(SEED, START, "ac-car-park-week")
    write(scenario, TARGET)
    energy = sum(session["energy_kwh"] for session in scenario["sessions"])
    print(f"wrote {TARGET.name}: {len(scenario['sessions'])} sessions, {energy:.1f} kWh requested")


if __name__ == "__main__":
    main()
