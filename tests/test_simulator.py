"""Fast mode end to end: a short run's kpis.json agrees with the KPIs recomputed from its CSVs.

Also the command line: `edge-agent simulate` with a broken scenario names the key and reason.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import pytest

from agent.cli import main
from agent.config_loader import load_config
from hil.fast_mode import run_fast
from hil.kpis_from_csv import kpis_from_files
from hil.scenario import Curve, GridLimitEvent, Scenario
from hil.scenario_loader import load_scenario
from hil.site_config import site_toml
from tests.sites import WriteSite


def morning(name: str, seconds: int, start_s: int) -> Scenario:
    """A stretch of a shipped scenario, shifted so that it starts at `start_s`."""
    scenario = load_scenario(name)
    sessions = tuple(
        dataclasses.replace(s, arrive_s=s.arrive_s - start_s, depart_s=s.depart_s - start_s)
        for s in scenario.sessions
        if s.arrive_s >= start_s and s.arrive_s < start_s + seconds
    )

    def shifted(curve: Curve) -> Curve:
        return dataclasses.replace(curve, times=tuple(t - start_s for t in curve.times))

    pv = scenario.pv and dataclasses.replace(scenario.pv, profile=shifted(scenario.pv.profile))
    site = dataclasses.replace(scenario.site, base_load_kw=shifted(scenario.site.base_load_kw))
    return dataclasses.replace(
        scenario,
        start=scenario.start + timedelta(seconds=start_s),
        duration_s=seconds,
        sessions=sessions,
        events=(GridLimitEvent(t_s=seconds / 2, kw=scenario.site.grid_limit_kw * 0.6),),
        site=site,
        pv=pv,
    )


def test_a_short_run_writes_kpis_that_its_csvs_confirm(
    tmp_path: Path, write_site: WriteSite
) -> None:
    scenario = morning("ac-car-park", seconds=1800, start_s=8 * 3600)
    assert scenario.sessions  # commuters arrive in this half hour
    config = load_config(write_site(site_toml(scenario)))
    kpis = run_fast(scenario, config, tmp_path, progress=False)
    written = json.loads((tmp_path / "kpis.json").read_text())
    assert written == json.loads(json.dumps(kpis))
    recomputed = kpis_from_files(tmp_path, scenario)
    for key, value in recomputed.items():
        if value is None:
            assert written[key] is None, key
        else:
            assert written[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    header = (tmp_path / "timeseries.csv").read_text().splitlines()[0]
    assert header == (
        "t_s,grid_kw,grid_limit_kw,base_load_kw,pv_available_kw,pv_used_kw,battery_kw,"
        "battery_soc,ev_kw,i_l1_a,i_l2_a,i_l3_a"
    )
    assert len((tmp_path / "timeseries.csv").read_text().splitlines()) == 1801
    # The static caps hold through the grid-limit cut at 15 minutes, and cars were charged.
    assert written["energy_delivered_kwh"] > 1.0
    assert written["setpoint_writes"] >= 10


def test_simulate_refuses_a_broken_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(Path("hil/scenarios/ac-car-park.json").read_text())
    session = data["sessions"][3]
    session["depart_s"] = session["arrive_s"] - 10
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data))
    assert main(["simulate", str(broken), "--out", str(tmp_path / "out"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"sessions[{session['id']}].depart_s: before arrive_s" in err
