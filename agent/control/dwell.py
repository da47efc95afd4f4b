"""How long cars stay, learnt from the site's own departures: who is likely to leave soon.

Cars do not announce their departure. But a site's history does say something: at a taxi hub
nobody stays under a quarter of an hour and few stay over an hour, so a car that has been
plugged in for 50 minutes will probably leave before one that arrived 5 minutes ago. When the
power is short, giving more of it to the car expected to leave first (and catching up the
others once the rush is over) delivers more energy in total and leaves fewer cars short, which
is the fairness that counts: what each car gets of what it wanted.

The expected remaining stay of a car plugged in for t seconds is the mean of (d - t) over the
recent stays d longer than t. Its priority weight is how much sooner than a new arrival it is
expected to go: remaining(0) / remaining(t), within [1, MAX_WEIGHT]. Until MIN_SAMPLES stays
have been seen every car weighs 1, and a car that has stayed longer than nearly every car seen
counts as leaving within FLOOR_S.
"""

from __future__ import annotations

import bisect
from collections import deque

KEEP = 400  # the most recent stays kept (about a day at a busy hub)
MIN_SAMPLES = 20  # fewer stays than this: no opinion, every car weighs 1
MIN_LONGER = 5  # fewer recent stays longer than t than this: the car is about to leave
FLOOR_S = 300.0  # the shortest remaining stay the weights assume
MAX_WEIGHT = 2.2  # tried 2 to 4 on the taxi days: more delivers more but pushes Jain below 0.98


class DwellTimes:
    def __init__(self, keep: int = KEEP) -> None:
        self._recent: deque[float] = deque(maxlen=keep)
        self._sorted: list[float] = []
        self._suffix: list[float] = []  # _suffix[i] = sum(_sorted[i:])
        self._plugged_at: dict[str, float] = {}

    @property
    def samples(self) -> int:
        return len(self._recent)

    def stays_s(self) -> list[float]:
        """The recent stays, oldest first: what is worth keeping across a restart."""
        return list(self._recent)

    def restore(self, stays_s: list[float]) -> None:
        """Start from stays learnt before (a restart); later departures push them out."""
        for stay in stays_s[-(self._recent.maxlen or len(stays_s)) :]:
            self._record(stay)

    def update(self, device: str, plugged_in: bool, now: float) -> None:
        """Follow one connector: a car arriving starts a stay, a car leaving records it."""
        since = self._plugged_at.get(device)
        if plugged_in and since is None:
            self._plugged_at[device] = now
        elif not plugged_in and since is not None:
            del self._plugged_at[device]
            self._record(now - since)

    def weight(self, device: str, now: float) -> float:
        """The car's priority: 1 for a new arrival, up to MAX_WEIGHT for one about to leave.

        In steps of 0.1: a weight that moved every second would move every share with it, and
        each raise waits for the chargers' delay while the cut that pays for it does not.
        """
        since = self._plugged_at.get(device)
        if since is None or len(self._sorted) < MIN_SAMPLES:
            return 1.0
        fresh = self.remaining_s(0.0)
        later = self.remaining_s(now - since)
        return round(min(max(fresh / later, 1.0), MAX_WEIGHT) * 10) / 10

    def remaining_s(self, stayed_s: float) -> float:
        """The expected rest of a stay that has lasted `stayed_s`, from the recent stays."""
        first = bisect.bisect_right(self._sorted, stayed_s)
        longer = len(self._sorted) - first
        if longer < MIN_LONGER:
            return FLOOR_S
        return max(self._suffix[first] / longer - stayed_s, FLOOR_S)

    def _record(self, stay_s: float) -> None:
        if stay_s <= 0:
            return
        self._recent.append(stay_s)
        self._sorted = sorted(self._recent)
        total = 0.0
        suffix = [0.0] * (len(self._sorted) + 1)
        for i in range(len(self._sorted) - 1, -1, -1):
            total += self._sorted[i]
            suffix[i] = total
        self._suffix = suffix
