"""Deferral on the simulator: the car park's Monday morning, with and without the week before.

A controller that knows the site (the stays of the week before, as its state file would hold
them) lets the commuters wait through the 08:00-11:00 peak and charges them from 11:00; one
that does not charges them in the peak. Half a simulated day each, in fast mode.
"""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

from agent.config_loader import load_config
from agent.control.learnt_state import LearntState, save_state
from agent.control.stays import WEEKEND_DAYS, Stay
from hil.bench.common import sliced
from hil.fast_mode import run_fast
from hil.scenario_loader import build_scenario, load_scenario
from hil.scenarios.make_ac_car_park_week import prior_week
from hil.site_config import site_toml
from tests.sites import WriteSite

HOUR = 3600


def week_before_state(path: Path) -> Path:
    """The prior week's stays as the controller would have recorded them."""
    before = build_scenario(prior_week())
    stays = [
        Stay(
            s.arrive_s % 86_400,
            s.depart_s - s.arrive_s,
            s.energy_kwh,
            (before.start + timedelta(seconds=s.arrive_s)).weekday() in WEEKEND_DAYS,
        )
        for s in before.sessions
        if s.depart_s < before.duration_s
    ]
    save_state(path, LearntState(arrivals=stays))
    return path


def import_kwh(out: Path, from_h: float, to_h: float) -> tuple[float, float]:
    """(grid import, charging not covered by PV the site left over) in kWh between two hours
    of the run: a waiting car may charge from PV that would otherwise be exported."""
    grid = ev = 0.0
    with (out / "timeseries.csv").open() as handle:
        for row in csv.DictReader(handle):
            if from_h * HOUR <= float(row["t_s"]) < to_h * HOUR:
                grid += max(float(row["grid_kw"]), 0.0) / HOUR
                spare_pv = max(float(row["pv_used_kw"]) - float(row["base_load_kw"]), 0.0)
                ev += max(float(row["ev_kw"]) - spare_pv, 0.0) / HOUR
    return grid, ev


def run_morning(tmp: Path, write_site: WriteSite, learnt: Path | None) -> dict[str, object]:
    scenario = sliced(load_scenario("ac-car-park-week"), 12 * HOUR)
    config = load_config(write_site(site_toml(scenario, strategy="fair")))
    return run_fast(scenario, config, tmp, "fair", progress=False, learnt_from=learnt)


def test_commuters_wait_for_the_flat_hours_once_the_site_is_known(
    tmp_path: Path, write_site: WriteSite
) -> None:
    state = week_before_state(tmp_path / "state.json")
    known, cold = tmp_path / "known", tmp_path / "cold"
    kpis = run_morning(known, write_site, state)
    run_morning(cold, write_site, None)

    peak_known, ev_peak_known = import_kwh(known, 8, 11)
    peak_cold, ev_peak_cold = import_kwh(cold, 8, 11)
    assert ev_peak_cold > 40.0  # without history the commuters charge in the peak ...
    assert ev_peak_known < 0.25 * ev_peak_cold  # ... unless they are known to stay
    assert peak_known < 0.25 * peak_cold
    _, ev_flat_known = import_kwh(known, 11, 12)
    _, ev_flat_cold = import_kwh(cold, 11, 12)
    # and they catch up from 11:00 (~36 kWh in the first hour against ~29 cold)
    assert ev_flat_known > ev_flat_cold + 5.0
    assert kpis["limit_violation_kwh"] == 0.0
    assert (known / "control-state.json").exists()  # what it learnt, for the next run
