"""The `static` strategy: fixed per-connector caps that keep the site under its limits whatever
happens, because they assume every connector is busy and the site load is at its highest.

It reads nothing from the snapshot, which is the point: it is the fail-safe the real controller
falls back to when it cannot see the site, and the baseline every simulator report compares
against. DC connectors share the charging budget in kW; AC connectors share each phase's
current, and when a phase cannot give every connector its minimum current, a fixed set of
connectors (in config order) gets the minimum and the rest get 0, never something in between.
"""

from __future__ import annotations

import math
from types import MappingProxyType

from agent.control.plan import ConnectorLimit, Plan, Reason
from agent.control.site_model import ALL_PHASES, ConnectorModel, Phase, SiteModel
from agent.state import Snapshot


class StaticStrategy:
    name = "static"

    def __init__(self, site: SiteModel) -> None:
        self.site = site
        self._plan = static_plan(site)

    def step(self, snapshot: Snapshot, now_s: float) -> Plan:
        return self._plan


def charging_budget_kw(site: SiteModel) -> float:
    """Import limit minus safety margin minus the highest non-controllable load."""
    return max(site.import_limit_kw - site.safety_margin_kw - site.reserve_kw, 0.0)


def static_plan(site: SiteModel) -> Plan:
    connectors = site.connectors
    budget = charging_budget_kw(site)
    if not connectors:
        return Plan(MappingProxyType({}), budget_kw=budget)
    dc = [c for c in connectors if c.kind == "dc"]
    ac = [c for c in connectors if c.kind == "ac"]
    dc_budget = budget * len(dc) / len(connectors)
    limits = _dc_caps(dc, dc_budget) | _ac_caps(site, ac, budget - dc_budget)
    return Plan(MappingProxyType(limits), budget_kw=budget)


def _dc_caps(connectors: list[ConnectorModel], budget_kw: float) -> dict[str, ConnectorLimit]:
    """Water-fill: equal shares, and what a small connector cannot take goes to the others."""
    caps: dict[str, float] = {}
    left, open_ = budget_kw, sorted(connectors, key=lambda c: c.max_kw)
    while open_:
        share = left / len(open_)
        smallest = open_[0]
        if smallest.max_kw <= share:
            caps[smallest.device] = smallest.max_kw
            left -= smallest.max_kw
            open_.pop(0)
            continue
        for connector in open_:
            caps[connector.device] = share
        break
    # Rounded down to watts: rounding up could put the sum a hair over the budget.
    return {
        d: ConnectorLimit(math.floor(kw * 1000) / 1000, "kW", Reason.STATIC)
        for d, kw in caps.items()
    }


def _ac_caps(
    site: SiteModel, connectors: list[ConnectorModel], budget_kw: float
) -> dict[str, ConnectorLimit]:
    if not connectors:
        return {}
    phase_budget = _phase_budgets_a(site)
    level = _highest_level(site, connectors, phase_budget, budget_kw)
    if all(level >= (c.min_a or 0.0) for c in connectors):
        return {
            c.device: ConnectorLimit(_amps(c, level, site), "A", Reason.STATIC) for c in connectors
        }
    # Not everyone can have the minimum: a fixed set gets it, in config order.
    chosen: list[ConnectorModel] = []
    for connector in connectors:
        trial = [*chosen, connector]
        if _fits(site, trial, {c.device: c.min_a or 0.0 for c in trial}, phase_budget, budget_kw):
            chosen.append(connector)
    level = _highest_level(site, chosen, phase_budget, budget_kw) if chosen else 0.0
    limits = {c.device: ConnectorLimit(0.0, "A", Reason.STATIC) for c in connectors}
    for connector in chosen:
        amps = max(_amps(connector, level, site), connector.min_a or 0.0)
        limits[connector.device] = ConnectorLimit(amps, "A", Reason.STATIC)
    return limits


def _phase_budgets_a(site: SiteModel) -> dict[Phase, float]:
    """Each phase's current limit minus the margin and reserve, spread over three phases."""
    if site.phase_limit_a is None:
        return {p: float("inf") for p in ALL_PHASES}
    held_back_a = (site.safety_margin_kw + site.reserve_kw) * 1000 / (3 * site.voltage_v)
    return {p: max(site.phase_limit_a - held_back_a, 0.0) for p in ALL_PHASES}


def _amps(connector: ConnectorModel, level: float, site: SiteModel) -> float:
    """The level, capped by the connector's max current and its max power."""
    by_power = connector.max_kw * 1000 / (site.voltage_v * len(connector.phases))
    # Rounded down to 0.01 A: rounding up could push a phase just over its budget.
    return math.floor(min(level, connector.max_a or level, by_power) * 100) / 100


def _fits(
    site: SiteModel,
    connectors: list[ConnectorModel],
    amps: dict[str, float],
    phase_budget: dict[Phase, float],
    budget_kw: float,
) -> bool:
    per_phase = dict.fromkeys(ALL_PHASES, 0.0)
    total_kw = 0.0
    for connector in connectors:
        for phase in connector.phases:
            per_phase[phase] += amps[connector.device]
        total_kw += connector.kw_from_amps(amps[connector.device], site.voltage_v)
    within_phases = all(per_phase[p] <= phase_budget[p] + 1e-9 for p in ALL_PHASES)
    return within_phases and total_kw <= budget_kw + 1e-9


def _highest_level(
    site: SiteModel,
    connectors: list[ConnectorModel],
    phase_budget: dict[Phase, float],
    budget_kw: float,
) -> float:
    """The highest common current every connector can be offered at once (bisection)."""
    top = max((c.max_a or 0.0) for c in connectors)
    low, high = 0.0, top
    for _ in range(40):
        middle = (low + high) / 2
        amps = {c.device: _amps(c, middle, site) for c in connectors}
        if _fits(site, connectors, amps, phase_budget, budget_kw):
            low = middle
        else:
            high = middle
    return low
