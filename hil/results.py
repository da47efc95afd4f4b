"""A run's record: `timeseries.csv` streamed row by row, then `sessions.csv` and `kpis.json`.

The output format and the KPI rules are FORMAT.md's ("Output of a run"). The recorder keeps
running integrals, so the KPIs need no second pass over a day of rows and no rows in memory.

Numbers: every value is rounded once (powers in kW and currents in A to 6 decimals, i.e. 1 mW and
1 uA; the state of charge to 9 decimals; `t_s` to 6 decimals) and the recorder integrates the
rounded value, the very number it writes. Rounded so, a value has at most 15 significant digits
(below 1e9), so `%.15g` writes it exactly and `float()` reads back the same double: anyone
recomputing the KPIs from the files gets the recorder's inputs bit for bit, and agrees up to
summation order (about 1e-12 relative), whatever the magnitudes. Against the unrounded physics
the error is at most 0.5 mW per row, about 1e-5 kWh over a day even if every row rounded the
same way. `%.6g` would not do: it keeps 6 significant digits, so 1234.5678 kW is written 1234.57,
4e-6 relative, and a constant load would carry that error into the day's energy. The sessions'
numbers are the scenario's and the physics' floats, written with `repr`, which round-trips.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Protocol

from hil.scenario import Scenario, SessionSpec

TIMESERIES_HEADER = (
    "t_s,grid_kw,grid_limit_kw,base_load_kw,pv_available_kw,pv_used_kw,"
    "battery_kw,battery_soc,ev_kw,i_l1_a,i_l2_a,i_l3_a"
)
SESSIONS_HEADER = ("id", "charger", "connector", "arrive_s", "depart_s", "energy_kwh",
                   "delivered_kwh")  # fmt: skip

POWER_DECIMALS = 6  # kW and A
SOC_DECIMALS = 9
COMPLETED_SHARE = 0.98  # "got >= 98 % of energy_kwh"
OVER_TOLERANCE = 1.0001  # "counting rows more than 0.01 % over"
DEFAULT_DT_S = 1.0
_ROW_FORMAT = ",".join(["%.15g"] * 7 + ["%s"] + ["%.15g"] * 4) + "\n"
_FLUSH_ROWS = 4096

Sessions = tuple[SessionSpec, ...]


class StepRow(Protocol):
    """What one simulated second leaves behind (the physics' `StepResult` has these fields)."""

    @property
    def t_s(self) -> float: ...
    @property
    def grid_kw(self) -> float: ...
    @property
    def grid_limit_kw(self) -> float: ...
    @property
    def base_load_kw(self) -> float: ...
    @property
    def pv_available_kw(self) -> float: ...
    @property
    def pv_used_kw(self) -> float: ...
    @property
    def battery_kw(self) -> float: ...
    @property
    def battery_soc(self) -> float | None: ...
    @property
    def ev_kw(self) -> float: ...
    @property
    def i_l1_a(self) -> float: ...
    @property
    def i_l2_a(self) -> float: ...
    @property
    def i_l3_a(self) -> float: ...


class Integrals:
    """Running sums over the rows (kW x s, s, kW), each row weighted by its dt."""

    __slots__ = (
        "export_kw_s", "import_cost_kw_s", "import_kw_s", "max_overshoot_kw",
        "max_phase_overshoot_a", "peak_import_kw", "phase_violation_s", "pv_available_kw_s",
        "pv_self_kw_s", "soc_end", "violation_kw_s", "violation_s",
    )  # fmt: skip

    def __init__(self) -> None:
        self.import_kw_s = 0.0
        self.export_kw_s = 0.0
        self.import_cost_kw_s = 0.0  # import kW x price x s
        self.peak_import_kw = 0.0
        self.violation_kw_s = 0.0
        self.violation_s = 0.0
        self.max_overshoot_kw = 0.0
        self.pv_available_kw_s = 0.0
        self.pv_self_kw_s = 0.0
        self.soc_end: float | None = None
        self.phase_violation_s = 0.0
        self.max_phase_overshoot_a = 0.0


# --- KPIs over the timeseries (each from the integrals, the rule quoted) ---


def grid_import_kwh(acc: Integrals) -> float:
    """`grid_import_kwh`: energy taken from the grid ("grid power is positive when importing")."""
    return acc.import_kw_s / 3600.0


def grid_export_kwh(acc: Integrals) -> float:
    """`grid_export_kwh`: energy sent to the grid (grid power below zero)."""
    return acc.export_kw_s / 3600.0


def energy_cost(acc: Integrals, scenario: Scenario) -> float:
    """`energy_cost`: "import at the tariff minus export at the export price"; each row's import
    at the price of its local time of day."""
    export_value = acc.export_kw_s * scenario.tariff.export_price
    return (acc.import_cost_kw_s - export_value) / 3600.0


def peak_import_kw(acc: Integrals) -> float:
    """`peak_import_kw`: the highest row of grid import (0 if the site never imports)."""
    return acc.peak_import_kw


def limit_violation_kwh(acc: Integrals) -> float:
    """`limit_violation_kwh`: "integral of import above the limit in force, counting rows more
    than 0.01 % over"."""
    return acc.violation_kw_s / 3600.0


def limit_violation_s(acc: Integrals) -> float:
    """`limit_violation_s`: the time spent in the rows `limit_violation_kwh` counts."""
    return acc.violation_s


def max_overshoot_kw(acc: Integrals) -> float:
    """`max_overshoot_kw`: the largest import above the limit in force among those rows (0 when
    none: a row within 0.01 % is the controller sitting on the limit, not an overshoot)."""
    return acc.max_overshoot_kw


def pv_self_consumption(acc: Integrals) -> float | None:
    """`pv_self_consumption`: "PV used on site and not exported / PV available, counting export
    as PV first" (per row: export up to that row's PV used is PV). None without PV energy."""
    if acc.pv_available_kw_s <= 0.0:
        return None
    return acc.pv_self_kw_s / acc.pv_available_kw_s


def battery_soc_end(acc: Integrals) -> float | None:
    """`battery_soc_end`: the last row's `battery_soc` ("the state at the end of that second")."""
    return acc.soc_end


def phase_violation_s(acc: Integrals) -> float:
    """`phase_violation_s`: time in rows where any phase current exceeds its `phase_limit_a` by
    more than 0.01 %."""
    return acc.phase_violation_s


def max_phase_overshoot_a(acc: Integrals) -> float:
    """`max_phase_overshoot_a`: the largest current above a phase's limit among those rows."""
    return acc.max_phase_overshoot_a


# --- KPIs over the sessions ---


def energy_requested_kwh(sessions: Sessions) -> float:
    """`energy_requested_kwh`: the sum of the sessions' `energy_kwh` (what the cars want)."""
    return math.fsum(s.energy_kwh for s in sessions)


def energy_delivered_kwh(sessions: Sessions, delivered: Mapping[str, float]) -> float:
    """`energy_delivered_kwh`: the sum of what the sessions got."""
    return math.fsum(delivered.get(s.id, 0.0) for s in sessions)


def unserved_kwh(sessions: Sessions, delivered: Mapping[str, float]) -> float:
    """`unserved_kwh`: what the cars wanted and did not get, summed per session."""
    return math.fsum(max(0.0, s.energy_kwh - delivered.get(s.id, 0.0)) for s in sessions)


def sessions_completed(sessions: Sessions, delivered: Mapping[str, float]) -> int:
    """`sessions_completed`: sessions that "got >= 98 % of `energy_kwh`"."""
    return sum(1 for s in sessions if delivered.get(s.id, 0.0) >= COMPLETED_SHARE * s.energy_kwh)


def jain_fairness(sessions: Sessions, delivered: Mapping[str, float]) -> float:
    """`jain_fairness`: "over the delivered / requested ratios of all sessions", Jain's index
    (sum x)^2 / (n sum x^2); 1.0 with no sessions, and when every ratio is 0 (all equal)."""
    ratios = [delivered.get(s.id, 0.0) / s.energy_kwh for s in sessions]
    squares = sum(x * x for x in ratios)
    if not ratios or squares == 0.0:
        return 1.0
    return sum(ratios) ** 2 / (len(ratios) * squares)


def _exact(value: float) -> str:
    """A float as text that reads back as the same float; whole numbers without '.0'."""
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


class RunRecorder:
    """Streams a run's rows to `timeseries.csv` and keeps the KPIs' integrals as they go.

    A row at `t_s` holds the averages over [t_s, t_s + dt), dt being the next row's `t_s` minus
    this one's, so a row is integrated when the next arrives; the last row takes the previous dt
    (1 s if it is the only row).
    """

    def __init__(self, out_dir: Path, scenario: Scenario) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir = out_dir
        self.scenario = scenario
        self.integrals = Integrals()
        self._phase_limits = scenario.site.phase_limit_a
        self._file = (out_dir / "timeseries.csv").open("w", encoding="utf-8", newline="")
        self._file.write(TIMESERIES_HEADER + "\n")
        self._lines: list[str] = []
        self._pending: tuple[float, ...] | None = None  # the last row, rounded, not integrated
        self._pending_soc: float | None = None
        self._last_dt = DEFAULT_DT_S

    def record(self, row: StepRow) -> None:
        """Write one row and integrate the one before it."""
        p = POWER_DECIMALS
        soc = None if row.battery_soc is None else round(row.battery_soc, SOC_DECIMALS) + 0.0
        values = (
            round(row.t_s, p) + 0.0, round(row.grid_kw, p) + 0.0,
            round(row.grid_limit_kw, p) + 0.0, round(row.base_load_kw, p) + 0.0,
            round(row.pv_available_kw, p) + 0.0, round(row.pv_used_kw, p) + 0.0,
            round(row.battery_kw, p) + 0.0, round(row.ev_kw, p) + 0.0,
            round(row.i_l1_a, p) + 0.0, round(row.i_l2_a, p) + 0.0, round(row.i_l3_a, p) + 0.0,
        )  # fmt: skip
        soc_text = "" if soc is None else f"{soc:.15g}"
        self._lines.append(_ROW_FORMAT % (*values[:7], soc_text, *values[7:]))
        if len(self._lines) >= _FLUSH_ROWS:
            self._flush()
        if self._pending is not None:
            dt = values[0] - self._pending[0]
            if dt <= 0.0:
                raise ValueError(f"row at t_s={values[0]} after a row at t_s={self._pending[0]}")
            self._integrate(self._pending, self._pending_soc, dt)
            self._last_dt = dt
        self._pending, self._pending_soc = values, soc

    def _integrate(self, v: tuple[float, ...], soc: float | None, dt: float) -> None:
        acc = self.integrals
        t_s, grid, limit, _base, pv_available, pv_used = v[:6]
        if grid > 0.0:
            acc.import_kw_s += grid * dt
            acc.import_cost_kw_s += grid * self.scenario.price_at(t_s) * dt
            acc.peak_import_kw = max(acc.peak_import_kw, grid)
            if grid > limit * OVER_TOLERANCE:
                acc.violation_kw_s += (grid - limit) * dt
                acc.violation_s += dt
                acc.max_overshoot_kw = max(acc.max_overshoot_kw, grid - limit)
            pv_exported = 0.0
        else:
            acc.export_kw_s -= grid * dt
            pv_exported = min(-grid, pv_used)
        acc.pv_available_kw_s += pv_available * dt
        acc.pv_self_kw_s += (pv_used - pv_exported) * dt
        acc.soc_end = soc
        if self._phase_limits is not None:
            worst: float | None = None
            for current, limit_a in zip(v[8:11], self._phase_limits, strict=True):
                if current > limit_a * OVER_TOLERANCE:
                    over = current - limit_a
                    worst = over if worst is None else max(worst, over)
            if worst is not None:
                acc.phase_violation_s += dt
                acc.max_phase_overshoot_a = max(acc.max_phase_overshoot_a, worst)

    def _flush(self) -> None:
        self._file.writelines(self._lines)
        self._lines.clear()

    def close(self) -> None:
        """Integrate the last row and close `timeseries.csv` (again: nothing happens)."""
        if self._file.closed:
            return
        if self._pending is not None:
            self._integrate(self._pending, self._pending_soc, self._last_dt)
            self._pending = None
        self._flush()
        self._file.close()

    def __enter__(self) -> RunRecorder:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def finish(
        self, delivered_kwh: Mapping[str, float], wall_s: float, extra: Mapping[str, object] = {}
    ) -> dict[str, object]:
        """Close the timeseries, write `sessions.csv` and `kpis.json`; return what kpis.json holds.

        `delivered_kwh` is per session id; a session missing from it got nothing.
        """
        sessions = self.scenario.sessions
        unknown = set(delivered_kwh) - {s.id for s in sessions}
        if unknown:
            raise ValueError(f"delivered_kwh names sessions not in the scenario: {sorted(unknown)}")
        self.close()
        self._write_sessions(delivered_kwh)
        kpis = self.kpis(delivered_kwh, wall_s)
        clash = set(extra) & set(kpis)
        if clash:
            raise ValueError(f"extra would overwrite KPIs: {sorted(clash)}")
        strategy = extra.get("strategy")
        result: dict[str, object] = {
            "scenario": self.scenario.name,
            "strategy": strategy,
            "currency": self.scenario.tariff.currency,
        }
        result.update(kpis)
        result.update(extra)
        (self.out_dir / "kpis.json").write_text(
            json.dumps(result, indent=2, allow_nan=False) + "\n", encoding="utf-8"
        )
        return result

    def kpis(self, delivered: Mapping[str, float], wall_s: float) -> dict[str, object]:
        """Every KPI of FORMAT.md, the phase ones only on sites with `phase_limit_a`."""
        acc, sessions = self.integrals, self.scenario.sessions
        kpis: dict[str, object] = {
            "energy_requested_kwh": energy_requested_kwh(sessions),
            "energy_delivered_kwh": energy_delivered_kwh(sessions, delivered),
            "unserved_kwh": unserved_kwh(sessions, delivered),
            "sessions": len(sessions),
            "sessions_completed": sessions_completed(sessions, delivered),
            "grid_import_kwh": grid_import_kwh(acc),
            "grid_export_kwh": grid_export_kwh(acc),
            "energy_cost": energy_cost(acc, self.scenario),
            "peak_import_kw": peak_import_kw(acc),
            "limit_violation_kwh": limit_violation_kwh(acc),
            "limit_violation_s": limit_violation_s(acc),
            "max_overshoot_kw": max_overshoot_kw(acc),
            "pv_self_consumption": pv_self_consumption(acc),
            "battery_soc_end": battery_soc_end(acc),
            "jain_fairness": jain_fairness(sessions, delivered),
            "wall_s": wall_s,
        }
        if self._phase_limits is not None:
            kpis["phase_violation_s"] = phase_violation_s(acc)
            kpis["max_phase_overshoot_a"] = max_phase_overshoot_a(acc)
        return kpis

    def _write_sessions(self, delivered: Mapping[str, float]) -> None:
        with (self.out_dir / "sessions.csv").open("w", encoding="utf-8", newline="") as file:
            writer = csv.writer(file, lineterminator="\n")
            writer.writerow(SESSIONS_HEADER)
            for s in self.scenario.sessions:
                writer.writerow((s.id, s.charger, s.connector, _exact(s.arrive_s),
                                 _exact(s.depart_s), _exact(s.energy_kwh),
                                 _exact(delivered.get(s.id, 0.0))))  # fmt: skip
