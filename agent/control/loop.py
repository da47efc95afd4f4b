"""The fixed control cycle: every `cycle_s`, one frozen snapshot, one step, one summary.

Cycles are scheduled on a fixed grid (start + n * cycle_s), so a slow cycle does not shift
the ones after it; a cycle that ends after the next one should have begun is an overrun and
the missed slots are skipped, not run in a burst. The loop's heartbeat is what the systemd
watchdog checks: if the loop stops making progress, the watchdog stops being fed.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass

from agent.config import AgentConfig
from agent.state import SiteState, Snapshot

CYCLE_BUCKETS: tuple[float, ...] = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


@dataclass(frozen=True, slots=True)
class SiteSummary:
    """The site at a glance, for the systemd status line and the log."""

    grid_power_w: float | None
    devices_up: int
    devices_total: int

    def status_line(self, cycle_ms: float) -> str:
        grid = "unknown" if self.grid_power_w is None else f"{self.grid_power_w / 1000:.1f} kW"
        return (
            f"grid {grid}, devices up {self.devices_up}/{self.devices_total}, "
            f"cycle {cycle_ms:.1f} ms"
        )


def summarise(config: AgentConfig, snapshot: Snapshot) -> SiteSummary:
    grid = config.site.grid_meter
    return SiteSummary(
        grid_power_w=snapshot.value(grid, "power") if grid else None,
        devices_up=sum(1 for health in snapshot.health.values() if health.up),
        devices_total=len(snapshot.health),
    )


class CycleLoop:
    def __init__(
        self,
        config: AgentConfig,
        state: SiteState,
        on_cycle: Callable[[Snapshot], None] | None = None,
    ) -> None:
        self._config = config
        self._state = state
        self._on_cycle = on_cycle
        self.cycle_s = config.control.cycle_s
        self.cycles = 0
        self.overruns = 0
        self.last_duration_s = 0.0
        self.heartbeat: float | None = None  # clock time of the last completed cycle
        self.summary = SiteSummary(None, 0, 0)
        self._requests_seen: dict[str, int] = {}
        self.duration_buckets = [0] * len(CYCLE_BUCKETS)  # cumulative counts, Prometheus-style
        self.duration_sum_s = 0.0

    def progressing(self, now: float, allowed_cycles: float = 5.0) -> bool:
        """True while cycles keep completing; the watchdog is fed only then."""
        return self.heartbeat is not None and now - self.heartbeat <= allowed_cycles * self.cycle_s

    def run_cycle(self) -> None:
        started = self._state.now()
        snapshot = self._state.snapshot()
        if self._on_cycle is not None:
            self._on_cycle(snapshot)
        self.summary = summarise(self._config, snapshot)
        self._count_bus_requests(snapshot)
        finished = self._state.now()
        self.last_duration_s = finished - started
        self.duration_sum_s += self.last_duration_s
        for index, bound in enumerate(CYCLE_BUCKETS):
            if self.last_duration_s <= bound:
                self.duration_buckets[index] += 1
        self.cycles += 1
        self.heartbeat = finished

    def _count_bus_requests(self, snapshot: Snapshot) -> None:
        """Requests each bus carried since the previous cycle: the cost of our polling."""
        per_bus: dict[str, int] = {}
        for bus in self._config.buses:
            total = sum(
                snapshot.health[d.id].requests_total
                for d in self._config.devices_on(bus.name)
                if d.id in snapshot.health
            )
            per_bus[bus.name] = total - self._requests_seen.get(bus.name, total)
            self._requests_seen[bus.name] = total
        self._state.set_requests_last_cycle(per_bus)

    async def run(self) -> None:
        origin = self._state.now()
        slot = 0
        while True:
            self.run_cycle()
            now = self._state.now()
            next_slot = slot + 1
            due = origin + next_slot * self.cycle_s
            if now > due:
                self.overruns += 1
                next_slot = math.floor((now - origin) / self.cycle_s) + 1
                due = origin + next_slot * self.cycle_s
            slot = next_slot
            await asyncio.sleep(due - now)
