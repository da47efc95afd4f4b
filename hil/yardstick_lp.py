"""The yardstick's linear programme, built as sparse columns and rows (formulation: hil.yardstick).

`build_site_lp` turns a scenario into bounds and rows and remembers which column is which, so
`hil.yardstick` only sets objectives, solves and reads the answer back. Rows are kept in CSR
arrays and handed to HiGHS in one `addRows` call: building a day of a 182-connector site takes
a fraction of a second.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import highspy
import numpy as np

from agent.control.lp_rows import SparseRows
from hil.physics_ev import DERATE_FROM_FRACTION, DERATE_TO_SHARE
from hil.scenario import PHASES, ChargerSpec, Scenario, SessionSpec
from hil.yardstick_inputs import (
    Step,
    offline_intervals,
    online_s,
    session_online_s,
    site_steps,
)

INF = highspy.kHighsInf
# The simulator's physics step: the derating recurrence is compounded per second (see
# `derating_reach`), which is what `hil.physics` integrates.
PHYSICS_DT_S = 1.0


@dataclass(slots=True)
class SparseLp:
    """Column bounds and CSR rows, appended one at a time."""

    col_lower: list[float] = field(default_factory=list)
    col_upper: list[float] = field(default_factory=list)
    rows: SparseRows = field(default_factory=SparseRows)

    def col(self, lower: float, upper: float) -> int:
        self.col_lower.append(lower)
        self.col_upper.append(upper)
        return len(self.col_lower) - 1

    def row(self, lower: float, upper: float, terms: Iterable[tuple[int, float]]) -> None:
        self.rows.add(lower, upper, terms)

    @property
    def num_col(self) -> int:
        return len(self.col_lower)

    def load_into(self, highs: highspy.Highs) -> None:
        """Pass the columns (cost 0) and rows to an empty HiGHS model."""
        highs.addVars(self.num_col, np.array(self.col_lower), np.array(self.col_upper))
        self.rows.load_into(highs)


@dataclass(slots=True)
class SessionCols:
    """One session's columns: average power per step it can charge in, energy by step end."""

    session: SessionSpec
    power: list[tuple[int, int]] = field(default_factory=list)  # (step index, column)
    energy: list[int] = field(default_factory=list)  # cumulative kWh, same steps as `power`

    @property
    def delivered_col(self) -> int | None:
        return self.energy[-1] if self.energy else None


@dataclass(slots=True)
class SiteLp:
    """The LP and the meaning of its columns."""

    lp: SparseLp
    steps: list[Step]
    imports: list[int]
    exports: list[int]
    pv_used: list[int]
    charge: list[int]  # empty without a battery
    discharge: list[int]
    stored: list[int]  # kWh at each step's end
    sessions: list[SessionCols]
    stored_init_kwh: float

    def delivered_cols(self) -> list[int]:
        return [c for s in self.sessions if (c := s.delivered_col) is not None]

    def cost_terms(self, export_price: float) -> list[tuple[int, float]]:
        """Energy cost: import x step price - export x export price, in currency per kW."""
        terms = []
        for imports, exports, step in zip(self.imports, self.exports, self.steps, strict=True):
            terms.append((imports, step.price * step.dt_h))
            terms.append((exports, -export_price * step.dt_h))
        return terms


def session_cap_kw(session: SessionSpec, charger: ChargerSpec, voltage_v: float) -> float:
    """The most a car can draw with no other limit: connector, car, charger, AC current cap."""
    connector = next(c for c in charger.connectors if c.id == session.connector)
    cap = min(connector.max_kw, session.max_kw, charger.max_kw)
    if charger.kind == "ac" and charger.max_a is not None:
        cap = min(cap, charger.max_a * voltage_v * charger.phases / 1000.0)
    return max(0.0, cap)


def derating_reach(session: SessionSpec, seconds: float) -> tuple[float, float]:
    """(c, e_inf) so that energy by the end of `seconds` of charging is at most
    c e_inf + (1 - c) e_start.

    Above 80 % the car accepts at most g(e) = m (1 + k f - k e / E) (k = 0.7 / 0.2, f = 0.8),
    linear in the energy e received, reaching 0 at e_inf = E (1 + k f) / k. With g(e) <= that
    line everywhere, the simulator's per-second update e' = e + g(e) dt gives
    e_inf - e' >= (1 - b dt)(e_inf - e), b = k m / E per hour, so after n seconds
    e <= e_inf - (1 - b dt)^n (e_inf - e_start): c = 1 - (1 - b dt)^n.
    """
    energy = session.energy_kwh
    k = (1.0 - DERATE_TO_SHARE) / (1.0 - DERATE_FROM_FRACTION)
    e_inf = energy * (1.0 + k * DERATE_FROM_FRACTION) / k
    per_second = 1.0 - k * session.max_kw / energy * PHYSICS_DT_S / 3600.0
    c = 1.0 - max(per_second, 0.0) ** (seconds / PHYSICS_DT_S)
    return c, e_inf


def _add_session(
    lp: SparseLp,
    steps: list[Step],
    step_s: float,
    session: SessionSpec,
    cap_kw: float,
    offline: list[tuple[float, float]],
    derating: bool,
) -> SessionCols:
    cols = SessionCols(session)
    if session.energy_kwh <= 0.0 or cap_kw <= 0.0:
        return cols
    first = int(session.arrive_s // step_s)
    last = min(len(steps), int(-(-session.depart_s // step_s)))
    reach_kwh = 0.0  # the most the car could have by the end of the current step, flat cap only
    previous: int | None = None
    for k in range(first, last):
        step = steps[k]
        seconds = session_online_s(session, step.start_s, step.end_s, offline)
        if seconds <= 0.0:
            continue
        power = lp.col(0.0, cap_kw * seconds / step.dt_s)
        energy_upper = session.energy_kwh
        reach_kwh += cap_kw * seconds / 3600.0
        derate_row = derating and reach_kwh > DERATE_FROM_FRACTION * session.energy_kwh
        c, e_inf = derating_reach(session, seconds) if derate_row else (1.0, 0.0)
        if derate_row and previous is None:
            energy_upper = min(energy_upper, c * e_inf)
        energy = lp.col(0.0, energy_upper)
        # e_k - e_{k-1} - p_k dt_h = 0
        terms = [(energy, 1.0), (power, -step.dt_h)]
        if previous is not None:
            terms.append((previous, -1.0))
        lp.row(0.0, 0.0, terms)
        if derate_row and previous is not None:
            # e_k - (1 - c) e_{k-1} <= c e_inf
            lp.row(-INF, c * e_inf, [(energy, 1.0), (previous, -(1.0 - c))])
        cols.power.append((k, power))
        cols.energy.append(energy)
        previous = energy
    return cols


def build_site_lp(scenario: Scenario, step_s: float, *, derating: bool = False) -> SiteLp:
    """Every variable and constraint of the formulation in hil.yardstick's docstring."""
    lp = SparseLp()
    steps = site_steps(scenario, step_s)
    site = scenario.site
    imports = [lp.col(0.0, max(0.0, s.grid_limit_kw)) for s in steps]
    exports = [lp.col(0.0, max(0.0, site.export_limit_kw)) for s in steps]
    pv_used = [lp.col(0.0, s.pv_kw) for s in steps]
    charge: list[int] = []
    discharge: list[int] = []
    stored: list[int] = []
    battery = scenario.battery
    stored_init = 0.0
    if battery is not None:
        cap = battery.capacity_kwh
        stored_init = battery.soc_init * cap
        low, high = min(battery.soc_min * cap, stored_init), max(battery.soc_max * cap, stored_init)
        charge = [lp.col(0.0, battery.max_charge_kw) for _ in steps]
        discharge = [lp.col(0.0, battery.max_discharge_kw) for _ in steps]
        stored = [lp.col(low, high) for _ in steps]
        lp.col_lower[stored[-1]] = stored_init  # end no lower than the start
        for k, step in enumerate(steps):
            # stored_k - stored_{k-1} - eta_c dt_h charge_k + dt_h / eta_d discharge_k = 0
            terms = [
                (stored[k], 1.0),
                (charge[k], -battery.charge_efficiency * step.dt_h),
                (discharge[k], step.dt_h / battery.discharge_efficiency),
            ]
            rhs = stored_init if k == 0 else 0.0
            if k > 0:
                terms.append((stored[k - 1], -1.0))
            lp.row(rhs, rhs, terms)

    offline = offline_intervals(scenario)
    sessions = []
    for session in scenario.sessions:
        cap_kw = session_cap_kw(session, scenario.charger(session.charger), site.voltage_v)
        outages = offline.get(session.charger, [])
        sessions.append(_add_session(lp, steps, step_s, session, cap_kw, outages, derating))

    # Per step: who charges, by charger and by phase.
    by_charger: list[dict[str, list[int]]] = [{} for _ in steps]
    for cols in sessions:
        for k, power in cols.power:
            by_charger[k].setdefault(cols.session.charger, []).append(power)

    for k, step in enumerate(steps):
        # Balance: import - export + pv + discharge - charge - sum p = base load
        terms = [(imports[k], 1.0), (exports[k], -1.0), (pv_used[k], 1.0)]
        if battery is not None:
            terms += [(discharge[k], 1.0), (charge[k], -1.0)]
        terms += [(p, -1.0) for powers in by_charger[k].values() for p in powers]
        lp.row(step.base_kw, step.base_kw, terms)
        for charger_id, powers in by_charger[k].items():
            if len(powers) < 2:
                continue  # one car: its bound already holds the charger's max_kw
            charger = scenario.charger(charger_id)
            share = online_s(step.start_s, step.end_s, offline.get(charger_id, [])) / step.dt_s
            lp.row(-INF, charger.max_kw * share, [(p, 1.0) for p in powers])
        if site.phase_limit_a is not None:
            _phase_rows(lp, scenario, imports[k], exports[k], by_charger[k])

    return SiteLp(
        lp, steps, imports, exports, pv_used, charge, discharge, stored, sessions, stored_init
    )


def _phase_rows(
    lp: SparseLp,
    scenario: Scenario,
    imports: int,
    exports: int,
    by_charger: dict[str, list[int]],
) -> None:
    """Per phase L: (import - export - sum 1-phase)/3 + sum 1-phase on L <= limit_L V / 1000.

    As in hil.physics: base load, PV, battery and 3-phase chargers are symmetric, a 1-phase
    charger's power sits on its phase; current = power x 1000 / V. Only import current is
    limited (the KPI `phase_violation_s` counts current above the limit).
    """
    limits = scenario.site.phase_limit_a
    assert limits is not None
    one_phase = [
        (power, scenario.charger(charger_id).phase)
        for charger_id, powers in by_charger.items()
        if scenario.charger(charger_id).phases == 1
        for power in powers
    ]
    for phase, limit_a in zip(PHASES, limits, strict=True):
        terms = [(imports, 1.0 / 3.0), (exports, -1.0 / 3.0)]
        terms += [(p, (2.0 / 3.0) if on == phase else (-1.0 / 3.0)) for p, on in one_phase]
        lp.row(-INF, limit_a * scenario.site.voltage_v / 1000.0, terms)
