"""A simulated DC fast charger: one 120 kW cabinet whose power two connectors share.

There is no vendor document: the register map is ours, the one the `generic-charger` template
is mapped onto in tests and in the site simulator. Each connector is its own Modbus unit
(unit ids 1 and 2 by default) on one TCP server; all registers are holding registers
(function 03 to read, 06/16 to write), 32-bit values high word first.

    address  type  unit    access  meaning
    100      u16   code    read    state: 0 available, 1 preparing, 2 charging, 3 finished,
                                   4 faulted
    101-102  s32   10 W    read    power delivered to the car now
    103-104  u32   Wh      read    energy delivered, lifetime counter
    105-106  u32   Wh      read    energy delivered in the running session
    107      u16   100 W   read    the connector's own maximum power
    108      u16   100 W   read    power limit in force now (after the watchdog)
    200      u16   100 W   r/w     power-limit setpoint; reads back the last value written;
                                   above the connector's maximum: exception 3
    201      u16   s       read    setpoint watchdog time

Setpoint watchdog: a limit not rewritten within `watchdog_s` (default 60 s) lapses and the
connector falls back to `safe_power_w` (default 10 kW); until the first write it runs at that
safe power too. So an agent that crashed cannot leave a charger at full power.

A connector delivers min(what the car wants, its limit in force, its maximum), and when the
connectors together want more than the cabinet has, the cabinet shares it out evenly, giving
a connector that wants less than an even share its demand and the rest to the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

from pymodbus.constants import ExcCodes
from pymodbus.simulator import DataType, SimData, SimDevice

from hil.devices.faults import FaultSwitch
from hil.devices.serving import ModbusServing, modbus_unit

STATE = 100
POWER = 101  # s32, 10 W
ENERGY = 103  # u32, Wh, lifetime
SESSION_ENERGY = 105  # u32, Wh
MAX_POWER = 107  # u16, 100 W
LIMIT_IN_FORCE = 108  # u16, 100 W
POWER_LIMIT = 200  # u16, 100 W, read/write
WATCHDOG = 201  # u16, s

POWER_UNIT_W = 10.0
LIMIT_UNIT_W = 100.0

SITE_REGISTERS = """\
[devices.registers]
charging_state = { address = 100, type = "enum16" }
power = { address = 101, type = "s32", scale = 10.0 }
energy_import = { address = 103, type = "u32" }
max_power = { address = 107, type = "u16", scale = 100.0 }
power_setpoint = { address = 108, type = "u16", scale = 100.0 }
power_limit = { address = 200, type = "u16", scale = 100.0, min = 0, max = 120000, renew_s = 60 }
"""
"""This charger's map for a `generic-charger` device in a site file, ready to paste."""


class ConnectorState(IntEnum):
    AVAILABLE = 0
    PREPARING = 1
    CHARGING = 2
    FINISHED = 3
    FAULTED = 4


@dataclass(slots=True)
class Car:
    wants_w: float
    remaining_wh: float | None = None  # None: charges until unplugged


@dataclass(slots=True)
class Connector:
    """One connector's state; `power_w` and the counters are as of the charger's last update."""

    unit_id: int
    max_power_w: float
    faults: FaultSwitch = field(default_factory=FaultSwitch)
    car: Car | None = None
    faulted: bool = False
    limit_w: float | None = None  # last value written to the setpoint register
    limit_written_at: float | None = None
    power_w: float = 0.0
    energy_wh: float = 0.0
    session_wh: float = 0.0

    @property
    def done(self) -> bool:
        """The car has had the energy it came for."""
        remaining = None if self.car is None else self.car.remaining_wh
        return remaining is not None and remaining <= 0

    def state(self) -> ConnectorState:
        if self.faulted:
            return ConnectorState.FAULTED
        if self.car is None:
            return ConnectorState.AVAILABLE
        if self.done:
            return ConnectorState.FINISHED
        return ConnectorState.CHARGING if self.power_w > 0 else ConnectorState.PREPARING


class SimulatedDcCharger(ModbusServing):
    """The cabinet and its connectors; call `update()` (or read over Modbus) to move time on."""

    def __init__(
        self,
        clock: Callable[[], float],
        cabinet_power_w: float = 120_000.0,
        connector_max_w: float = 120_000.0,
        unit_ids: tuple[int, ...] = (1, 2),
        watchdog_s: float = 60.0,
        safe_power_w: float = 10_000.0,
        lifetime_wh: float = 8_765_432.0,
    ) -> None:
        self._clock = clock
        self.cabinet_power_w = cabinet_power_w
        self.watchdog_s = watchdog_s
        self.safe_power_w = safe_power_w
        self.connectors = {
            uid: Connector(uid, connector_max_w, energy_wh=lifetime_wh + 1000 * uid)
            for uid in unit_ids
        }
        self.faults = FaultSwitch()  # the cabinet's communication board: every connector
        self._last = clock()

    # --- what happens at the connectors ---------------------------------------------------

    def plug_in(self, unit_id: int, wants_w: float, energy_wh: float | None = None) -> None:
        """A car arrives wanting `wants_w`, for `energy_wh` or until it is unplugged."""
        self.update()
        connector = self.connectors[unit_id]
        connector.car = Car(wants_w, energy_wh)
        connector.session_wh = 0.0
        self._share(self._last)

    def unplug(self, unit_id: int) -> None:
        self.update()
        self.connectors[unit_id].car = None
        self._share(self._last)

    def set_faulted(self, unit_id: int, faulted: bool = True) -> None:
        self.update()
        self.connectors[unit_id].faulted = faulted
        self._share(self._last)

    def limit_in_force(self, connector: Connector, at: float) -> float:
        written_at = connector.limit_written_at
        if connector.limit_w is None or written_at is None or at >= written_at + self.watchdog_s:
            return min(self.safe_power_w, connector.max_power_w)
        return connector.limit_w

    def update(self) -> None:
        """Move to the clock's now: count energy piecewise, splitting where a watchdog lapses."""
        now = self._clock()
        while self._last < now:
            lapses = [
                c.limit_written_at + self.watchdog_s
                for c in self.connectors.values()
                if c.limit_written_at is not None
                and self._last < c.limit_written_at + self.watchdog_s < now
            ]
            until = min(lapses, default=now)
            self._count(until - self._last)
            self._last = until
            self._share(until)
        self._share(self._last)

    def _count(self, seconds: float) -> None:
        for connector in self.connectors.values():
            wh = connector.power_w * seconds / 3600
            car = connector.car
            if car is not None and car.remaining_wh is not None:
                wh = min(wh, car.remaining_wh)
                car.remaining_wh -= wh
            connector.energy_wh += wh
            connector.session_wh += wh

    def _demand(self, connector: Connector, at: float) -> float:
        if connector.faulted or connector.car is None or connector.done:
            return 0.0
        return max(
            min(connector.car.wants_w, self.limit_in_force(connector, at), connector.max_power_w),
            0.0,
        )

    def _share(self, at: float) -> None:
        """Fill the smallest demands first; each gets at most an even share of what is left."""
        ordered = sorted(self.connectors.values(), key=lambda c: self._demand(c, at))
        left = self.cabinet_power_w
        for index, connector in enumerate(ordered):
            grant = min(self._demand(connector, at), left / (len(ordered) - index))
            connector.power_w = grant
            left -= grant

    # --- Modbus --------------------------------------------------------------------------

    def register_words(self, connector: Connector) -> dict[int, list[int]]:
        """The connector's registers as the wire has them, from its state after `update()`."""
        power = round(connector.power_w / POWER_UNIT_W) & 0xFFFFFFFF
        energy = round(connector.energy_wh) & 0xFFFFFFFF
        session = round(connector.session_wh) & 0xFFFFFFFF
        written = connector.limit_w if connector.limit_w is not None else self.safe_power_w
        return {
            STATE: [int(connector.state())],
            POWER: [power >> 16, power & 0xFFFF],
            ENERGY: [energy >> 16, energy & 0xFFFF],
            SESSION_ENERGY: [session >> 16, session & 0xFFFF],
            MAX_POWER: [round(connector.max_power_w / LIMIT_UNIT_W)],
            LIMIT_IN_FORCE: [round(self.limit_in_force(connector, self._last) / LIMIT_UNIT_W)],
            POWER_LIMIT: [round(written / LIMIT_UNIT_W)],
            WATCHDOG: [round(self.watchdog_s)],
        }

    def devices(self) -> list[SimDevice]:
        return [self._device(connector) for connector in self.connectors.values()]

    def _device(self, connector: Connector) -> SimDevice:
        holding = [
            SimData(STATE, count=9, values=0, datatype=DataType.REGISTERS, readonly=True),
            SimData(POWER_LIMIT, count=1, values=0, datatype=DataType.REGISTERS),
            SimData(WATCHDOG, count=1, values=0, datatype=DataType.REGISTERS, readonly=True),
        ]

        async def on_access(
            function_code: int,
            start_address: int,
            address: int,
            count: int,
            registers: list[int],
            set_values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            return await self._on_access(
                connector, function_code, start_address, address, registers, set_values
            )

        return modbus_unit(connector.unit_id, on_access, holding)

    async def _on_access(
        self,
        connector: Connector,
        function_code: int,
        start_address: int,
        address: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if (fault := await self.faults.apply()) is not None:
            return fault
        if (fault := await connector.faults.apply()) is not None:
            return fault
        if function_code not in (3, 6, 16):
            return ExcCodes.ILLEGAL_FUNCTION
        self.update()
        if set_values is not None:
            for index, raw in enumerate(set_values):
                if address + index != POWER_LIMIT:
                    continue
                watts = int(raw) * LIMIT_UNIT_W
                if watts > connector.max_power_w:
                    return ExcCodes.ILLEGAL_VALUE
                connector.limit_w = watts
                connector.limit_written_at = self._last
            self._share(self._last)
            return None
        for first, words in self.register_words(connector).items():
            offset = first - start_address
            registers[offset : offset + len(words)] = words
        return None

    def sim_devices(self) -> list[SimDevice]:
        return self.devices()
