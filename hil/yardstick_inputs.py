"""The scenario as the yardstick's LP sees it: step averages over fixed time steps.

The LP works in power averaged over each step, so every time-varying input is reduced to its
exact mean over the step's interval [a, b): base load and PV (piecewise linear: trapezoids
between the curve's points), the tariff price (split at the period boundaries of local time),
the grid limit (split at `grid_limit` events), and how many seconds of the step each car is
plugged in to a charger that is online (`charger_offline` removes the outage). Nothing here knows
about the LP.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from hil.scenario import ChargerOfflineEvent, Curve, GridLimitEvent, Scenario, SessionSpec

SECONDS_PER_DAY = 86400.0

Interval = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Step:
    """One LP step: [start_s, end_s) and the mean of each site input over it."""

    start_s: float
    end_s: float
    base_kw: float
    pv_kw: float  # available PV
    price: float  # import price per kWh
    grid_limit_kw: float

    @property
    def dt_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def dt_h(self) -> float:
        return self.dt_s / 3600.0


def step_bounds(duration_s: float, step_s: float) -> list[Interval]:
    """[k step, (k + 1) step) up to the duration; the last step is shorter if it must be."""
    if step_s <= 0:
        raise ValueError(f"step_s must be > 0, not {step_s}")
    count = math.ceil(duration_s / step_s)
    return [(k * step_s, min((k + 1) * step_s, duration_s)) for k in range(count)]


def curve_mean(curve: Curve, a: float, b: float) -> float:
    """Mean of a piecewise-linear curve (flat outside its points) over [a, b): exact."""
    if b <= a:
        return curve.at(a)
    knots = [a, *(t for t in curve.times if a < t < b), b]
    area = 0.0
    for t0, t1 in itertools.pairwise(knots):
        area += (curve.at(t0) + curve.at(t1)) / 2.0 * (t1 - t0)
    return area / (b - a)


def start_second_of_day(scenario: Scenario) -> float:
    """Local seconds after midnight at t = 0 (tariff periods are local to the start's offset)."""
    start = scenario.start
    return start.hour * 3600 + start.minute * 60 + start.second + start.microsecond / 1e6


def price_mean(scenario: Scenario, a: float, b: float) -> float:
    """Mean import price over [a, b): the share of the interval each tariff period covers.

    Plain float arithmetic on seconds of day (no datetime per step), so whole-second times and
    whole-minute period boundaries split exactly.
    """
    if b <= a:
        return scenario.price_at(a)
    day0 = start_second_of_day(scenario)
    total = 0.0
    t = a
    while t < b:
        second_of_day = (day0 + t) % SECONDS_PER_DAY
        period = scenario.tariff.period_at(second_of_day / 60.0)
        left_s = period.end_min * 60.0 - second_of_day
        end = min(b, t + max(left_s, 1e-9))
        total += period.price * (end - t)
        t = end
    return total / (b - a)


def grid_limit_mean(scenario: Scenario, a: float, b: float) -> float:
    """Time-weighted mean of the import limit in force over [a, b) (events change it)."""
    if b <= a:
        return scenario.grid_limit_at(a)
    changes = {e.t_s for e in scenario.events if isinstance(e, GridLimitEvent) and a < e.t_s < b}
    cuts = sorted({a, b, *changes})
    total = sum(scenario.grid_limit_at(t0) * (t1 - t0) for t0, t1 in itertools.pairwise(cuts))
    return total / (b - a)


def site_steps(scenario: Scenario, step_s: float) -> list[Step]:
    """Every LP step with its site inputs averaged over it."""
    pv = scenario.pv
    steps = []
    for a, b in step_bounds(scenario.duration_s, step_s):
        pv_kw = 0.0 if pv is None else pv.peak_kw * curve_mean(pv.profile, a, b)
        steps.append(
            Step(
                start_s=a,
                end_s=b,
                base_kw=curve_mean(scenario.site.base_load_kw, a, b),
                pv_kw=max(0.0, pv_kw),
                price=price_mean(scenario, a, b),
                grid_limit_kw=grid_limit_mean(scenario, a, b),
            )
        )
    return steps


def offline_intervals(scenario: Scenario) -> dict[str, list[Interval]]:
    """Per charger, its `charger_offline` outages merged into disjoint sorted intervals."""
    raw: dict[str, list[Interval]] = {}
    for event in scenario.events:
        if isinstance(event, ChargerOfflineEvent):
            raw.setdefault(event.charger, []).append((event.t_s, event.t_s + event.duration_s))
    merged: dict[str, list[Interval]] = {}
    for charger, spans in raw.items():
        out: list[Interval] = []
        for start, end in sorted(spans):
            if out and start <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], end))
            else:
                out.append((start, end))
        merged[charger] = out
    return merged


def overlap(a: float, b: float, c: float, d: float) -> float:
    """Length of [a, b) ∩ [c, d)."""
    return max(0.0, min(b, d) - max(a, c))


def online_s(a: float, b: float, offline: list[Interval]) -> float:
    """Seconds of [a, b) outside the (disjoint) offline intervals."""
    return (b - a) - sum(overlap(a, b, start, end) for start, end in offline)


def session_online_s(session: SessionSpec, a: float, b: float, offline: list[Interval]) -> float:
    """Seconds of [a, b) the car is plugged in and its charger is online."""
    start, end = max(a, session.arrive_s), min(b, session.depart_s)
    if end <= start:
        return 0.0
    return online_s(start, end, offline)
