"""The scenario's changes at known times: cars arriving and leaving, chargers going offline and
back, the grid limit changing.

Built once, sorted, and read with a cursor, so a step costs one comparison when nothing happens.
A change takes effect from the first step that starts at or after its time (scenario times are
whole seconds and the runner steps by 1 s, so that is exactly its time).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from hil.scenario import ChargerOfflineEvent, GridLimitEvent, Scenario, SessionSpec


@dataclass(frozen=True, slots=True)
class Depart:
    """The car leaves: "A car is plugged in from `arrive_s` to `depart_s` and leaves at
    `depart_s` whatever it got" (FORMAT.md)."""

    session: SessionSpec


@dataclass(frozen=True, slots=True)
class Arrive:
    session: SessionSpec


@dataclass(frozen=True, slots=True)
class ChargerOff:
    """`charger_offline`: "it stops answering and delivers nothing" for `duration_s`."""

    charger: str


@dataclass(frozen=True, slots=True)
class ChargerOn:
    charger: str


@dataclass(frozen=True, slots=True)
class GridLimit:
    """`grid_limit`: "the import limit from then on"."""

    kw: float


Change = Depart | Arrive | ChargerOff | ChargerOn | GridLimit

# At the same instant: a car leaves before the next one plugs into the same connector; a charger
# comes back before another outage of it starts; grid limits keep the scenario's order.
_RANK: dict[type[Change], int] = {Depart: 0, ChargerOn: 1, Arrive: 2, ChargerOff: 3, GridLimit: 4}


class Timeline:
    __slots__ = ("_changes", "_next")

    def __init__(self, scenario: Scenario) -> None:
        timed: list[tuple[float, Change]] = []
        for session in scenario.sessions:
            if session.depart_s <= session.arrive_s:
                continue  # never plugged in (the loader refuses such a session anyway)
            timed.append((session.arrive_s, Arrive(session)))
            timed.append((session.depart_s, Depart(session)))
        for event in scenario.events:
            if isinstance(event, ChargerOfflineEvent):
                timed.append((event.t_s, ChargerOff(event.charger)))
                timed.append((event.t_s + event.duration_s, ChargerOn(event.charger)))
            elif isinstance(event, GridLimitEvent):
                timed.append((event.t_s, GridLimit(event.kw)))
        timed.sort(key=lambda item: (item[0], _RANK[type(item[1])]))  # stable: keeps file order
        self._changes = timed
        self._next = 0

    def due(self, now_s: float) -> Iterator[Change]:
        """The changes with a time at or before now_s not yet handed out, in order."""
        changes = self._changes
        while self._next < len(changes) and changes[self._next][0] <= now_s:
            self._next += 1
            yield changes[self._next - 1][1]
