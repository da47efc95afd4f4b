"""The safety margin under the import limit, sized by what the site's own load actually does.

The margin is there for the load the agent does not control: when it rises, the chargers need
their response delay to make room, and the grid carries the rise meanwhile. A fixed margin is
sized for the worst site; on a calm one it is capacity nobody can use. With a floor configured,
the margin is `FACTOR` times the largest rise of the non-controllable load seen within the
chargers' delay (plus a cycle) over the last day, between the floor and the configured margin.
Until the load has been watched for `LEARN_S`, and without a floor, it is the configured margin.
A rise larger than the margin in force widens it at once, from the cycle that sees it.
"""

from __future__ import annotations

from collections import deque

FACTOR = 2.0
LEARN_S = 900.0
MEMORY_S = 86_400.0
BUCKET_S = 60.0


class AdaptiveMargin:
    def __init__(self, most_kw: float, floor_kw: float | None, window_s: float) -> None:
        self.most_kw = most_kw
        self.floor_kw = None if floor_kw is None else min(floor_kw, most_kw)
        self.window_s = window_s
        self._lows: deque[tuple[float, float]] = deque()  # (t, load), loads increasing
        self._buckets: deque[tuple[int, float]] = deque()  # (minute, largest rise in it)
        self._largest = 0.0  # over the buckets
        self._since: float | None = None
        self.margin_kw = most_kw

    def update(self, now: float, load_kw: float) -> float:
        """Record this cycle's non-controllable load; returns the margin for this cycle."""
        if self.floor_kw is None:
            return self.most_kw
        if self._since is None:
            self._since = now
        rise = self._rise(now, load_kw)
        self._remember(now, rise)
        if now - self._since < LEARN_S:
            self.margin_kw = self.most_kw
        else:
            self.margin_kw = min(max(FACTOR * self._largest, self.floor_kw), self.most_kw)
        return self.margin_kw

    def _rise(self, now: float, load_kw: float) -> float:
        """How far the load is above its lowest within the window (a monotonic deque)."""
        lows = self._lows
        while lows and lows[-1][1] >= load_kw:
            lows.pop()
        lows.append((now, load_kw))
        while lows[0][0] < now - self.window_s:
            lows.popleft()
        return load_kw - lows[0][1]

    def _remember(self, now: float, rise: float) -> None:
        minute = int(now // BUCKET_S)
        buckets = self._buckets
        if buckets and buckets[-1][0] == minute:
            if rise > buckets[-1][1]:
                buckets[-1] = (minute, rise)
                self._largest = max(self._largest, rise)
            return
        buckets.append((minute, rise))
        oldest = minute - int(MEMORY_S // BUCKET_S)
        if buckets[0][0] <= oldest:
            while buckets[0][0] <= oldest:
                buckets.popleft()
            self._largest = max(r for _, r in buckets)
        else:
            self._largest = max(self._largest, rise)
