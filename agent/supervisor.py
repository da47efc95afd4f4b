"""Runs the agent's parts side by side and keeps them running.

A part that raises is logged and restarted after a back-off that doubles up to a cap, so one
failing part (a broken uplink, a bus adapter unplugged) never takes the daemon down with it.
Stopping cancels every part; parts clean up in `finally` blocks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    run: Callable[[], Awaitable[None]]


class Supervisor:
    def __init__(
        self,
        parts: list[Part],
        clock: Callable[[], float],
        first_backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        healthy_after_s: float = 60.0,
    ) -> None:
        self._parts = parts
        self._clock = clock
        self._first_backoff_s = first_backoff_s
        self._max_backoff_s = max_backoff_s
        self._healthy_after_s = healthy_after_s
        self.restarts: dict[str, int] = {part.name: 0 for part in parts}

    async def run_until(self, stop: asyncio.Event) -> None:
        """Run every part until `stop` is set, then cancel them all and wait for them."""
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self._keep_running(p), name=p.name) for p in self._parts]
            await stop.wait()
            for task in tasks:
                task.cancel()

    async def _keep_running(self, part: Part) -> None:
        backoff = self._first_backoff_s
        while True:
            started = self._clock()
            try:
                await part.run()
            except asyncio.CancelledError:
                raise
            except Exception:
                if self._clock() - started >= self._healthy_after_s:
                    backoff = self._first_backoff_s  # it ran well for a while: start over
                log.exception("part %s failed; restarting in %.1f s", part.name, backoff)
            else:
                log.info("part %s finished", part.name)
                return
            await asyncio.sleep(backoff)
            self.restarts[part.name] += 1
            backoff = min(backoff * 2, self._max_backoff_s)
