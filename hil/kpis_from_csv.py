"""The KPIs again, from a run's `timeseries.csv` and `sessions.csv` alone.

A second, independent reading of FORMAT.md's rules (whole columns and `math.fsum`, its own
tariff lookup), so the tests can hold `kpis.json` against it. It shares no code with
`hil.results` on purpose: a mistake there must not repeat here. `wall_s` cannot be recomputed and
is left out; a KPI FORMAT.md leaves undefined (no PV energy, no battery) is None.
"""

from __future__ import annotations

import csv
import itertools
import math
from pathlib import Path

from hil.scenario import Scenario

TIMESERIES_COLUMNS = [
    "t_s", "grid_kw", "grid_limit_kw", "base_load_kw", "pv_available_kw", "pv_used_kw",
    "battery_kw", "battery_soc", "ev_kw", "i_l1_a", "i_l2_a", "i_l3_a",
]  # fmt: skip
SESSIONS_COLUMNS = ["id", "charger", "connector", "arrive_s", "depart_s", "energy_kwh",
                    "delivered_kwh"]  # fmt: skip


def _read(path: Path, columns: list[str]) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as file:
        reader = csv.DictReader(file)
        if reader.fieldnames != columns:
            raise ValueError(f"{path.name}: header {reader.fieldnames}, expected {columns}")
        return list(reader)


def _durations(times: list[float]) -> list[float]:
    """Row i spans [t_i, t_i+1); the last row as long as the one before it, or 1 s alone."""
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    return [*gaps, gaps[-1] if gaps else 1.0] if times else []


def _prices(scenario: Scenario, times: list[float]) -> list[float]:
    """Import price of each row: the tariff period holding its local minute of day (periods
    start and end on whole minutes, so one lookup per minute)."""
    start = scenario.start
    day_s = start.hour * 3600 + start.minute * 60 + start.second + start.microsecond / 1e6
    by_minute: dict[int, float] = {}
    prices = []
    for t_s in times:
        minute = int(((day_s + t_s) % 86400) // 60)
        if minute not in by_minute:
            matches = [p for p in scenario.tariff.periods if p.start_min <= minute < p.end_min]
            if not matches:
                raise ValueError(f"no tariff period at t_s={t_s}")
            by_minute[minute] = matches[0].price
        prices.append(by_minute[minute])
    return prices


def kpis_from_files(out_dir: Path, scenario: Scenario) -> dict[str, float | None]:
    """FORMAT.md's KPIs recomputed from the files in `out_dir` (all but `wall_s`)."""
    rows = _read(out_dir / "timeseries.csv", TIMESERIES_COLUMNS)
    sessions = _read(out_dir / "sessions.csv", SESSIONS_COLUMNS)
    numeric = [name for name in TIMESERIES_COLUMNS if name != "battery_soc"]
    column = {name: [float(r[name]) for r in rows] for name in numeric}
    dt = _durations(column["t_s"])
    grid, limit = column["grid_kw"], column["grid_limit_kw"]
    imported = [max(g, 0.0) for g in grid]
    exported = [max(-g, 0.0) for g in grid]
    over = [g > lim * 1.0001 for g, lim in zip(grid, limit, strict=True)]

    requested = [float(s["energy_kwh"]) for s in sessions]
    got = [float(s["delivered_kwh"]) for s in sessions]
    ratios = [g / r for g, r in zip(got, requested, strict=True)]
    square_sum = math.fsum(x * x for x in ratios)
    pv_available = math.fsum(p * d for p, d in zip(column["pv_available_kw"], dt, strict=True))
    pv_kept = math.fsum(
        (used - min(exp, used)) * d
        for used, exp, d in zip(column["pv_used_kw"], exported, dt, strict=True)
    )
    socs = [r["battery_soc"] for r in rows]
    violation_kw_s = math.fsum(
        (g - lim) * d for g, lim, d, o in zip(grid, limit, dt, over, strict=True) if o
    )
    prices = _prices(scenario, column["t_s"])
    import_cost = math.fsum(i * p * d for i, p, d in zip(imported, prices, dt, strict=True))
    export_kwh = math.fsum(e * d for e, d in zip(exported, dt, strict=True)) / 3600

    kpis: dict[str, float | None] = {
        "energy_requested_kwh": math.fsum(requested),
        "energy_delivered_kwh": math.fsum(got),
        "unserved_kwh": math.fsum(max(r - g, 0.0) for r, g in zip(requested, got, strict=True)),
        "sessions": len(sessions),
        "sessions_completed": sum(g >= 0.98 * r for g, r in zip(got, requested, strict=True)),
        "grid_import_kwh": math.fsum(i * d for i, d in zip(imported, dt, strict=True)) / 3600,
        "grid_export_kwh": export_kwh,
        "energy_cost": import_cost / 3600 - export_kwh * scenario.tariff.export_price,
        "peak_import_kw": max(imported, default=0.0),
        "limit_violation_kwh": violation_kw_s / 3600,
        "limit_violation_s": math.fsum(d for d, o in zip(dt, over, strict=True) if o),
        "max_overshoot_kw": max(
            (g - lim for g, lim, o in zip(grid, limit, over, strict=True) if o), default=0.0
        ),
        "pv_self_consumption": pv_kept / pv_available if pv_available > 0 else None,
        "battery_soc_end": float(socs[-1]) if socs and socs[-1] != "" else None,
        "jain_fairness": (
            math.fsum(ratios) ** 2 / (len(ratios) * square_sum) if square_sum > 0 else 1.0
        ),
    }
    if scenario.site.phase_limit_a is not None:
        kpis.update(_phase_kpis(column, dt, scenario.site.phase_limit_a))
    return kpis


def _phase_kpis(
    column: dict[str, list[float]], dt: list[float], limits: tuple[float, float, float]
) -> dict[str, float | None]:
    """Rows where any phase is more than 0.01 % over its limit, and the worst such excess."""
    phases = list(zip(column["i_l1_a"], column["i_l2_a"], column["i_l3_a"], strict=True))
    excess = [
        [i - lim for i, lim in zip(currents, limits, strict=True) if i > lim * 1.0001]
        for currents in phases
    ]
    return {
        "phase_violation_s": math.fsum(d for d, e in zip(dt, excess, strict=True) if e),
        "max_phase_overshoot_a": max((max(e) for e in excess if e), default=0.0),
    }
