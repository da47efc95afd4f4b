"""Fail-safe: an unknown grid means the safe budget at once, and a gradual way back.

The moment the grid meter's reading is older than its limit, the charging budget drops to the
safe value (the static caps unless `control.failsafe.safe_import_kw` says otherwise). When
readings return, the budget may grow from there by `recovery_kw_per_s` only, so a meter that
flickers cannot swing 180 chargers up and down. Entries and exits are logged and counted.

Start-up is the same state without the count: until the grid has been read once the budget is
the safe one, and it grows from there. An entry is a meter lost after it was known, which is
what an operator's alarm on `edge_agent_failsafe_entries` should mean.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class FailSafe:
    def __init__(self, safe_kw: float, recovery_kw_per_s: float) -> None:
        self.safe_kw = safe_kw
        self.recovery_kw_per_s = recovery_kw_per_s
        self.active = True  # until the grid has been read once
        self.entries = 0
        self.exits = 0
        self.entered_at: list[float] = []  # when each fail-safe began, for reports
        self._ceiling: float | None = safe_kw  # the recovering cap, None once fully recovered
        self._last: float | None = None
        self._grid_seen = False

    def cap(self, now: float, grid_known: bool, wanted_kw: float) -> float:
        """The charging budget allowed now, given the budget the measurements would give."""
        elapsed = 0.0 if self._last is None else max(now - self._last, 0.0)
        self._last = now
        if not grid_known:
            if not self.active and self._grid_seen:
                self.active = True
                self.entries += 1
                self.entered_at.append(now)
                log.warning("grid meter unknown: fail-safe, budget %.1f kW", self.safe_kw)
            self._ceiling = self.safe_kw
            return self.safe_kw
        if self.active:
            self.active = False
            if self._grid_seen:
                self.exits += 1
                log.info("grid meter back: leaving fail-safe, recovering at %g kW/s",
                         self.recovery_kw_per_s)  # fmt: skip
        self._grid_seen = True
        if self._ceiling is None:
            return wanted_kw
        self._ceiling += self.recovery_kw_per_s * elapsed
        if self._ceiling >= wanted_kw:
            self._ceiling = None
            return wanted_kw
        return max(min(wanted_kw, self._ceiling), min(wanted_kw, self.safe_kw))
