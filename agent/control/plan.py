"""What a strategy decides each cycle: a limit per connector, battery and PV commands, reasons.

The plan is data: the actuator turns it into device writes, the simulator applies it to its
physics, and metrics and logs show it. Every connector limit carries the reason it is what it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Literal


class Reason(StrEnum):
    STATIC = "static"  # a fixed cap that holds whatever the site does
    GRID = "grid"  # limited by the import limit
    PHASE = "phase"  # limited by a phase's current limit
    CHARGER = "charger"  # limited by the charger's shared power
    CAR = "car"  # the car takes no more
    ROTATION = "rotation"  # paused so that others get their minimum
    FAILSAFE = "failsafe"  # inputs unknown: the safe budget applies
    TARIFF = "tariff"  # waits for a cheaper tariff period it will still be plugged in for


@dataclass(frozen=True, slots=True)
class ConnectorLimit:
    """kW for a DC connector, amps per phase for an AC one."""

    value: float
    unit: Literal["kW", "A"]
    reason: Reason


@dataclass(frozen=True, slots=True)
class Plan:
    connectors: Mapping[str, ConnectorLimit]  # by connector device id
    battery_kw: float | None = None  # + = discharge (lowers import); None: no command
    pv_limit_kw: float | None = None  # curtail PV to this; None: no limit
    budget_kw: float = 0.0  # what the strategy allowed for charging this cycle
    import_limit_kw: float | None = None  # the limit in force (site's or signalled), if known
    notes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
