"""The highest value within a sliding time window, in O(1) amortised per sample.

The controller keeps several "most within the last few seconds" figures (the battery's promise
to the cars, the site load the budget assumes, the low the margin measures rises from); each
is this one monotonic deque.
"""

from __future__ import annotations

from collections import deque


class SlidingMax:
    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._highs: deque[tuple[float, float]] = deque()  # (t, value), values decreasing

    def update(self, now: float, value: float) -> float:
        """Add a sample; returns the highest of those from `now - window_s` on."""
        highs = self._highs
        while highs and highs[-1][1] <= value:
            highs.pop()
        highs.append((now, value))
        while highs[0][0] < now - self.window_s:
            highs.popleft()
        return highs[0][1]
