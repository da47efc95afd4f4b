"""Weighted max-min fair sharing of the charging budget between connectors (water-filling).

Progressive filling: every car's level (kW / weight) rises together, and a car stops only when
something it depends on is full: its own cap (the car, the connector), its charger, a phase or
the site total. The result is max-min fair, and no power is left that some car could still take.

AC cars get at least `min_a` or nothing, so their minimums are reserved first (cars that do not
fit are paused, in priority order) and the filling happens above them: an AC car stays at its
minimum until the common level passes it. Every connector, DC included, loads the phases it
draws from with kW * 1000 / (V * phases) amps each, as the simulator's physics does.

The filling is event-driven (a heap of the levels at which something next freezes), so a cycle
costs O(n log n) for n connectors rather than the O(n^2) of re-scanning after every freeze.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from agent.control.plan import ConnectorLimit, Reason
from agent.control.site_model import ConnectorModel, Phase

AC_STEP_A = 0.1  # AC limits are rounded down to this
DC_STEP_KW = 0.1  # DC limits are rounded down to this (unless `allocate` is told otherwise)
_EPS = 1e-9  # float slack for "fits" and "binds"; far below any rounding step

# Event kinds, in the order they are handled when they fall on the same level: a car starting
# to move before anything freezes, a car's own cap before a shared one, the most local shared
# constraint first (so a charger that is full reads CHARGER, not GRID).
_START, _CAP, _CHARGER, _PHASE, _TOTAL = 0, 1, 2, 3, 4
_WAITING, _MOVING, _FROZEN = 0, 1, 2
_REASON_OF_KIND = {_CHARGER: Reason.CHARGER, _PHASE: Reason.PHASE, _TOTAL: Reason.GRID}


@dataclass(frozen=True, slots=True)
class Demand:
    """One connector with a car, this cycle."""

    connector: ConnectorModel
    wants_kw: float  # the car's acceptance estimate; the connector's max_kw when unknown
    weight: float = 1.0  # priority weight: max-min fair on kW / weight


@dataclass(frozen=True, slots=True)
class Budget:
    total_kw: float  # for all connectors together (inf: no limit)
    phase_a: Mapping[Phase, float]  # per phase, amps available to the connectors (inf: no limit)
    voltage_v: float


@dataclass(frozen=True, slots=True)
class Allocation:
    limits: Mapping[str, ConnectorLimit]  # by device: kW for DC, A for AC, with the binding reason
    kw: Mapping[str, float]  # the power each limit implies (an AC car at least at its minimum)
    total_kw: float


@dataclass(slots=True)
class _Problem:
    """The cars taking part and the shared constraints (chargers, phases, total) they load.

    Per car: its floor (kW, the AC minimum), its own cap and the reason if that binds, and its
    terms: (constraint, kW-to-unit coefficient), amps per kW for a phase and 1 otherwise.
    """

    taking: list[Demand]
    floors: list[float]
    caps: list[float]
    cap_reasons: list[Reason]
    terms: list[list[tuple[int, float]]]
    cap: list[float]  # per constraint
    kind: list[int]

    def add(self, cap: float, kind: int) -> int:
        self.cap.append(max(cap, 0.0))
        self.kind.append(kind)
        return len(self.cap) - 1


def allocate(
    demands: Sequence[Demand],
    chargers: Mapping[str, float],
    budget: Budget,
    paused: AbstractSet[str] = frozenset(),
    dc_step_kw: float = DC_STEP_KW,
) -> Allocation:
    """Share `budget` max-min fairly; `chargers` maps charger id to its max_kw (absent: no cap).

    `demands` is also the priority order: when the AC minimums do not all fit, the last ones are
    paused (reason ROTATION). Connectors in `paused` get 0 (ROTATION).
    """
    if budget.voltage_v <= 0:
        raise ValueError(f"voltage_v must be positive, got {budget.voltage_v}")
    limits: dict[str, ConnectorLimit] = {}
    problem = _admit(demands, chargers, budget, paused, limits)
    values, reasons = _fill(problem)
    kw = dict.fromkeys(limits, 0.0)  # everyone not taking part gets 0
    volts = budget.voltage_v
    round_dc = round_down_to(dc_step_kw)
    for demand, value, reason in zip(problem.taking, values, reasons, strict=True):
        connector = demand.connector
        if connector.kind == "dc":
            kw[connector.device] = rounded = round_dc(value)
            limits[connector.device] = _limit(rounded, "kW", reason)
        else:
            amps = _ac_amps(connector, value, volts)
            kw[connector.device] = connector.kw_from_amps(amps, volts)
            limits[connector.device] = _limit(amps, "A", reason)
    if len(limits) != len(demands):
        raise ValueError("two demands for one connector")
    return Allocation(MappingProxyType(limits), MappingProxyType(kw), sum(kw.values()))


def _admit(
    demands: Sequence[Demand],
    chargers: Mapping[str, float],
    budget: Budget,
    paused: AbstractSet[str],
    limits: dict[str, ConnectorLimit],
) -> _Problem:
    """Who takes part; the others get their 0 (and its reason) in `limits` right away.

    AC minimums are admitted first fit in priority order, so a later car on another phase still
    runs when an earlier one's phase is full.
    """
    volts = budget.voltage_v
    problem = _Problem([], [], [], [], [], [], [])
    by_phases = _site_terms(demands, budget, problem)
    by_charger: dict[str, tuple[tuple[Phase, ...], list[tuple[int, float]]]] = {}
    used = [0.0] * len(problem.cap)  # the admitted floors, per constraint
    for demand in demands:
        connector = demand.connector
        device = connector.device
        wants = demand.wants_kw
        if not 0 < demand.weight < math.inf:
            raise ValueError(f"{device}: weight must be positive and finite, not {demand.weight}")
        is_ac = connector.kind == "ac"
        if device in paused or not wants > 0:  # `not >`: a NaN estimate is no demand either
            reason = Reason.ROTATION if device in paused else Reason.CAR
            limits[device] = _limit(0.0, "A" if is_ac else "kW", reason)
            continue
        charger_kw = _sane(chargers.get(connector.charger, math.inf))
        hard_kw = connector.max_kw
        floor_kw = 0.0
        if is_ac:
            per_amp_kw = volts * len(connector.phases) / 1000.0
            if connector.max_a is not None:
                hard_kw = min(hard_kw, connector.max_a * per_amp_kw)
            if connector.min_a is not None:
                floor_kw = connector.min_a * per_amp_kw
        if min(hard_kw, charger_kw) < floor_kw - _EPS or hard_kw <= 0:
            limits[device] = _limit(0.0, "A" if is_ac else "kW", Reason.CHARGER)  # never runs
            continue
        cached = by_charger.get(connector.charger)
        if cached is not None and cached[0] == connector.phases:
            own = cached[1]
        else:
            own = list(by_phases[connector.phases])
            if charger_kw < math.inf:
                own.append((problem.add(charger_kw, _CHARGER), 1.0))
                used.append(0.0)
            by_charger[connector.charger] = (connector.phases, own)
        if floor_kw > 0:
            if any(used[c] + a * floor_kw > problem.cap[c] + _EPS for c, a in own):
                limits[device] = _limit(0.0, "A", Reason.ROTATION)
                continue
            for c, a in own:
                used[c] += a * floor_kw
        problem.taking.append(demand)
        problem.floors.append(floor_kw)
        problem.caps.append(max(min(wants, hard_kw), floor_kw))
        problem.cap_reasons.append(Reason.CAR if wants < hard_kw - _EPS else Reason.CHARGER)
        problem.terms.append(own)
    return problem


_LIMITS: dict[tuple[float, str, Reason], ConnectorLimit] = {}


def _limit(value: float, unit: Literal["kW", "A"], reason: Reason) -> ConnectorLimit:
    """The same limits come back cycle after cycle, and building a frozen dataclass costs a
    microsecond, a sixth of a connector's whole share of the cycle: reuse them (bounded)."""
    key = (value, unit, reason)
    limit = _LIMITS.get(key)
    if limit is None:
        if len(_LIMITS) >= 20_000:
            _LIMITS.clear()
        limit = _LIMITS[key] = ConnectorLimit(value, unit, reason)
    return limit


def _site_terms(
    demands: Sequence[Demand], budget: Budget, problem: _Problem
) -> dict[tuple[Phase, ...], list[tuple[int, float]]]:
    """Each phase set's terms in the site-wide constraints: the total (1 per kW) and every
    limited phase it draws from (amps per kW).

    When every car draws from all three phases, each phase carries a third of the total, so the
    phases and the total are one constraint in kW with the tightest cap: one term per car
    instead of four, which is most of the work on a DC site.
    """
    volts = budget.voltage_v
    total_kw = _sane(budget.total_kw)
    limited = {p: _sane(a) for p, a in budget.phase_a.items() if _sane(a) < math.inf}
    sets = {d.connector.phases for d in demands}
    if all(len(phases) == 3 for phases in sets):
        phase_kw = min(limited.values(), default=math.inf) * 3 * volts / 1000.0
        if total_kw >= math.inf and phase_kw >= math.inf:
            return {phases: [] for phases in sets}
        if phase_kw < total_kw:
            site = problem.add(phase_kw, _PHASE)
        else:
            site = problem.add(total_kw, _TOTAL)
        return {phases: [(site, 1.0)] for phases in sets}
    total = [(problem.add(total_kw, _TOTAL), 1.0)] if total_kw < math.inf else []
    index = {p: problem.add(a, _PHASE) for p, a in limited.items()}
    return {
        phases: total + [(index[p], 1000.0 / (len(phases) * volts)) for p in phases if p in index]
        for phases in sets
    }


def _sane(cap: float) -> float:
    """A NaN limit (a broken reading upstream) allows nothing; it must never mean "no limit"."""
    return 0.0 if math.isnan(cap) else cap


def _fill(problem: _Problem) -> tuple[list[float], list[Reason]]:
    """Progressive filling: each car at max(floor, weight * level) until it or a constraint of
    it is full.

    Each shared constraint's load is kept as `base + slope * level`, so the level at which it
    fills is `(cap - base) / slope`. A car that stops only pushes that level later, so a queued
    entry stays a lower bound and is checked when it comes up (re-queued if it moved); only a
    car that starts moving (slope up) queues a new, earlier entry, and makes the old one stale.
    Cars with the same minimum start at the same level: their constraints are re-queued once.
    """
    weights = [d.weight for d in problem.taking]
    floors, caps, terms = problem.floors, problem.caps, problem.terms
    n, k = len(weights), len(problem.cap)
    c_cap, c_kind = problem.cap, problem.kind
    base, slope = [0.0] * k, [0.0] * k
    movers, version, done = [0] * k, [0] * k, [False] * k
    members: list[list[int]] = [[] for _ in range(k)]
    state = [_MOVING] * n
    values = list(floors)
    reasons = list(problem.cap_reasons)
    heap: list[tuple[float, int, int, int]] = []
    for i in range(n):
        w, own, floor = weights[i], terms[i], floors[i]
        if caps[i] <= floor + _EPS:  # at its cap from the start (e.g. wants < its minimum)
            state[i] = _FROZEN
            for c, a in own:
                base[c] += a * floor
        elif floor > 0:
            state[i] = _WAITING
            for c, a in own:
                members[c].append(i)
                base[c] += a * floor
            heap.append((floor / w, _START, i, 0))
        else:
            for c, a in own:
                members[c].append(i)
                slope[c] += a * w
                movers[c] += 1
            heap.append((caps[i] / w, _CAP, i, 0))
    for c in range(k):
        if movers[c]:
            heap.append((max((c_cap[c] - base[c]) / slope[c], 0.0), c_kind[c], c, 0))
    heapq.heapify(heap)
    push, pop = heapq.heappush, heapq.heappop
    level = 0.0
    started: set[int] = set()  # constraints whose slope rose: re-queued once per batch of starts
    while heap:
        if started and not (heap[0][1] == _START and heap[0][0] <= level):
            for c in started:
                version[c] += 1
                if not done[c]:
                    fills = max((c_cap[c] - base[c]) / slope[c], level)
                    push(heap, (fills, c_kind[c], c, version[c]))
            started.clear()
        at, kind, index, ver = pop(heap)
        if kind == _START:
            if state[index] != _WAITING:
                continue
            level = at if at > level else level
            state[index] = _MOVING
            w = weights[index]
            for c, a in terms[index]:
                base[c] -= a * floors[index]
                slope[c] += a * w
                movers[c] += 1
                started.add(c)
            push(heap, (caps[index] / w, _CAP, index, 0))
        elif kind == _CAP:
            if state[index] != _MOVING:
                continue
            level = at if at > level else level
            _freeze(index, caps[index], weights[index], terms[index], base, slope, movers)
            values[index] = caps[index]
            state[index] = _FROZEN
        else:
            if ver != version[index] or done[index] or not movers[index]:
                continue  # a newer entry exists, or nothing in it grows until a car starts
            fills = max((c_cap[index] - base[index]) / slope[index], level)
            if fills > at:
                push(heap, (fills, kind, index, ver))  # cars stopped since: it fills later
                continue
            level = at if at > level else level
            done[index] = True
            reason = _REASON_OF_KIND[kind]
            for i in members[index]:
                if state[i] == _FROZEN:
                    continue
                reasons[i] = reason
                if state[i] == _MOVING:  # a waiting car stays at its floor, already in base
                    values[i] = value = min(weights[i] * level, caps[i])
                    _freeze(i, value, weights[i], terms[i], base, slope, movers)
                state[i] = _FROZEN
    return values, reasons


def _freeze(
    i: int,
    value: float,
    weight: float,
    own: list[tuple[int, float]],
    base: list[float],
    slope: list[float],
    movers: list[int],
) -> None:
    """A moving car stops at `value`: its share moves from each constraint's slope to its base."""
    for c, a in own:
        base[c] += a * value
        movers[c] -= 1
        slope[c] = slope[c] - a * weight if movers[c] else 0.0  # exact 0: no float residue


def round_down_to(step: float) -> Callable[[float], float]:
    """Rounds down to a multiple of step. The nudge keeps 0.3 / 0.1 = 2.999... at 3 steps;
    dividing by a whole 1 / step (10 for 0.1) gives 58.5 where multiplying by 0.1 would give
    58.500000000000001."""
    if step <= 0:
        return float
    per_unit = 1.0 / step
    whole = round(per_unit)
    floor = math.floor
    if abs(per_unit - whole) < 1e-9:
        return lambda value: floor(value * whole + _EPS) / whole
    return lambda value: floor(value / step + _EPS) * step


_ROUND_AMPS = round_down_to(AC_STEP_A)
ROUND_DC_KW = round_down_to(DC_STEP_KW)


def _ac_amps(connector: ConnectorModel, kw: float, volts: float) -> float:
    """Amps per phase, rounded down to AC_STEP_A, but never below the minimum it was given."""
    amps = _ROUND_AMPS(kw * 1000.0 / (volts * len(connector.phases)))
    if connector.max_a is not None:
        amps = min(amps, connector.max_a)
    if connector.min_a is not None and amps < connector.min_a:
        amps = connector.min_a  # its value is at or above the floor; rounding may not undo that
    return amps
