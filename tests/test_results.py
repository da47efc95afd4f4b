"""The run record: CSV headers and numbers, every KPI against hand arithmetic, the independent
recomputation from the files, the plot, and the progress bar's output."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import sys
from datetime import datetime
from pathlib import Path

import pytest

from hil.kpis_from_csv import kpis_from_files
from hil.plot import plot_day
from hil.progress import Progress
from hil.results import RunRecorder
from hil.scenario import (
    BatterySpec,
    ChargerSpec,
    ConnectorSpec,
    Curve,
    GridLimitEvent,
    PvSpec,
    Scenario,
    SessionSpec,
    SiteSpec,
    Tariff,
    TariffPeriod,
)

TIMESERIES_HEADER = (
    "t_s,grid_kw,grid_limit_kw,base_load_kw,pv_available_kw,pv_used_kw,battery_kw,battery_soc,"
    "ev_kw,i_l1_a,i_l2_a,i_l3_a"
)
SESSIONS_HEADER = "id,charger,connector,arrive_s,depart_s,energy_kwh,delivered_kwh"
METADATA = {"scenario", "strategy", "currency", "wall_s", "setpoint_writes"}


@dataclasses.dataclass(frozen=True, slots=True)
class Row:
    """Stands in for the physics' StepResult: the same fields."""

    t_s: float
    grid_kw: float
    grid_limit_kw: float
    base_load_kw: float
    pv_available_kw: float
    pv_used_kw: float
    battery_kw: float
    battery_soc: float | None
    ev_kw: float
    i_l1_a: float = 0.0
    i_l2_a: float = 0.0
    i_l3_a: float = 0.0


def scenario(phase_limit_a: tuple[float, float, float] | None = None) -> Scenario:
    """07:59:55 local at t = 0, so rows 0-4 are in the valley (0.5) and rows 5-9 in the peak
    (1.2); the import limit is 100 kW and 80 kW from t = 6."""
    return Scenario(
        name="tiny",
        description="two chargers, three sessions",
        start=datetime.fromisoformat("2025-07-15T07:59:55+08:00"),
        duration_s=10,
        site=SiteSpec(100.0, 50.0, phase_limit_a, 230.0, Curve((0.0,), (10.0,))),
        pv=PvSpec(40.0, Curve((0.0,), (1.0,))),
        battery=BatterySpec(100.0, 50.0, 50.0, 0.5, 0.1, 0.9, 0.95, 0.95),
        tariff=Tariff(
            (TariffPeriod("valley", 0, 480, 0.5), TariffPeriod("peak", 480, 1440, 1.2)), 0.1, "EUR"
        ),
        chargers=(
            ChargerSpec(
                "C1",
                "dc",
                60.0,
                3,
                None,
                None,
                None,
                (ConnectorSpec(1, 60.0), ConnectorSpec(2, 60.0)),
            ),
            ChargerSpec("C2", "ac", 22.0, 3, None, 6.0, 32.0, (ConnectorSpec(1, 22.0),)),
        ),
        sessions=(
            SessionSpec("S1", "C1", 1, 0.0, 3600.0, 20.0, 50.0),
            SessionSpec("S2", "C1", 2, 60.0, 7200.0, 10.0, 50.0),
            SessionSpec("S3", "C2", 1, 0.5, 5400.0, 30.0, 11.0),
        ),
        events=(GridLimitEvent(6.0, 80.0),),
    )


# grid = base + ev - battery (+ discharge) - pv_used, every row.
ROWS = [
    #   t  grid     limit  base  pv_av pv_used batt  soc   ev
    Row(0, 50.0, 100.0, 10.0, 0.0, 0.0, 0.0, 0.5, 40.0),
    Row(1, 100.005, 100.0, 10.0, 0.0, 0.0, 0.0, 0.5, 90.005),  # 0.005 % over: not counted
    Row(2, -20.0, 100.0, 10.0, 40.0, 30.0, 0.0, 0.5, 0.0),  # exports 20 of 30 PV used
    Row(3, -5.0, 100.0, 10.0, 20.0, 5.0, 10.0, 0.49, 0.0),  # exports 5: all 5 PV used
    Row(4, 30.0, 100.0, 10.0, 10.0, 10.0, -10.0, 0.5, 20.0),
    Row(5, 60.0, 100.0, 10.0, 0.0, 0.0, 0.0, 0.5, 50.0),  # 08:00:00, peak price
    Row(6, 80.0, 80.0, 10.0, 0.0, 0.0, 0.0, 0.5, 70.0),  # the new limit, exactly on it
    Row(7, 88.0, 80.0, 10.0, 0.0, 0.0, 0.0, 0.5, 78.0),  # 10 % over: counted
    Row(8, 40.0, 80.0, 10.0, 0.0, 0.0, 0.0, 0.5, 30.0),
    Row(9, 20.0, 80.0, 10.0, 0.0, 0.0, 0.0, 0.45, 10.0),
]
DELIVERED = {"S1": 19.8, "S2": 9.7, "S3": 15.0}  # 99 %, 97 %, 50 %

EXPECTED = {
    "energy_requested_kwh": 60.0,  # 20 + 10 + 30
    "energy_delivered_kwh": 44.5,  # 19.8 + 9.7 + 15
    "unserved_kwh": 15.5,  # 0.2 + 0.3 + 15
    "sessions": 3,
    "sessions_completed": 1,  # only S1 got >= 98 %
    # 50 + 100.005 + 30 + 60 + 80 + 88 + 40 + 20 = 468.005 kW s
    "grid_import_kwh": 468.005 / 3600,
    "grid_export_kwh": 25.0 / 3600,  # 20 + 5 kW s
    # valley (50 + 100.005 + 30) x 0.5 = 90.0025; peak (60 + 80 + 88 + 40 + 20) x 1.2 = 345.6;
    # export 25 x 0.1 = 2.5: (90.0025 + 345.6 - 2.5) / 3600
    "energy_cost": 433.1025 / 3600,
    "peak_import_kw": 100.005,
    "limit_violation_kwh": 8.0 / 3600,  # only row 7: 88 - 80 for 1 s
    "limit_violation_s": 1.0,
    "max_overshoot_kw": 8.0,
    # PV kept: row 2 30 - 20, row 3 5 - 5, row 4 10 = 20; available 40 + 20 + 10 = 70
    "pv_self_consumption": 20.0 / 70.0,
    "battery_soc_end": 0.45,
    # ratios 0.99, 0.97, 0.5: (2.46)^2 / (3 x (0.9801 + 0.9409 + 0.25)) = 6.0516 / 6.513
    "jain_fairness": 6.0516 / 6.513,
}


def run(out_dir: Path, sc: Scenario, rows: list[Row]) -> dict[str, object]:
    recorder = RunRecorder(out_dir, sc)
    for row in rows:
        recorder.record(row)
    return recorder.finish(DELIVERED, 1.5, {"strategy": "static", "setpoint_writes": 7})


def assert_agree(kpis: dict[str, object], again: dict[str, float | None]) -> None:
    assert set(again) == set(kpis) - METADATA
    for key, value in again.items():
        if value is None:
            assert kpis[key] is None, key
        else:
            assert kpis[key] == pytest.approx(value, rel=1e-6, abs=1e-12), key


def test_rows_agree_with_the_scenario_they_claim() -> None:
    sc = scenario()
    assert [sc.grid_limit_at(r.t_s) for r in ROWS] == [r.grid_limit_kw for r in ROWS]
    assert [sc.price_at(r.t_s) for r in ROWS] == [0.5] * 5 + [1.2] * 5
    for r in ROWS:
        assert r.grid_kw == pytest.approx(r.base_load_kw + r.ev_kw - r.battery_kw - r.pv_used_kw)


def test_kpis_match_hand_arithmetic(tmp_path: Path) -> None:
    kpis = run(tmp_path, scenario(), ROWS)
    for key, expected in EXPECTED.items():
        assert kpis[key] == pytest.approx(expected, rel=1e-12), key
    assert "phase_violation_s" not in kpis
    assert kpis["scenario"] == "tiny"
    assert kpis["strategy"] == "static"
    assert kpis["setpoint_writes"] == 7
    assert kpis["wall_s"] == 1.5
    assert json.loads((tmp_path / "kpis.json").read_text(encoding="utf-8")) == kpis


def test_files_have_the_fixed_headers_and_exact_numbers(tmp_path: Path) -> None:
    rows = [dataclasses.replace(ROWS[0], grid_kw=50.12345678901, battery_soc=None), *ROWS[1:]]
    sc = dataclasses.replace(scenario(), battery=None)
    run(tmp_path, sc, rows)
    lines = (tmp_path / "timeseries.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == TIMESERIES_HEADER
    assert lines[1] == "0,50.123457,100,10,0,0,0,,40,0,0,0"  # kW to 6 decimals, no SoC
    assert lines[2].startswith("1,100.005,100,")
    assert len(lines) == 1 + len(rows)
    with (tmp_path / "sessions.csv").open(encoding="utf-8", newline="") as file:
        table = list(csv.reader(file))
    assert ",".join(table[0]) == SESSIONS_HEADER
    assert table[1:] == [
        ["S1", "C1", "1", "0", "3600", "20", "19.8"],
        ["S2", "C1", "2", "60", "7200", "10", "9.7"],
        ["S3", "C2", "1", "0.5", "5400", "30", "15"],
    ]


def test_recomputation_from_the_files_agrees(tmp_path: Path) -> None:
    sc = scenario()
    kpis = run(tmp_path, sc, ROWS)
    assert_agree(kpis, kpis_from_files(tmp_path, sc))


def test_recorded_values_are_the_integrated_values(tmp_path: Path) -> None:
    """Odd digits everywhere: the files still give the recorder's KPIs to the last bits."""
    rows = [
        dataclasses.replace(
            r, grid_kw=r.grid_kw * 1.000123456789 + 1e-7, pv_used_kw=r.pv_used_kw / 3
        )
        for r in ROWS
    ]
    sc = scenario((100.0, 100.0, 90.0))
    kpis = run(tmp_path, sc, rows)
    again = kpis_from_files(tmp_path, sc)
    assert_agree(kpis, again)
    for key, value in again.items():
        assert kpis[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key


def test_phase_limits(tmp_path: Path) -> None:
    sc = scenario((100.0, 100.0, 90.0))
    currents = {
        0: (50.0, 50.0, 50.0),
        1: (100.005, 40.0, 40.0),  # L1 0.005 % over: not counted
        2: (110.0, 60.0, 60.0),  # L1 10 A over
        3: (60.0, 105.0, 120.0),  # L2 5 A, L3 30 A over
        4: (95.0, 95.0, 95.0),  # L3 5 A over its 90 A
        6: (99.0, 99.0, 90.0),  # all within
    }
    rows = [
        dataclasses.replace(r, i_l1_a=c[0], i_l2_a=c[1], i_l3_a=c[2])
        if (c := currents.get(int(r.t_s)))
        else r
        for r in ROWS
    ]
    kpis = run(tmp_path, sc, rows)
    assert kpis["phase_violation_s"] == 3.0  # rows 2, 3, 4
    assert kpis["max_phase_overshoot_a"] == pytest.approx(30.0)  # row 3, L3: 120 - 90
    assert_agree(kpis, kpis_from_files(tmp_path, sc))


def test_dt_is_the_step_between_rows(tmp_path: Path) -> None:
    """Rows at 0, 2, 3: 2 s, 1 s, and the last as long as the one before (1 s)."""
    sc = dataclasses.replace(scenario(), sessions=(), events=())
    rows = [Row(t, 36.0, 100.0, 36.0, 0.0, 0.0, 0.0, None, 0.0) for t in (0, 2, 3)]
    recorder = RunRecorder(tmp_path, sc)
    for row in rows:
        recorder.record(row)
    kpis = recorder.finish({}, 0.0)
    assert kpis["grid_import_kwh"] == pytest.approx(36.0 * 4 / 3600)
    assert kpis["jain_fairness"] == 1.0  # no sessions
    assert kpis["battery_soc_end"] is None
    assert kpis["strategy"] is None
    assert_agree(kpis, kpis_from_files(tmp_path, sc))


def test_rows_out_of_order_and_unknown_sessions_are_refused(tmp_path: Path) -> None:
    recorder = RunRecorder(tmp_path, scenario())
    recorder.record(ROWS[1])
    with pytest.raises(ValueError, match="after a row"):
        recorder.record(ROWS[0])
    with pytest.raises(ValueError, match="not in the scenario"):
        recorder.finish({"S9": 1.0}, 0.0)
    recorder.close()


def test_plot_day_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    sc = scenario()
    run(tmp_path, sc, ROWS)
    path = plot_day(tmp_path, sc)
    assert path == tmp_path / "day.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_day_without_matplotlib_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for module in ("matplotlib", "matplotlib.backends.backend_agg", "matplotlib.figure"):
        monkeypatch.setitem(sys.modules, module, None)
    assert plot_day(tmp_path, scenario()) is None
    assert "pip install edge-agent[sim]" in caplog.text
    assert not (tmp_path / "day.png").exists()


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_writes_only_a_summary_when_not_a_terminal() -> None:
    stream, clock = io.StringIO(), FakeClock()
    bar = Progress(86400, stream, clock=clock)
    for second in range(1, 86401, 600):
        clock.now += 0.05
        bar.update(second)
    clock.now = 110.0
    bar.update(86400)
    bar.close()
    bar.close()
    assert stream.getvalue() == (
        "simulated 24:00:00 in 10.0 s wall (8,640 simulated s per wall s)\n"
    )


def test_progress_redraws_at_most_five_times_a_second_on_a_terminal() -> None:
    stream, clock = Terminal(), FakeClock()
    bar = Progress(3600, stream, start_of_day_s=8 * 3600, clock=clock)
    for second in range(1, 1801):
        clock.now += 0.001  # 1.8 s of wall time over 1,800 updates
        bar.update(second)
    draws = stream.getvalue().count("\r")
    assert 9 <= draws <= 10
    last = bar.line(clock.now)
    assert " 50.0 %" in last
    assert "8:30:00" in last
    assert "1,000 s/s" in last
    assert "ETA 0:00:01" in last
    bar.close()
    assert stream.getvalue().endswith(
        "\rsimulated 0:30:00 in 1.8 s wall (1,000 simulated s per wall s)" + " " * 6 + "\n"
    )
