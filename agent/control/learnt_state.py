"""What the controller has learnt, kept across restarts: the site's recent stays.

The stays behind the dwell weights take a busy day to learn; a daemon restart (an update, a
reboot) must not throw them away. They live in one JSON file in the daemon's state directory,
written atomically every `SAVE_S` when they changed (in a worker thread: the cycle never waits
for the disk) and read once at start. A missing file is a first start. An unreadable or
malformed one is logged and ignored: nothing learnt is worth refusing to start for.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
from pathlib import Path

from agent.control.dwell import DwellTimes

log = logging.getLogger(__name__)

VERSION = 1
SAVE_S = 300.0
LONGEST_STAY_S = 7 * 86_400.0  # a "stay" longer than a week is a car left behind, not data


class LearntStateError(Exception):
    """The state file exists but cannot be used."""


def load_stays(path: Path) -> list[float]:
    """The stays saved in `path`; [] if there is no file yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise LearntStateError(f"{path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LearntStateError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise LearntStateError(f"{path}: not a version {VERSION} control state")
    stays = data.get("stays_s")
    if not isinstance(stays, list) or not all(_is_stay(s) for s in stays):
        raise LearntStateError(f"{path}: stays_s must be a list of seconds (0 < s <= a week)")
    return [float(s) for s in stays]


def save_stays(path: Path, stays_s: list[float]) -> None:
    """Write atomically: a crash mid-write leaves the old file, never half a new one."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps({"version": VERSION, "stays_s": stays_s}), encoding="utf-8")
    os.replace(temporary, path)


def _is_stay(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 < value <= LONGEST_STAY_S
    )


class StaysKeeper:
    """Restores a strategy's learnt stays at start and saves them as they change."""

    def __init__(self, path: Path, dwell: DwellTimes) -> None:
        self.path = path
        self.dwell = dwell
        self.saves = 0
        self._saved: list[float] | None = None
        self._due_at: float | None = None
        self._saving: asyncio.Future[None] | None = None

    def restore(self) -> None:
        try:
            stays = load_stays(self.path)
        except LearntStateError as exc:
            log.warning("learnt stays not restored, learning afresh: %s", exc)
            return
        self.dwell.restore(stays)
        self._saved = stays  # what the disk holds
        if stays:
            log.info("restored %d learnt stays from %s", len(stays), self.path)

    def tick(self, now: float) -> None:
        """Called every cycle; every SAVE_S, saves in a worker thread if the stays changed."""
        if self._due_at is None:
            self._due_at = now + SAVE_S
        if now < self._due_at or (self._saving is not None and not self._saving.done()):
            return
        self._due_at = now + SAVE_S
        stays = self.dwell.stays_s()
        if stays == self._saved:
            return
        self._saved = stays
        loop = asyncio.get_running_loop()
        self._saving = loop.run_in_executor(None, self._save, stays)

    def _save(self, stays: list[float]) -> None:
        try:
            save_stays(self.path, stays)
            self.saves += 1
        except OSError as exc:  # a full or read-only disk must not stop the controller
            log.warning("could not save learnt stays to %s: %s", self.path, exc)
