"""The site's own load as the budget assumes it, and the safety margin kept above it.

`RecentHigh` turns the derived load (grid - cars + battery, from readings of different ages)
into one the budget can trust; `AdaptiveMargin` sizes the margin by what that load does.

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

from agent.control.sliding import SlidingMax

FACTOR = 2.0
LEARN_S = 900.0
MEMORY_S = 86_400.0
BUCKET_S = 60.0


class AdaptiveMargin:
    def __init__(self, most_kw: float, floor_kw: float | None, window_s: float) -> None:
        self.most_kw = most_kw
        self.floor_kw = None if floor_kw is None else min(floor_kw, most_kw)
        self._negated_lows = SlidingMax(window_s)  # the lowest load is -max(-load)
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
        """How far the load is above its lowest within the window."""
        return load_kw + self._negated_lows.update(now, -load_kw)

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


class RecentHigh:
    """The highest value seen within the last `window_s`: the site load the budget assumes.

    The site's own load is derived (grid - cars + battery) from readings that are not taken
    at the same moment: a meter averages its last second and answers later than the chargers.
    While the cars ramp, that skew makes the derived load dip by hundreds of kW for a cycle;
    believing the dip hands out power the site does not have, and with the chargers' delay
    the import swings over the limit and back. A rise is believed at once, a fall only once
    it has lasted the chargers' delay. The same skew makes it jump up for a cycle when the
    cars' draw falls; a rise counts from its second cycle (the safety margin is there for the
    load's rises within the chargers' delay), so a one-cycle jump does not cut every car.
    """

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._highs = SlidingMax(window_s)
        self._previous: tuple[float, float] | None = None  # (t, measured) of the last cycle

    def update(self, now: float, measured: float) -> float:
        previous, self._previous = self._previous, (now, measured)
        if previous is None or previous[0] < now - self.window_s:  # nothing recent to confirm
            value = measured
        else:
            value = min(measured, previous[1])
        return self._highs.update(now, value)
