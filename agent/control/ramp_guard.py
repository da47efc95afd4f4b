"""Raises wait for cuts: the budget counts what a connector may still draw under its old limit.

A charger follows a new limit only after its delay. If one connector is cut and another raised
in the same cycle, for a few seconds both may draw: the cut one at its old limit, the raised one
at its new. So each connector's exposure is the highest of the limit in force and every limit
sent within the last `delay_s`, and a raise is granted only from the budget the exposures leave.
"""

from __future__ import annotations

from collections import deque


class RampGuard:
    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self._pending: dict[str, deque[tuple[float, float]]] = {}  # sent, not yet surely in force
        self._in_force: dict[str, float] = {}
        self._last_sent: dict[str, float] = {}

    def exposure(self, device: str, now: float) -> float:
        """The most this connector may draw in the next `delay_s` under what it was sent."""
        in_force = self._in_force.get(device, 0.0)
        pending = self._pending.get(device)
        if not pending:
            return in_force
        cutoff = now - self.delay_s
        while pending and pending[0][0] <= cutoff:
            in_force = pending.popleft()[1]
        self._in_force[device] = in_force
        return max(in_force, *(kw for _, kw in pending)) if pending else in_force

    def send(self, device: str, kw: float, now: float) -> None:
        if self._last_sent.get(device) == kw:
            return  # a renewal changes nothing the charger may draw
        self._last_sent[device] = kw
        self._pending.setdefault(device, deque()).append((now, kw))
