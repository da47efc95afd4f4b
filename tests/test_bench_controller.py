"""The controller benchmark's comparison on a 10-minute slice of the AC car park.

Only structure and sanity here, no timing: the timed runs are for `python -m hil.bench_controller`.
"""

from __future__ import annotations

from hil.bench_controller import BOUND, STRATEGIES, compare_scenario, scenario_lines, timing_lines

SLICE_S = 600


def test_compare_scenario_reports_sane_kpis() -> None:
    result = compare_scenario("ac-car-park", SLICE_S, log=lambda _: None)

    assert result["scenario"] == "ac-car-park"
    assert result["simulated_s"] == SLICE_S
    assert result["connectors"] == 10
    assert result["phase_limits"]
    assert result["grid_limit_min_kw"] <= result["grid_limit_kw"]
    assert set(result["runs"]) == {*STRATEGIES, BOUND}
    bound = result["runs"][BOUND]["kpis"]
    for name in STRATEGIES:
        run = result["runs"][name]
        kpis = run["kpis"]
        assert kpis["strategy"] == name
        assert 0.0 <= kpis["energy_delivered_kwh"] <= kpis["energy_requested_kwh"]
        ratio = kpis["energy_delivered_kwh"] / bound["energy_delivered_kwh"]
        assert kpis["delivered_vs_yardstick"] == ratio
        assert 0 <= kpis["sessions_completed"] <= kpis["sessions"] == bound["sessions"]
        assert kpis["limit_violation_kwh"] >= 0.0
        assert kpis["phase_violation_s"] >= 0.0
        assert 0.0 < kpis["jain_fairness"] <= 1.0
        assert run["step"]["n"] == SLICE_S  # a 1 s control cycle
        assert 0.0 <= run["step"]["p50_ms"] <= run["step"]["p99_ms"] <= run["step"]["max_ms"]
    assert not result["runs"]["static"]["has_planner"]
    fair, static = result["runs"]["fair"]["kpis"], result["runs"]["static"]["kpis"]
    assert fair["energy_delivered_kwh"] >= static["energy_delivered_kwh"]
    # No "delivered <= bound" here: the bound must end at its starting SoC, a strategy need not.
    assert 0.0 <= bound["energy_delivered_kwh"] <= bound["energy_requested_kwh"]
    assert bound["energy_requested_kwh"] == fair["energy_requested_kwh"]

    table = "\n".join(scenario_lines(result))
    assert "ac-car-park" in table
    assert f"{fair['energy_delivered_kwh']:.1f} kWh" in table
    assert "phase violation time" in table
    timing = "\n".join(timing_lines([result]))
    assert "no planner in this strategy" in timing
