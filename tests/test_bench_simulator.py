"""The simulator benchmark's fast-mode part, on a 10-minute slice of the AC car park.

Only structure and sanity here, no timing: the timed runs are for `python -m hil.bench_simulator`.
"""

from __future__ import annotations

from hil.bench_simulator import fast_lines, fast_run

SLICE_S = 600


def test_fast_run_reports_sane_kpis() -> None:
    run = fast_run("ac-car-park", SLICE_S)

    assert run["scenario"] == "ac-car-park"
    assert run["simulated_s"] == SLICE_S
    assert run["grid_limit_min_kw"] <= run["grid_limit_kw"]
    kpis = run["kpis"]
    for key in ("energy_requested_kwh", "energy_delivered_kwh", "sessions", "sessions_completed",
                "grid_import_kwh", "energy_cost", "peak_import_kw", "limit_violation_kwh",
                "limit_violation_s", "max_overshoot_kw", "pv_self_consumption", "jain_fairness",
                "phase_violation_s", "max_phase_overshoot_a", "simulated_s_per_wall_s",
                "wall_s"):  # fmt: skip
        assert key in kpis, key
    assert kpis["strategy"] == "static"
    assert kpis["currency"]
    assert 0.0 <= kpis["energy_delivered_kwh"] <= kpis["energy_requested_kwh"]
    assert 0 <= kpis["sessions_completed"] <= kpis["sessions"]
    assert kpis["limit_violation_kwh"] >= 0.0
    assert kpis["limit_violation_s"] >= 0.0
    assert kpis["max_overshoot_kw"] >= 0.0
    assert kpis["phase_violation_s"] >= 0.0  # the car park has a per-phase limit
    assert 0.0 < kpis["jain_fairness"] <= 1.0
    assert kpis["wall_s"] > 0.0
    assert kpis["simulated_s_per_wall_s"] > 0.0

    report = "\n".join(fast_lines([run], quick=True))
    assert "ac-car-park" in report
    assert f"{kpis['energy_delivered_kwh']:.1f} kWh" in report
    assert f"{kpis['currency']}" in report
