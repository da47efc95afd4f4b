"""Who pauses when not every AC car can have its minimum current: take turns, without flapping.

An AC car offered less than its minimum draws nothing, so when the phases or the budget cannot
give every waiting car its minimum, some must pause. Pausing the same ones forever is unfair;
switching every cycle wears contactors and confuses cars. So a car that starts runs at least
`min_on_s` and a car that pauses waits at least `min_off_s` (unless there is room for it), and
then the turns go round: the car that has run longest pauses first, the one that has waited
longest resumes first. Pure: the caller passes the time in, so tests can drive an hour in a blink.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(slots=True)
class _Car:
    running: bool
    since: float  # when it last started or paused (arriving counts as pausing)
    on_s: float = 0.0  # time it ran in its finished turns
    ever_ran: bool = False

    def charged_s(self, now: float) -> float:
        return self.on_s + (now - self.since if self.running else 0.0)


class Rotation:
    def __init__(self, min_on_s: float = 300.0, min_off_s: float = 120.0) -> None:
        self.min_on_s = min_on_s
        self.min_off_s = min_off_s
        self._cars: dict[str, _Car] = {}

    def choose(self, now: float, waiting: Sequence[str], capacity: int) -> frozenset[str]:
        """The paused ones among `waiting` (priority order), when `capacity` can run at once.

        Cars not in `waiting` are forgotten (they left); a new car waits for a turn, but may
        take one at once from a car that has run its `min_on_s`.
        """
        cars = self._cars
        present = set(waiting)
        for device in [d for d in cars if d not in present]:
            del cars[device]
        for device in waiting:
            if device not in cars:
                cars[device] = _Car(running=False, since=now)
        order = {device: i for i, device in enumerate(waiting)}
        capacity = max(0, min(capacity, len(waiting)))
        running = [d for d in waiting if cars[d].running]
        paused = [d for d in waiting if not cars[d].running]

        def pause_first(device: str) -> tuple[bool, float, float, int]:
            car = cars[device]
            on = now - car.since
            return (on < self.min_on_s, -on, -car.charged_s(now), -order[device])

        def resume_first(device: str) -> tuple[bool, float, float, int]:
            car = cars[device]
            off = now - car.since
            return (not self._may_resume(car, now), -off, car.charged_s(now), order[device])

        to_pause = sorted(running, key=pause_first)
        to_resume = sorted(paused, key=resume_first)
        if len(running) > capacity:  # room shrank: pause, even a car in its minimum turn
            for device in to_pause[: len(running) - capacity]:
                self._pause(cars[device], now)
        elif len(running) < capacity:  # room: resume, even a car in its minimum pause
            for device in to_resume[: capacity - len(running)]:
                self._resume(cars[device], now)
        else:  # full: swap cars whose turn is over with cars whose pause is over
            for out, in_ in zip(to_pause, to_resume, strict=False):
                if now - cars[out].since < self.min_on_s or not self._may_resume(cars[in_], now):
                    break
                self._pause(cars[out], now)
                self._resume(cars[in_], now)
        return frozenset(d for d in waiting if not cars[d].running)

    def _may_resume(self, car: _Car, now: float) -> bool:
        """A car that has never run has not switched: it need not sit out a pause."""
        return not car.ever_ran or now - car.since >= self.min_off_s

    @staticmethod
    def _pause(car: _Car, now: float) -> None:
        car.on_s += now - car.since
        car.running = False
        car.since = now

    @staticmethod
    def _resume(car: _Car, now: float) -> None:
        car.running = True
        car.ever_ran = True
        car.since = now
