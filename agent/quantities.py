"""The quantities the agent knows, each with the one unit it is kept in.

Profiles map device registers onto these names (scaling into the unit given here), and
everything downstream (state, controller, metrics, MQTT) speaks only these names. Keeping the
list in one place means a new device model cannot invent a unit the rest of the agent does not
understand.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Quantity:
    name: str
    unit: str
    description: str
    cumulative: bool = False  # a counter that only grows (energy), not a gauge


def _phases(stem: str, unit: str, description: str) -> list[Quantity]:
    return [Quantity(f"{stem}_l{n}", unit, f"{description}, phase L{n}") for n in (1, 2, 3)]


_ALL: list[Quantity] = [
    Quantity("power", "W", "active power, total; positive = import/consumption"),
    *_phases("power", "W", "active power"),
    *_phases("voltage", "V", "line-to-neutral voltage"),
    *_phases("current", "A", "current"),
    Quantity("frequency", "Hz", "grid frequency"),
    Quantity("power_factor", "1", "total power factor"),
    Quantity("energy_import", "Wh", "active energy imported", cumulative=True),
    Quantity("energy_export", "Wh", "active energy exported", cumulative=True),
]

QUANTITIES: dict[str, Quantity] = {q.name: q for q in _ALL}
PHASES: tuple[str, ...] = ("l1", "l2", "l3")
