"""The chargers' state on site and how they take the agent's limits.

"Chargers follow a new limit after a delay the scenario may not state; the simulator's default is
2 s for DC and 5 s for AC" (FORMAT.md). Real chargers also run a setpoint watchdog: a limit that
is not renewed in time lapses to the charger's safe value, so an agent that stops talking cannot
leave the site at its last (possibly high) limit. Before the first limit a connector is at the
safe value too.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from hil.scenario import PHASES, ChargerSpec, ConnectorSpec, SessionSpec


@dataclass(slots=True, eq=False)
class ChargerState:
    """One charger: its spec, whether it is offline, and the connectors that have a car now."""

    spec: ChargerSpec
    is_dc: bool
    safe_limit: float  # kW (DC) or A per phase (AC): what a lapsed or never-set limit means
    phase_index: int | None  # 0..2 for a 1-phase charger's phase, None when 3-phase
    offline_events: int = 0  # charger_offline events in force now (they may overlap)
    plugged: list[ConnectorState] = field(default_factory=list)

    @property
    def offline(self) -> bool:
        return self.offline_events > 0

    @classmethod
    def build(cls, spec: ChargerSpec, safe_dc_kw: float, safe_ac_a: float) -> ChargerState:
        is_dc = spec.kind == "dc"
        phase_index = None if spec.phases == 3 or spec.phase is None else PHASES.index(spec.phase)
        return cls(spec, is_dc, safe_dc_kw if is_dc else safe_ac_a, phase_index)


@dataclass(slots=True, eq=False)
class ConnectorState:
    """One connector: the limit it holds, the car on it and its energy counters."""

    charger: ChargerState
    spec: ConnectorSpec
    limit: float  # the last limit applied (see `limit_in_force`)
    limit_expires_s: float  # the watchdog: from then on the limit has lapsed to the safe value
    session: SessionSpec | None = None
    session_kwh: float = 0.0  # delivered to the car plugged in now
    lifetime_kwh: float = 0.0  # the connector's meter
    power_kw: float = 0.0  # average over the last step

    def limit_in_force(self, now_s: float) -> float:
        if now_s < self.limit_expires_s:
            return self.limit
        return self.charger.safe_limit


class SetpointLink:
    """The path from the agent to one kind of charger: a fixed delay, then the charger applies it.

    The watchdog restarts when a limit is *received* (as a real charger's does), while the value
    itself takes effect `delay_s` later. One FIFO per link suffices because the delay is the same
    for every limit on it, so limits take effect in the order they were sent.
    """

    __slots__ = ("_in_flight", "delay_s", "timeout_s")

    def __init__(self, delay_s: float, timeout_s: float) -> None:
        self.delay_s = delay_s
        self.timeout_s = timeout_s
        # (time it takes effect, connector, value): plain tuples, as an agent may send hundreds a
        # second.
        self._in_flight: deque[tuple[float, ConnectorState, float]] = deque()

    def send(self, connector: ConnectorState, value: float, now_s: float) -> None:
        """The charger receives `value` at now_s ("a charger that is offline ... receives no new
        limits" is the caller's check)."""
        if now_s >= connector.limit_expires_s:
            # The old limit has lapsed: until the new one takes effect the charger holds its safe
            # value, not the lapsed one.
            connector.limit = connector.charger.safe_limit
        connector.limit_expires_s = now_s + self.timeout_s
        if self.delay_s <= 0.0:
            connector.limit = value
        else:
            self._in_flight.append((now_s + self.delay_s, connector, value))

    def apply_due(self, now_s: float) -> None:
        """Put into force every limit whose delay has passed by now_s."""
        in_flight = self._in_flight
        while in_flight and in_flight[0][0] <= now_s:
            _, connector, value = in_flight.popleft()
            connector.limit = value
