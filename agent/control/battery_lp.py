"""The battery planner's linear programme: from a forecast and the tariff, the cheapest way to
run the battery over the horizon (an SoC path), solved with HiGHS.

Formulation. Steps t = 0..T-1 of dt_t hours (dt_0 may be shorter: the part of the current step
still ahead). Inputs per step: forecast load L_t (without the battery, charging included) and
PV V_t, import price c_t; export price e, import limit G, export limit X, battery capacity E,
efficiencies eta_c, eta_d, SoC window [s_min, s_max], start SoC s_0.

Variables per step (all >= 0): import within the limit I_t <= G, import above it
O_t (a slack, so a peak no battery can shave does not make the LP infeasible), export
Y_t <= X, PV curtailed K_t <= V_t, charge C_t <= max_charge_kw, discharge D_t <=
max_discharge_kw, stored energy S_t (kWh at the step's end).

  balance   I_t + O_t - Y_t - C_t + D_t - K_t = L_t - V_t
  battery   S_t = S_t-1 + eta_c C_t dt_t - D_t / eta_d dt_t,   S_-1 = s_0 E
  window    lo_t <= S_t <= hi_t   ([s_min, s_max] E, widened only as far as needed when s_0
            starts outside the window and the battery cannot get back in by step t)
  end       S_T-1 >= terminal E

  minimise  sum_t [ c_t (I_t + O_t) - e Y_t            energy cost
                    + M O_t                             import above the limit
                    + eps (C_t + D_t) + 2 eps K_t ] dt_t

M = 1000 x the highest price (at least 1) makes shaving a peak worth more than any tariff
spread; eps = 1e-4 x the same scale stops useless cycling (a flat tariff gives a flat SoC) and
makes curtailment the last resort (stored PV beats curtailed PV whenever it has any later use).
The terminal value defaults to the start SoC (clamped into the window): the horizon is one
day, so "back where it is now at this time tomorrow" is the steady-state cycle, and without
it the LP empties the battery at the horizon's end because energy left there is worth nothing.
A configured reserve (`terminal_soc`) replaces it. Import and export in the same step are not
excluded (that would need integers): with e below every c_t they never coincide in an optimum.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import highspy
import numpy as np

from agent.config import BatterySection
from agent.control.forecast import Forecast
from agent.control.lp_rows import SparseRows

STEP_S = 900
HORIZON_STEPS = 96
LIMIT_PENALTY = 1e3  # x the price scale, per kWh above the import limit
THROUGHPUT_PENALTY = 1e-4  # x the price scale, per kWh through the battery
INF = highspy.kHighsInf


class PlannerError(RuntimeError):
    """The LP could not be solved (bad inputs or a solver failure): keep the previous plan."""


@dataclass(frozen=True, slots=True)
class BatteryLimits:
    """What the planner needs to know about the battery. SoCs are fractions of capacity."""

    capacity_kwh: float
    soc_now: float
    soc_min: float
    soc_max: float
    max_charge_kw: float
    max_discharge_kw: float
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95

    def __post_init__(self) -> None:
        if self.capacity_kwh <= 0:
            raise ValueError(f"capacity_kwh must be positive, got {self.capacity_kwh}")
        if not 0.0 <= self.soc_min < self.soc_max <= 1.0:
            raise ValueError(f"need 0 <= soc_min < soc_max <= 1: {self.soc_min}, {self.soc_max}")
        if not (math.isfinite(self.soc_now) and 0.0 <= self.soc_now <= 1.0):
            raise ValueError(f"soc_now must be in 0..1, got {self.soc_now}")
        if self.max_charge_kw < 0 or self.max_discharge_kw < 0:
            raise ValueError("battery power limits must not be negative")
        for eff in (self.charge_efficiency, self.discharge_efficiency):
            if not 0.0 < eff <= 1.0:
                raise ValueError(f"efficiencies must be in (0, 1], got {eff}")

    @classmethod
    def from_section(
        cls,
        section: BatterySection,
        capacity_kwh: float,
        soc_now: float,
        charge_efficiency: float = 0.95,
        discharge_efficiency: float = 0.95,
    ) -> BatteryLimits:
        """From the config's battery section (which has no capacity or efficiencies yet)."""
        return cls(
            capacity_kwh,
            soc_now,
            section.soc_min,
            section.soc_max,
            section.max_charge_kw,
            section.max_discharge_kw,
            charge_efficiency,
            discharge_efficiency,
        )


@dataclass(frozen=True, slots=True)
class BatteryPlan:
    """The planner's answer: per step from `start`, what to reach and how."""

    start: datetime
    step_s: int
    soc: tuple[float, ...]  # SoC (fraction) to reach by each step's end
    battery_kw: tuple[float, ...]  # planned mean battery power, + = discharge
    grid_kw: tuple[float, ...]  # planned import - export
    curtail_kw: tuple[float, ...]  # PV the plan curtails
    forecast: Forecast  # the load and PV it was planned on
    price: tuple[float, ...]  # the import price of each step
    cost: float  # energy cost of the plan (currency), penalties excluded
    excess_kwh: float  # import above the limit no battery use could avoid
    solve_s: float  # building and solving the LP, wall time

    @property
    def steps(self) -> int:
        return len(self.soc)

    def step_at(self, now: datetime) -> int | None:
        """The index of the step `now` falls in, None outside the plan."""
        offset = (now - self.start).total_seconds()
        index = math.floor(offset / self.step_s)
        return index if 0 <= index < self.steps else None

    def target_soc(self, now: datetime) -> float | None:
        """The SoC to reach by the end of the current step."""
        index = self.step_at(now)
        return None if index is None else self.soc[index]

    def planned_kw(self, now: datetime) -> float | None:
        """The planned battery power for the current step (+ = discharge)."""
        index = self.step_at(now)
        return None if index is None else self.battery_kw[index]

    def mean_pv_kw(self, begin: datetime, end: datetime) -> float | None:
        """The forecast PV averaged over [begin, end), cut at the plan's end; None where none
        of it is within the plan, or where the forecast has no past PV to go on (its 0 there
        means unknown, not dark)."""
        first = (begin - self.start).total_seconds()
        last = min((end - self.start).total_seconds(), self.steps * self.step_s)
        if first < 0 or last <= first:
            return None
        known = self.forecast.pv_known
        kwh = 0.0
        for index, pv in enumerate(self.forecast.pv_kw):
            step_begin = index * self.step_s
            overlap = min(step_begin + self.step_s, last) - max(step_begin, first)
            if overlap > 0:
                if not known or not known[index]:
                    return None
                kwh += pv * overlap
        return kwh / (last - first)


def plan_battery(
    forecast: Forecast,
    tariff_prices: Sequence[float],
    battery: BatteryLimits,
    import_limit_kw: float,
    export_limit_kw: float,
    export_price: float,
    step_s: int = STEP_S,
    *,
    terminal_soc: float | None = None,
    first_step_s: float | None = None,
) -> BatteryPlan:
    """Solve the LP of the module docstring. Raises PlannerError if HiGHS finds no optimum.

    `terminal_soc`: the SoC the plan must end at or above (default: `battery.soc_now`, clamped
    into the window). `first_step_s`: how much of step 0 is still ahead (default: all of it).
    """
    started = time.perf_counter()
    steps = forecast.steps
    prices = [float(p) for p in tariff_prices]
    _check_inputs(forecast, prices, step_s, import_limit_kw, export_limit_kw, export_price)
    dt = [step_s / 3600.0] * steps
    if steps and first_step_s is not None:
        dt[0] = min(max(first_step_s, 1.0), step_s) / 3600.0
    if steps == 0:
        return BatteryPlan(forecast.start, step_s, (), (), (), (), forecast, (), 0.0, 0.0, 0.0)

    lp = _build(forecast, prices, battery, import_limit_kw, export_limit_kw, export_price, dt)
    _set_window(lp, battery, dt, terminal_soc)
    values = _solve(lp)

    n = steps
    imp, over, exp_, ch, dis, cur, stored = (values[k * n : (k + 1) * n] for k in range(7))
    grid = tuple(float(i + o - y) for i, o, y in zip(imp, over, exp_, strict=True))
    cost = sum(
        (p * (i + o) - export_price * y) * d
        for p, i, o, y, d in zip(prices, imp, over, exp_, dt, strict=True)
    )
    return BatteryPlan(
        start=forecast.start,
        step_s=step_s,
        soc=tuple(float(s) / battery.capacity_kwh for s in stored),
        battery_kw=tuple(float(d - c) for c, d in zip(ch, dis, strict=True)),
        grid_kw=grid,
        curtail_kw=tuple(float(k) for k in cur),
        forecast=forecast,
        price=tuple(prices),
        cost=float(cost),
        excess_kwh=float(sum(o * d for o, d in zip(over, dt, strict=True))),
        solve_s=time.perf_counter() - started,
    )


def _check_inputs(
    forecast: Forecast,
    prices: list[float],
    step_s: int,
    import_limit_kw: float,
    export_limit_kw: float,
    export_price: float,
) -> None:
    if len(prices) != forecast.steps:
        raise ValueError(f"{forecast.steps} forecast steps but {len(prices)} prices")
    if step_s != forecast.step_s:
        raise ValueError(f"step_s {step_s} differs from the forecast's {forecast.step_s}")
    numbers = [*prices, *forecast.load_kw, *forecast.pv_kw, export_price]
    if not all(math.isfinite(x) for x in numbers):
        raise ValueError("prices and forecasts must be finite")
    if import_limit_kw < 0 or export_limit_kw < 0:
        raise ValueError("import and export limits must not be negative")


@dataclass(slots=True)
class _Lp:
    """Column bounds, costs and CSR rows; columns are 7 blocks of `n` (see `plan_battery`)."""

    n: int
    col_lower: np.ndarray
    col_upper: np.ndarray
    cost: np.ndarray
    rows: SparseRows

    def col(self, block: int, step: int) -> int:
        return block * self.n + step

    def row(self, lower: float, upper: float, terms: list[tuple[int, float]]) -> None:
        self.rows.add(lower, upper, terms)


IMPORT, OVER, EXPORT, CHARGE, DISCHARGE, CURTAIL, STORED = range(7)


def _build(
    forecast: Forecast,
    prices: list[float],
    battery: BatteryLimits,
    import_limit_kw: float,
    export_limit_kw: float,
    export_price: float,
    dt: list[float],
) -> _Lp:
    n = forecast.steps
    lp = _Lp(n, np.zeros(7 * n), np.zeros(7 * n), np.zeros(7 * n), SparseRows())
    scale = max([*prices, export_price, 0.0]) or 1.0
    eps = THROUGHPUT_PENALTY * scale
    uppers = {
        IMPORT: import_limit_kw,
        OVER: INF,
        EXPORT: export_limit_kw,
        CHARGE: battery.max_charge_kw,
        DISCHARGE: battery.max_discharge_kw,
    }
    eta_c, eta_d = battery.charge_efficiency, battery.discharge_efficiency
    for t in range(n):
        for block, upper in uppers.items():
            lp.col_upper[lp.col(block, t)] = upper
        lp.col_upper[lp.col(CURTAIL, t)] = max(forecast.pv_kw[t], 0.0)
        costs = {
            IMPORT: prices[t],
            OVER: prices[t] + LIMIT_PENALTY * scale,
            EXPORT: -export_price,
            CHARGE: eps,
            DISCHARGE: eps,
            CURTAIL: 2 * eps,
        }
        for block, cost in costs.items():
            lp.cost[lp.col(block, t)] = cost * dt[t]
        net = forecast.load_kw[t] - max(forecast.pv_kw[t], 0.0)
        lp.row(
            net,
            net,
            [
                (lp.col(IMPORT, t), 1.0),
                (lp.col(OVER, t), 1.0),
                (lp.col(EXPORT, t), -1.0),
                (lp.col(CHARGE, t), -1.0),
                (lp.col(DISCHARGE, t), 1.0),
                (lp.col(CURTAIL, t), -1.0),
            ],
        )
        start_kwh = battery.soc_now * battery.capacity_kwh if t == 0 else 0.0
        dynamics = [
            (lp.col(STORED, t), 1.0),
            (lp.col(CHARGE, t), -eta_c * dt[t]),
            (lp.col(DISCHARGE, t), dt[t] / eta_d),
        ]
        if t > 0:
            dynamics.append((lp.col(STORED, t - 1), -1.0))
        lp.row(start_kwh, start_kwh, dynamics)
    return lp


def _set_window(
    lp: _Lp, battery: BatteryLimits, dt: list[float], terminal_soc: float | None
) -> None:
    """SoC bounds per step, widened only where a start outside the window cannot get back."""
    cap = battery.capacity_kwh
    start = battery.soc_now * cap
    elapsed_h = 0.0
    highest = start
    for t in range(lp.n):
        elapsed_h += dt[t]
        highest = start + battery.charge_efficiency * battery.max_charge_kw * elapsed_h
        lowest = start - battery.max_discharge_kw * elapsed_h / battery.discharge_efficiency
        lp.col_lower[lp.col(STORED, t)] = min(battery.soc_min * cap, highest)
        lp.col_upper[lp.col(STORED, t)] = max(battery.soc_max * cap, lowest)
    wanted = battery.soc_now if terminal_soc is None else terminal_soc
    terminal = min(max(wanted, battery.soc_min), battery.soc_max) * cap
    last = lp.col(STORED, lp.n - 1)
    lp.col_lower[last] = max(lp.col_lower[last], min(terminal, highest))


def _solve(lp: _Lp) -> list[float]:
    highs = highspy.Highs()  # type: ignore[no-untyped-call]  # its __init__ is unannotated
    highs.setOptionValue("output_flag", False)
    num_col = len(lp.col_lower)
    highs.addVars(num_col, lp.col_lower, lp.col_upper)
    highs.changeColsCost(num_col, np.arange(num_col, dtype=np.int32), lp.cost)
    lp.rows.load_into(highs)
    highs.run()
    status = highs.getModelStatus()
    if status != highspy.HighsModelStatus.kOptimal:
        raise PlannerError(f"HiGHS says {highs.modelStatusToString(status)}")
    return [float(x) for x in highs.getSolution().col_value]
