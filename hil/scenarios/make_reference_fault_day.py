"""Write reference-fault-day.json: the reference station's day with faults the agent must survive.

Same site, tariff, chargers and cars as reference-station.json, so a run's KPIs compare one to
one with the plain day; only the events and a cloud front in the PV profile differ:

- a utility curtailment: grid limit cut to 60 % (720 kW) 18:00-19:00, in the evening peak;
- a 90 s grid meter outage at 15:12, the moment most cars (40) are plugged in;
- charger C041 offline 17:00-17:30, while both its connectors have a car;
- a cloud front around noon: PV falls to 20 % of clear sky within 3 min at 11:40, stays there
  until 12:20 and is back within 3 min (a ramp the battery has to catch).

Run `python -m hil.scenarios.make_reference_fault_day`; it rewrites the file in place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hil.scenario import Curve
from hil.scenario_checks import check_scenario
from hil.scenario_loader import ScenarioError

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "reference-station.json"
TARGET = HERE / "reference-fault-day.json"

HOUR = 3600  # the reference day starts at local midnight (+08:00), so t_s / 3600 is local time
GRID_CUT = (18 * HOUR, 19 * HOUR, 720.0)  # from, until, kW (60 % of 1200)
METER_OUTAGE = (15 * HOUR + 12 * 60, 90)  # at, seconds
CHARGER_OFFLINE = ("C041", 17 * HOUR, 30 * 60)  # charger, at, seconds
CLOUD_START, CLOUD_END = 11 * HOUR + 40 * 60, 12 * HOUR + 23 * 60  # clear sky at both ends
CLOUD_RAMP = 3 * 60  # s from clear sky to the cloud's depth and back
CLOUD_DEPTH = 0.2  # fraction of the clear-sky value under the cloud


def cloud_front(
    profile: list[list[float]], start: float, end: float, ramp: float, depth: float
) -> list[list[float]]:
    """The profile with PV at `depth` of its clear-sky value from start + ramp to end - ramp.

    Points inside the front are scaled (the sun's curve still shows through the cloud); the
    four corners are added where the profile has no point.
    """
    clear = Curve(tuple(t for t, _ in profile), tuple(v for _, v in profile))
    outside = [[t, v] for t, v in profile if t < start or t > end]
    inside = [[t, round(v * depth, 4)] for t, v in profile if start + ramp < t < end - ramp]
    corners = [
        [start, round(clear.at(start), 4)],
        [start + ramp, round(clear.at(start + ramp) * depth, 4)],
        [end - ramp, round(clear.at(end - ramp) * depth, 4)],
        [end, round(clear.at(end), 4)],
    ]
    return sorted(outside + inside + corners)


def fault_day(reference: dict[str, Any]) -> dict[str, Any]:
    day = dict(reference)
    day["name"] = "reference-fault-day"
    day["description"] = (
        "The reference station's day with faults: grid limit cut to 720 kW 18:00-19:00, "
        "a 90 s grid meter outage at 15:12, charger C041 offline 17:00-17:30 and a cloud "
        "front taking PV to 20 % 11:43-12:20."
    )
    pv = dict(reference["pv"])
    pv["profile"] = cloud_front(pv["profile"], CLOUD_START, CLOUD_END, CLOUD_RAMP, CLOUD_DEPTH)
    day["pv"] = pv
    cut_from, cut_until, cut_kw = GRID_CUT
    outage_at, outage_s = METER_OUTAGE
    charger, offline_at, offline_s = CHARGER_OFFLINE
    day["events"] = [
        {"t_s": outage_at, "type": "meter_outage", "duration_s": outage_s},
        {"t_s": offline_at, "type": "charger_offline", "charger": charger, "duration_s": offline_s},
        {"t_s": cut_from, "type": "grid_limit", "kw": cut_kw},
        {"t_s": cut_until, "type": "grid_limit", "kw": reference["site"]["grid_limit_kw"]},
    ]
    return day


def main() -> None:
    reference = json.loads(SOURCE.read_text(encoding="utf-8"))
    day = fault_day(reference)
    problems = check_scenario(day)  # never leave an invalid file behind
    if problems:
        raise ScenarioError(str(TARGET), problems)
    TARGET.write_text(json.dumps(day, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {TARGET.name}: {len(day['events'])} events")


if __name__ == "__main__":
    main()
