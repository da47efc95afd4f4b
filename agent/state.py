"""SiteState: the one place where the latest readings live, with their age.

Drivers write into it; the control loop, the Prometheus collector and (later) the MQTT
publisher read immutable snapshots of it. Ages are computed when a snapshot is taken, and a
value older than its limit is reported as stale, never as a silent zero. The Prometheus server
reads from its own thread, so every access takes the lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType

from agent.quantities import QUANTITIES

Clock = Callable[[], float]

POLL_DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip


class Quality(StrEnum):
    GOOD = "good"
    STALE = "stale"  # too old to act on
    BAD = "bad"  # the last read of it failed


@dataclass(frozen=True, slots=True)
class Reading:
    """One decoded value as the driver saw it."""

    device: str
    quantity: str
    value: float
    monotonic: float  # when it was read, for ages
    timestamp: datetime  # the same moment in UTC, for the outside world

    @property
    def unit(self) -> str:
        return QUANTITIES[self.quantity].unit


@dataclass(frozen=True, slots=True)
class SnapshotValue:
    reading: Reading
    age_s: float
    quality: Quality


@dataclass(slots=True)
class DeviceHealth:
    """Counters for one device; copied into snapshots, mutated only under the state's lock."""

    up: bool = False
    polls_total: int = 0
    requests_total: int = 0
    errors_total: dict[str, int] = field(default_factory=dict)
    poll_buckets: list[int] = field(default_factory=lambda: [0] * len(POLL_DURATION_BUCKETS))
    poll_count: int = 0
    poll_sum_s: float = 0.0
    last_success: float | None = None
    last_error: str = ""
    info: dict[str, str] = field(default_factory=dict)  # serial number, firmware, model ...
    writes_total: dict[str, int] = field(default_factory=dict)  # by result: ok, timeout, ...

    def copy(self) -> DeviceHealth:
        return DeviceHealth(
            up=self.up,
            polls_total=self.polls_total,
            requests_total=self.requests_total,
            errors_total=dict(self.errors_total),
            poll_buckets=list(self.poll_buckets),
            poll_count=self.poll_count,
            poll_sum_s=self.poll_sum_s,
            last_success=self.last_success,
            last_error=self.last_error,
            info=dict(self.info),
            writes_total=dict(self.writes_total),
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A frozen view of the site at one instant; nothing in it changes after it is taken."""

    taken_at: float
    values: Mapping[tuple[str, str], SnapshotValue]
    health: Mapping[str, DeviceHealth]
    requests_last_cycle: Mapping[str, int] = field(default_factory=dict)  # per bus

    def value(self, device: str, quantity: str) -> float | None:
        """The value if it is fresh and good, else None: unknown is never zero."""
        entry = self.values.get((device, quantity))
        if entry is None or entry.quality is not Quality.GOOD:
            return None
        return entry.reading.value

    def device_values(self, device: str) -> dict[str, SnapshotValue]:
        return {q: v for (d, q), v in self.values.items() if d == device}


class SiteState:
    """Latest reading per (device, quantity), with per-quantity staleness limits."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._readings: dict[tuple[str, str], Reading] = {}
        self._failed: set[tuple[str, str]] = set()
        self._health: dict[str, DeviceHealth] = {}
        self._max_age_s: dict[tuple[str, str], float] = {}
        self._requests_last_cycle: dict[str, int] = {}

    def register_device(self, device: str, max_age_s: Mapping[str, float]) -> None:
        """Announce a device and, per quantity, the age after which its value is stale."""
        with self._lock:
            self._health.setdefault(device, DeviceHealth())
            for quantity, age in max_age_s.items():
                self._max_age_s[(device, quantity)] = age

    def now(self) -> float:
        return self._clock()

    def record_poll(
        self,
        device: str,
        readings: Iterable[Reading],
        failed_quantities: Iterable[str],
        duration_s: float,
        requests: int,
        error: str | None,
        answered: bool,
        info: Mapping[str, str] | None = None,
    ) -> None:
        """Store one poll's outcome: its readings, the quantities it failed on, its cost.

        `answered` is whether the device replied at all: a device that answers with one
        garbage value is up (with an error counted), one that times out is down.
        """
        now = self._clock()
        with self._lock:
            health = self._health.setdefault(device, DeviceHealth())
            for reading in readings:
                key = (reading.device, reading.quantity)
                self._readings[key] = reading
                self._failed.discard(key)
            for quantity in failed_quantities:
                self._failed.add((device, quantity))
            health.polls_total += 1
            health.requests_total += requests
            health.poll_count += 1
            health.poll_sum_s += duration_s
            for index, bound in enumerate(POLL_DURATION_BUCKETS):
                if duration_s <= bound:
                    health.poll_buckets[index] += 1
            health.up = answered
            if info:
                health.info.update(info)
            if answered:
                health.last_success = now
            if error is None:
                health.last_error = ""
            else:
                health.errors_total[error] = health.errors_total.get(error, 0) + 1
                health.last_error = error

    def record_write(
        self, device: str, setpoint: str, ok: bool, reason: str, requests: int
    ) -> None:
        """Count one setpoint write by its result: ok, or why it failed."""
        result = "ok" if ok else reason or "failed"
        with self._lock:
            health = self._health.setdefault(device, DeviceHealth())
            health.writes_total[result] = health.writes_total.get(result, 0) + 1
            health.requests_total += requests

    def set_requests_last_cycle(self, per_bus: Mapping[str, int]) -> None:
        with self._lock:
            self._requests_last_cycle = dict(per_bus)

    def snapshot(self) -> Snapshot:
        now = self._clock()
        with self._lock:
            values: dict[tuple[str, str], SnapshotValue] = {}
            for key, reading in self._readings.items():
                age = now - reading.monotonic
                if key in self._failed:
                    quality = Quality.BAD
                elif age > self._max_age_s.get(key, float("inf")):
                    quality = Quality.STALE
                else:
                    quality = Quality.GOOD
                values[key] = SnapshotValue(reading, age, quality)
            health = {device: h.copy() for device, h in self._health.items()}
            per_bus = MappingProxyType(dict(self._requests_last_cycle))
        return Snapshot(now, MappingProxyType(values), MappingProxyType(health), per_bus)


def utc_now() -> datetime:
    return datetime.now(UTC)
