"""A one-line progress bar for long simulated runs, so a day in fast mode is not a silent wait.

On a terminal it redraws at most ~5 times a wall second (an `update` per simulated second costs a
clock read); into a file or a pipe it writes only the closing summary line, so logs stay clean.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

REDRAW_S = 0.2
BAR_WIDTH = 24


def clock_text(seconds: float) -> str:
    """Whole seconds as H:MM:SS (hours not wrapped)."""
    whole = max(0, int(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class Progress:
    """`update(done_s)` with the simulated seconds done so far; `close()` once at the end.

    `start_of_day_s` is the local time of day at t = 0 in seconds, for the time-of-day display.
    """

    def __init__(
        self,
        total_s: float,
        stream: TextIO = sys.stderr,
        start_of_day_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total_s = total_s
        self.stream = stream
        self.start_of_day_s = start_of_day_s
        self._clock = clock
        self._started = clock()
        self._next_draw = self._started
        self._done_s = 0.0
        self._width = 0  # of the line on screen, to blank a shorter one
        self._closed = False
        isatty = getattr(stream, "isatty", None)
        self._tty = bool(isatty()) if callable(isatty) else False

    def update(self, done_s: float) -> None:
        self._done_s = done_s
        if not self._tty:
            return
        now = self._clock()
        if now < self._next_draw:
            return
        self._next_draw = now + REDRAW_S
        self._draw(self.line(now))

    def line(self, now: float) -> str:
        """`[#####.....]  42.0 %  10:05:12  5230 s/s  ETA 0:00:11`."""
        share = min(1.0, self._done_s / self.total_s) if self.total_s > 0 else 1.0
        filled = int(share * BAR_WIDTH)
        elapsed = now - self._started
        rate = self._done_s / elapsed if elapsed > 0 else 0.0
        eta = clock_text((self.total_s - self._done_s) / rate) if rate > 0 else "?"
        time_of_day = clock_text((self.start_of_day_s + self._done_s) % 86400)
        return (
            f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share * 100:5.1f} %  "
            f"{time_of_day:>8}  {rate:,.0f} s/s  ETA {eta}"
        )

    def summary(self, now: float) -> str:
        elapsed = now - self._started
        rate = f"{self._done_s / elapsed:,.0f}" if elapsed > 0 else "?"
        return (
            f"simulated {clock_text(self._done_s)} in {elapsed:.1f} s wall ({rate} simulated s "
            "per wall s)"
        )

    def _draw(self, text: str) -> None:
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)

    def close(self) -> None:
        """Replace the bar with the summary line (the only output when not on a terminal)."""
        if self._closed:
            return
        self._closed = True
        text = self.summary(self._clock())
        if self._tty:
            self._draw(text)
            self.stream.write("\n")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
