"""What the controller has learnt, kept across restarts: the site's stays and load history.

The stays behind the dwell weights take a busy day to learn, and the planner's forecast wants
a week of load and PV (same weekday, same time); a daemon restart (an update, a reboot) must
not throw them away. They live in one JSON file in the daemon's state directory, written
atomically every `SAVE_S` when they changed (in a worker thread: the cycle never waits for the
disk; about 30 kB, so an SD card sees a few MB a day) and read once at start. A missing file is
a first start. An unreadable or malformed one is logged and ignored: nothing learnt is worth
refusing to start for.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeGuard

from agent.control.dwell import DwellTimes
from agent.control.planner import Planner
from agent.control.stays import DAY_S, Stay, StayLog

log = logging.getLogger(__name__)

VERSION = 1
SAVE_S = 900.0
LONGEST_STAY_S = 7 * 86_400.0  # a "stay" longer than a week is a car left behind, not data

Bin = tuple[int, float, float, int]  # (15-minute bin index, load sum, PV sum, samples)


class LearntStateError(Exception):
    """The state file exists but cannot be used."""


@dataclass(frozen=True, slots=True)
class LearntState:
    stays_s: list[float] = field(default_factory=list)
    load_bins: list[Bin] = field(default_factory=list)
    arrivals: list[Stay] = field(default_factory=list)  # stays with their time of day, energy


def load_state(path: Path) -> LearntState:
    """What `path` holds; an empty state if there is no file yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return LearntState()
    except OSError as exc:
        raise LearntStateError(f"{path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LearntStateError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise LearntStateError(f"{path}: not a version {VERSION} control state")
    stays = data.get("stays_s", [])
    if not isinstance(stays, list) or not all(_is_stay(s) for s in stays):
        raise LearntStateError(f"{path}: stays_s must be a list of seconds (0 < s <= a week)")
    bins = data.get("load_bins", [])
    if not isinstance(bins, list) or not all(_is_bin(b) for b in bins):
        raise LearntStateError(
            f"{path}: load_bins must be a list of [bin, load sum, PV sum, samples]"
        )
    arrivals = data.get("arrivals", [])  # absent in files written before deferral
    if not isinstance(arrivals, list) or not all(_is_arrival(a) for a in arrivals):
        raise LearntStateError(
            f"{path}: arrivals must be a list of [time of day s, stay s, kWh, weekend 0/1]"
        )
    return LearntState(
        [float(s) for s in stays],
        [(int(i), float(ld), float(pv), int(n)) for i, ld, pv, n in bins],
        [_arrival(a) for a in arrivals],
    )


def _arrival(value: list[float]) -> Stay:
    """A stay from the file; without its kind of day (files before weekends were told apart)
    it counts for both."""
    weekend = None if len(value) == 3 else bool(value[3])
    return Stay(float(value[0]), float(value[1]), float(value[2]), weekend)


def save_state(path: Path, state: LearntState) -> None:
    """Write atomically: a crash mid-write leaves the old file, never half a new one."""
    data = {
        "version": VERSION,
        "stays_s": state.stays_s,
        "load_bins": state.load_bins,
        "arrivals": [_arrival_row(a) for a in state.arrivals],
    }
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data), encoding="utf-8")
    os.replace(temporary, path)


def _arrival_row(stay: Stay) -> list[float]:
    row = [round(stay.arrived_s, 1), round(stay.stay_s, 1), round(stay.energy_kwh, 3)]
    return row if stay.weekend is None else [*row, int(stay.weekend)]


def _number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_stay(value: object) -> bool:
    return _number(value) and 0 < value <= LONGEST_STAY_S


def _is_arrival(value: object) -> bool:
    if not isinstance(value, list) or len(value) not in (3, 4):
        return False
    if not all(_number(v) for v in value):
        return False
    day_s, stay_s, kwh = value[:3]
    kind_ok = len(value) == 3 or value[3] in (0, 1)
    return 0 <= day_s < DAY_S and _is_stay(stay_s) and kwh >= 0 and kind_ok


def _is_bin(value: object) -> bool:
    if not isinstance(value, list) or len(value) != 4 or not all(_number(v) for v in value):
        return False
    index, _, _, count = value
    return isinstance(index, int) and isinstance(count, int) and count > 0


class StateKeeper:
    """Restores what a strategy learns at start and saves it as it changes."""

    def __init__(
        self,
        path: Path,
        dwell: DwellTimes | None,
        planner: Planner | None,
        stays: StayLog | None = None,
    ) -> None:
        self.path = path
        self.dwell = dwell
        self.planner = planner
        self.stays = stays
        self.saves = 0
        self._saved: LearntState | None = None
        self._due_at: float | None = None
        self._saving: asyncio.Future[None] | None = None

    def restore(self) -> None:
        try:
            state = load_state(self.path)
        except LearntStateError as exc:
            log.warning("learnt state not restored, learning afresh: %s", exc)
            return
        if self.dwell is not None:
            self.dwell.restore(state.stays_s)
        if self.planner is not None:
            self.planner.restore_history(state.load_bins)
        if self.stays is not None:
            self.stays.restore(state.arrivals)
        self._saved = state  # what the disk holds
        if state.stays_s or state.load_bins or state.arrivals:
            log.info(
                "restored %d learnt stays, %d stays by time of day and %d load bins from %s",
                len(state.stays_s),
                len(state.arrivals),
                len(state.load_bins),
                self.path,
            )

    def current(self) -> LearntState:
        return LearntState(
            self.dwell.stays_s() if self.dwell is not None else [],
            self.planner.history_bins() if self.planner is not None else [],
            self.stays.stays() if self.stays is not None else [],
        )

    def tick(self, now: float) -> None:
        """Called every cycle; every SAVE_S, saves in a worker thread if anything changed."""
        if self._due_at is None:
            self._due_at = now + SAVE_S
        if now < self._due_at or (self._saving is not None and not self._saving.done()):
            return
        self._due_at = now + SAVE_S
        state = self.current()
        if state == self._saved:
            return
        self._saved = state
        loop = asyncio.get_running_loop()
        self._saving = loop.run_in_executor(None, self._save, state)

    def _save(self, state: LearntState) -> None:
        try:
            save_state(self.path, state)
            self.saves += 1
        except OSError as exc:  # a full or read-only disk must not stop the controller
            log.warning("could not save the learnt state to %s: %s", self.path, exc)


def state_keeper(strategy: object, path: Path | None, restore: bool = True) -> StateKeeper | None:
    """What a strategy learns (stays, the planner's history), restored now and kept from here."""
    dwell = getattr(strategy, "dwell", None)
    planner = getattr(strategy, "planner", None)
    stays = getattr(strategy, "stays", None)
    dwell = dwell if isinstance(dwell, DwellTimes) else None
    planner = planner if isinstance(planner, Planner) else None
    stays = stays if isinstance(stays, StayLog) else None
    if path is None or (dwell is None and planner is None and stays is None):
        return None
    keeper = StateKeeper(path, dwell, planner, stays)
    if restore:
        keeper.restore()
    return keeper
