"""How long cars stay, learnt from the site's own departures: who is likely to leave soon.

Cars do not announce their departure. But a site's history does say something: at a taxi hub
nobody stays under a quarter of an hour and few stay over an hour, so a car that has been
plugged in for 50 minutes will probably leave before one that arrived 5 minutes ago. When the
power is short, giving more of it to the car expected to leave first (and catching up the
others once the rush is over) delivers more energy in total and leaves fewer cars short, which
is the fairness that counts: what each car gets of what it wanted.

The expected remaining stay of a car plugged in for t seconds is the mean of (d - t) over the
recent stays d longer than t. At a site whose stays are of several kinds (`mixed`: a car
park's visitors, commuters and residents) those that began near the same time of day speak for
the car once `MIN_SIMILAR` of them have been seen (`stays.py`): a visitor at 14:00 leaves long
before the commuter who came at 08:30, though both have been there an hour less than most.
Its priority weight is how much sooner than a new arrival (of any time) it is expected to go:
remaining(0) / remaining(t), within [1, MAX_WEIGHT] (MAX_MIXED_WEIGHT at a mixed site, whose
stays are hours apart). Until MIN_SAMPLES stays have been seen every car weighs 1, and a car
that has stayed longer than nearly every car seen counts as leaving within FLOOR_S.
"""

from __future__ import annotations

from collections import deque

from agent.control.stays import Similar

KEEP = 400  # the most recent stays kept (about a day at a busy hub)
MIN_SAMPLES = 20  # fewer stays than this: no opinion, every car weighs 1
MIN_SIMILAR = 5  # stays from the same time of day needed before they speak for a car
MIXED_SPREAD = 4.0  # stays this far apart (90th / 10th percentile): several kinds of car
MAX_MIXED_WEIGHT = 8.0  # ... whose time of day tells them apart, so weights may spread more
MIN_LONGER = 5  # fewer recent stays longer than t than this: the car is about to leave
FLOOR_S = 300.0  # the shortest remaining stay the weights assume
MAX_WEIGHT = 2.2  # tried 2 to 4 on the taxi days: more delivers more but pushes Jain below 0.98


class DwellTimes:
    def __init__(self, keep: int = KEEP) -> None:
        self._recent: deque[float] = deque(maxlen=keep)
        self._all = Similar.of_lengths(())  # the recent stays, sorted, with their suffix sums
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

    def weight(self, device: str, now: float, similar: Similar | None = None) -> float:
        """The car's priority: 1 for a new arrival, up to MAX_WEIGHT for one about to leave.

        `similar`: the stays that began at the time of day this car came, if known.

        In steps of 0.1: a weight that moved every second would move every share with it, and
        each raise waits for the chargers' delay while the cut that pays for it does not.
        """
        since = self._plugged_at.get(device)
        if since is None or len(self._all) < MIN_SAMPLES:
            return 1.0
        fresh = self.remaining_s(0.0)
        stayed = now - since
        if similar is not None and len(similar) >= MIN_SIMILAR and self.mixed:
            later = _remaining(*similar.longer_than(stayed), stayed)
            most = MAX_MIXED_WEIGHT
        else:
            later = self.remaining_s(stayed)
            most = MAX_WEIGHT
        return round(min(max(fresh / later, 1.0), most) * 10) / 10

    @property
    def mixed(self) -> bool:
        """Whether the site's stays are of several kinds (a car park's visitors, commuters and
        residents; not a taxi hub's 30-60 minutes), so the time of day is worth asking."""
        stays = self._all.durations
        if len(stays) < MIN_SAMPLES:
            return False
        low, high = stays[len(stays) // 10], stays[len(stays) * 9 // 10]
        return high >= MIXED_SPREAD * low

    def remaining_s(self, stayed_s: float) -> float:
        """The expected rest of a stay that has lasted `stayed_s`, from the recent stays."""
        return _remaining(*self._all.longer_than(stayed_s), stayed_s)

    def _record(self, stay_s: float) -> None:
        if stay_s <= 0:
            return
        self._recent.append(stay_s)
        self._all = Similar.of_lengths(self._recent)


def _remaining(longer: int, longer_total_s: float, stayed_s: float) -> float:
    """The mean rest of the `longer` stays (together `longer_total_s`) past `stayed_s`."""
    if longer < MIN_LONGER:
        return FLOOR_S
    return max(longer_total_s / longer - stayed_s, FLOOR_S)
