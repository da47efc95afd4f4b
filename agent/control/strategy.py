"""The one interface between a controller and whatever runs it (daemon loop or simulator).

A strategy is pure: given a frozen snapshot and the time, it returns a Plan. It may keep its own
state between cycles (rotation, recovery ramps) but does no I/O and reads no clock of its own,
so the simulator can run it at thousands of cycles per second.
"""

from __future__ import annotations

from typing import Protocol

from agent.control.fair import FairStrategy
from agent.control.plan import Plan
from agent.control.planner import Planner
from agent.control.site_model import SiteModel
from agent.control.static import StaticStrategy
from agent.state import Snapshot


class Strategy(Protocol):
    name: str

    def step(self, snapshot: Snapshot, now_s: float) -> Plan: ...


def make_strategy(name: str, site: SiteModel, planner: Planner | None = None) -> Strategy:
    """The strategy called `name` for this site; ValueError names the known ones."""
    if name == "fair":
        return FairStrategy(site, planner)
    if name == "static":
        return StaticStrategy(site)
    raise ValueError(f"unknown strategy {name!r}; known: {', '.join(STRATEGY_NAMES)}")


STRATEGY_NAMES = ("fair", "static")
