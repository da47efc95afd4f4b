"""`day.png`: a run at a glance, drawn from its `timeseries.csv`.

Four panels on one local time-of-day axis: grid power against the limit in force over the tariff
bands, PV available and used, battery power and state of charge, charging power. Rows are
averaged per minute first (a day is 1,440 points, not 86,400). matplotlib is an optional extra
(`edge-agent[sim]`): without it there is no plot, and the run says how to get one.
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

from hil.scenario import Scenario

log = logging.getLogger(__name__)

BUCKET_S = 60
AVERAGED = ("grid_kw", "pv_available_kw", "pv_used_kw", "battery_kw", "battery_soc", "ev_kw")
BAND_COLOURS = {"valley": "#cfe8cf", "flat": "#f4edc4", "peak": "#f6c9c4"}
OTHER_BAND_COLOURS = ("#d4e2f2", "#e4d6f0", "#e0e0e0", "#f0dcc4")


@dataclass(slots=True)
class Minutes:
    """Per-minute series: start hour (local), averages of AVERAGED, the lowest limit in force."""

    hours: list[float] = field(default_factory=list)
    limit_kw: list[float] = field(default_factory=list)
    mean: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in AVERAGED})


def start_of_day_s(scenario: Scenario) -> float:
    """Local seconds after midnight at t = 0 (tariff periods are local to the start's offset)."""
    start = scenario.start
    return start.hour * 3600 + start.minute * 60 + start.second + start.microsecond / 1e6


def per_minute(path: Path, day_s: float) -> Minutes:
    """One pass over the CSV, averaging each minute's rows; an empty SoC cell is NaN."""
    out = Minutes()
    sums = dict.fromkeys(AVERAGED, 0.0)
    count, bucket, limit = 0, None, math.inf

    def emit() -> None:
        out.hours.append((day_s + (bucket or 0) * BUCKET_S) / 3600)
        out.limit_kw.append(limit)
        for key in AVERAGED:
            out.mean[key].append(sums[key] / count)

    with path.open(encoding="utf-8", newline="") as file:
        for row in csv.DictReader(file):
            key = int(float(row["t_s"]) // BUCKET_S)
            if key != bucket and count:
                emit()
                sums, count, limit = dict.fromkeys(AVERAGED, 0.0), 0, math.inf
            bucket = key
            count += 1
            limit = min(limit, float(row["grid_limit_kw"]))
            for name in AVERAGED:
                sums[name] += float(row[name]) if row[name] != "" else math.nan
    if count:
        emit()
    return out


Band = tuple[float, float, str]  # from hour, to hour, tariff period name


def tariff_bands(scenario: Scenario, first_h: float, last_h: float) -> list[Band]:
    """The tariff periods' runs over [first_h, last_h] (local hours), looked up per minute."""
    runs: list[tuple[int, int, str]] = []
    for minute in range(math.floor(first_h * 60), math.ceil(last_h * 60)):
        name = scenario.tariff.period_at(minute % 1440).name
        if runs and runs[-1][2] == name:
            runs[-1] = (runs[-1][0], minute + 1, name)
        else:
            runs.append((minute, minute + 1, name))
    return [(begin / 60, end / 60, name) for begin, end, name in runs]


def band_colour(name: str, others: dict[str, str]) -> str:
    for word, colour in BAND_COLOURS.items():
        if word in name.lower():
            return colour
    if name not in others:
        others[name] = OTHER_BAND_COLOURS[len(others) % len(OTHER_BAND_COLOURS)]
    return others[name]


def hour_label(hours: float, _position: float | None = None) -> str:
    minutes = round(hours * 60)
    return f"{minutes // 60 % 24:02d}:{minutes % 60:02d}"


def plot_day(out_dir: Path, scenario: Scenario) -> Path | None:
    """Draw `out_dir/day.png` from `out_dir/timeseries.csv`; None without matplotlib or rows."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch
        from matplotlib.ticker import FuncFormatter, MultipleLocator
    except ImportError:
        log.warning(
            "no day.png: matplotlib is missing; `pip install edge-agent[sim]` gives the plot"
        )
        return None
    data = per_minute(out_dir / "timeseries.csv", start_of_day_s(scenario))
    if not data.hours:
        return None
    x, mean = data.hours, data.mean
    last_h = x[-1] + BUCKET_S / 3600

    fig = Figure(figsize=(12, 11), layout="constrained")
    FigureCanvasAgg(fig)
    grid_ax, pv_ax, battery_ax, ev_ax = fig.subplots(4, 1, sharex=True)
    fig.suptitle(f"{scenario.name}  {scenario.start:%Y-%m-%d} (local time, 1-minute averages)")

    others: dict[str, str] = {}
    names: dict[str, str] = {}
    for begin, end, name in tariff_bands(scenario, x[0], last_h):
        names[name] = band_colour(name, others)
        grid_ax.axvspan(begin, end, color=names[name], linewidth=0, zorder=0)
    grid_ax.plot(x, mean["grid_kw"], color="#1f4e79", linewidth=1, label="grid (+ import)")
    limit_x, limit_y = [*x, last_h], [*data.limit_kw, data.limit_kw[-1]]
    grid_ax.step(limit_x, limit_y, where="post", color="#c00000", linewidth=1.2, label="limit")
    handles, _labels = grid_ax.get_legend_handles_labels()
    patches = [Patch(color=colour, label=name) for name, colour in names.items()]
    grid_ax.legend(handles=[*handles, *patches], loc="upper left", ncols=2, fontsize=8)
    grid_ax.set_ylabel("grid kW")

    pv_ax.plot(x, mean["pv_available_kw"], color="#e0a800", linewidth=1, label="PV available")
    pv_ax.plot(x, mean["pv_used_kw"], color="#2e7d32", linewidth=1, label="PV used")
    pv_ax.legend(loc="upper left", fontsize=8)
    pv_ax.set_ylabel("PV kW")

    battery_ax.plot(x, mean["battery_kw"], color="#6a1b9a", linewidth=1, label="battery kW")
    battery_ax.axhline(0, color="#999999", linewidth=0.5)
    battery_ax.set_ylabel("battery kW (+ discharge)")
    if not all(math.isnan(v) for v in mean["battery_soc"]):
        soc_ax = battery_ax.twinx()
        soc_ax.plot(x, [v * 100 for v in mean["battery_soc"]], color="#ef6c00", linewidth=1)
        soc_ax.set_ylabel("SoC %", color="#ef6c00")
        soc_ax.set_ylim(0, 100)

    ev_ax.plot(x, mean["ev_kw"], color="#00838f", linewidth=1)
    ev_ax.set_ylabel("charging kW")
    ev_ax.set_xlim(x[0], last_h)
    ev_ax.xaxis.set_major_locator(MultipleLocator(max(1, round((last_h - x[0]) / 12))))
    ev_ax.xaxis.set_major_formatter(FuncFormatter(hour_label))
    ev_ax.set_xlabel("local time")
    for ax in (grid_ax, pv_ax, battery_ax, ev_ax):
        ax.grid(True, linewidth=0.3)

    path = out_dir / "day.png"
    fig.savefig(path, dpi=100)
    return path
