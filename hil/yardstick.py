"""Offline yardstick: the most energy any controller could deliver on a scenario, and at what cost.

A perfect-foresight linear programme over the whole scenario in steps of `step_s` (300 s by
default), solved lexicographically with HiGHS: stage 1 maximises the energy delivered to the
cars; stage 2 holds that energy (to a relative 1e-8) and minimises the energy cost. Its numbers
bound what a real controller can reach, since the LP relaxes what a controller cannot escape:
power is a step average (a car plugged in for part of a step, or a charger offline for part of
it, may charge in the step at its full rate times the share of the step), AC minimum currents
and setpoint delays are ignored, and the import, export and phase limits hold on step averages.

Formulation. Steps k = 0..K-1 cover [t_k, t_k+1), dt_k hours long. Inputs are exact step
means (hil.yardstick_inputs): base load B_k, available PV V_k, import price c_k (the share of
the step each tariff period covers), import limit G_k (time-weighted over `grid_limit`
events). For each session s, n_sk = seconds of step k it is plugged in while its charger is
online (`charger_offline` outages removed; `meter_outage` is irrelevant with perfect
foresight), and P_s = min(connector max_kw, car max_kw, charger max_kw, AC: max_a V phases /
1000).

Variables, per step k (all >= 0): import I_k <= G_k, export X_k <= export_limit_kw, PV used
U_k <= V_k, battery charge C_k <= max_charge_kw, discharge D_k <= max_discharge_kw, stored
energy S_k (kWh at the step's end) in [soc_min, soc_max] x capacity; per session s and step k
with n_sk > 0: power p_sk in [0, P_s n_sk / dt_k] and energy received by the step's end
e_sk in [0, energy_kwh].

Constraints, per step k:
  balance      I_k - X_k + U_k + D_k - C_k - sum_s p_sk = B_k
  battery      S_k = S_k-1 + C_k eta_c dt_k - D_k / eta_d dt_k,  S_-1 = soc_init x capacity
  end state    S_K-1 >= soc_init x capacity
  energy       e_sk = e_s,k-1 + p_sk dt_k  (e_s,-1 = 0; the bound e_sk <= energy_kwh caps it)
  charger      sum over its sessions p_sk <= max_kw x (online share of the step)
  phases       (if phase_limit_a) for L in L1..L3:
               (I_k - X_k - sum_1ph p_sk) / 3 + sum_1ph-on-L p_sk <= limit_L V / 1000
  derating     (only with derating=True)
               e_sk <= c_sk e_inf,s + (1 - c_sk) e_s,k-1,  c_sk = 1 - (1 - b_s)^n_sk,
               b_s = 3.5 max_kw / energy_kwh / 3600 per second, e_inf,s = energy_kwh x 3.8 / 3.5

Derating (FORMAT.md: above 80 % of energy_kwh the car accepts m (3.8 - 3.5 e / E)) is relaxed by
default, like the minimum currents: the car's cap is its max_kw throughout. That is the choice
that reproduces the project's independent computation on reference-station.json to the unit
(25,048.0 kWh and 10,457.2 CNY against 25,048 and 10,458); modelling it (`derating=True`) gives
a tighter bound that is still valid, 8 kWh lower and 12 CNY dearer (25,039.7 kWh, 10,469.7 CNY).
Modelled, the "derating" row above is added: the simulator's per-second recurrence compounded
over the step's n_sk seconds, a valid bound everywhere because the real limit min(m, line) never
exceeds the line (`hil.yardstick_lp.derating_reach`). The other choices were checked the same
way: a car counted for whole steps only when present all of it delivers 24,946 kWh, one counted
for the whole step when present at all 25,093 kWh; without the end-state row the battery ends
at soc_min and the cost drops to 10,326 CNY. Export is priced, but the optimum exports nothing
on the reference day.

Objectives: stage 1 maximises sum_s e_s,last (the energy delivered). Stage 2 adds the row
sum_s e_s,last >= (1 - 1e-8) x optimum and minimises sum_k (c_k I_k - export_price X_k) dt_k:
export earns its price, so curtailing or exporting PV is the LP's choice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import highspy
import numpy as np

from hil.scenario import Scenario
from hil.yardstick_lp import SiteLp, build_site_lp

DEFAULT_STEP_S = 300
HOLD_RELATIVE = 1e-8  # stage 2 keeps delivered energy >= (1 - this) x stage 1's optimum
HOLD_ABSOLUTE_KWH = 1e-9


class YardstickError(Exception):
    """The LP has no answer, e.g. the base load alone exceeds the import limit."""


@dataclass(frozen=True, slots=True)
class Yardstick:
    """The LP's answer: the best delivered energy, its least cost, and how the site ran."""

    delivered_kwh: float
    cost: float
    grid_import_kwh: float
    grid_export_kwh: float
    peak_import_kw: float  # highest step-average import
    battery_soc_end: float | None
    requested_kwh: float
    step_s: float
    solve_s: float
    status: str
    session_kwh: tuple[tuple[str, float], ...]  # (session id, delivered), scenario order

    def delivered_by_session(self) -> dict[str, float]:
        return dict(self.session_kwh)


def solve_yardstick(
    scenario: Scenario, step_s: float = DEFAULT_STEP_S, *, derating: bool = False
) -> Yardstick:
    """Build and solve the two-stage LP; `derating=True` models FORMAT.md's derating."""
    started = time.perf_counter()
    site = build_site_lp(scenario, step_s, derating=derating)
    highs = highspy.Highs()  # type: ignore[no-untyped-call]  # its __init__ is unannotated
    highs.setOptionValue("output_flag", False)
    site.lp.load_into(highs)

    delivered = site.delivered_cols()
    _set_costs(highs, site.lp.num_col, [(col, -1.0) for col in delivered])
    _run(highs, "stage 1 (most energy)")
    best_kwh = -highs.getInfo().objective_function_value

    hold = best_kwh - max(HOLD_RELATIVE * best_kwh, HOLD_ABSOLUTE_KWH)
    if delivered:
        index = np.array(delivered, dtype=np.int32)
        highs.addRow(hold, highspy.kHighsInf, len(delivered), index, np.ones(len(delivered)))
    _set_costs(highs, site.lp.num_col, site.cost_terms(scenario.tariff.export_price))
    status = _run(highs, "stage 2 (least cost)")
    values = list(highs.getSolution().col_value)
    return _answer(scenario, site, values, status, step_s, time.perf_counter() - started)


def _set_costs(highs: highspy.Highs, num_col: int, terms: list[tuple[int, float]]) -> None:
    costs = np.zeros(num_col)
    for col, coef in terms:
        costs[col] += coef
    highs.changeColsCost(num_col, np.arange(num_col, dtype=np.int32), costs)


def _run(highs: highspy.Highs, stage: str) -> str:
    highs.run()
    status = highs.getModelStatus()
    text = str(highs.modelStatusToString(status))
    if status != highspy.HighsModelStatus.kOptimal:
        raise YardstickError(f"{stage}: HiGHS says {text}")
    return text


def _answer(
    scenario: Scenario,
    site: SiteLp,
    x: list[float],
    status: str,
    step_s: float,
    solve_s: float,
) -> Yardstick:
    steps = site.steps
    imports = [x[col] for col in site.imports]
    exports = [x[col] for col in site.exports]
    price_export = scenario.tariff.export_price
    flows = zip(imports, exports, steps, strict=True)
    cost = sum((i * s.price - e * price_export) * s.dt_h for i, e, s in flows)
    session_kwh = tuple(
        (cols.session.id, 0.0 if (col := cols.delivered_col) is None else max(0.0, x[col]))
        for cols in site.sessions
    )
    battery = scenario.battery
    soc_end = None
    if battery is not None:
        soc_end = x[site.stored[-1]] / battery.capacity_kwh
    return Yardstick(
        delivered_kwh=sum(kwh for _, kwh in session_kwh),
        cost=cost,
        grid_import_kwh=sum(i * s.dt_h for i, s in zip(imports, steps, strict=True)),
        grid_export_kwh=sum(e * s.dt_h for e, s in zip(exports, steps, strict=True)),
        peak_import_kw=max(imports, default=0.0),
        battery_soc_end=soc_end,
        requested_kwh=sum(s.energy_kwh for s in scenario.sessions),
        step_s=float(step_s),
        solve_s=solve_s,
        status=status,
        session_kwh=session_kwh,
    )
