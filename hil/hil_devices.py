"""The scenario's devices on real sockets, each a Modbus face over the one site physics.

The physics decides what happens; these classes only show it the way the real devices would:

- the grid meter is a simulated SDM630 whose source is the physics' last second;
- each PV inverter is a simulated SunSpec inverter showing its share of the PV the physics used;
  the limits the agent writes to them become the physics' PV limit;
- the battery is a simulated SunSpec battery mirroring the physics' state of charge and power;
- each charger connector is a `generic-charger` unit with the register map below (the simulated
  DC charger's map of `hil.devices.dc_charger`, plus a current setpoint for AC), whose
  setpoint writes go to the physics' connector (which follows them after its delay).

Connector map (holding registers, 32-bit values high word first):
    100 u16 state (0 available, 2 charging, 3 finished, 4 faulted) | 101 s32 power, 10 W
    103 u32 energy, Wh | 105 u32 session energy, Wh | 107 u16 max power, 100 W
    108 u16 power limit in force, 100 W | 109 u16 current limit in force, 0.1 A
    200 u16 power-limit setpoint, 100 W (DC) | 201 u16 setpoint watchdog, s
    202 u16 current-limit setpoint, 0.1 A (AC)

The first gateway also answers for the utility's control box (when the scenario curtails):
unit 247, holding registers 300-301, the import limit in force as a u32 in W.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pymodbus.constants import ExcCodes
from pymodbus.simulator import DataType, SimData, SimDevice

from hil.devices.faults import FaultSwitch
from hil.devices.sdm630 import MeterValues
from hil.devices.serving import ModbusServing, modbus_unit, read_only_words
from hil.devices.sunspec import SimulatedSunSpecBattery
from hil.physics import SitePhysics, StepResult
from hil.scenario import ChargerSpec
from hil.site_config import LIMIT_SIGNAL_REGISTER, LIMIT_SIGNAL_UNIT

STATE, POWER, ENERGY, SESSION, MAX_POWER, LIMIT_KW, LIMIT_A = 100, 101, 103, 105, 107, 108, 109
POWER_SETPOINT, WATCHDOG, CURRENT_SETPOINT = 200, 201, 202
WATCHDOG_S = 60


class PhysicsMeter:
    """An SDM630's `MeterSource`: what the grid connection did in the physics' last second."""

    def __init__(self, physics: SitePhysics, voltage_v: float) -> None:
        self._physics = physics
        self._voltage = voltage_v
        self.last: StepResult | None = None
        self._import_kwh = 0.0
        self._export_kwh = 0.0

    def record(self, row: StepResult) -> None:
        """Called by the HIL loop after each physics step."""
        self.last = row
        hours = 1 / 3600
        if row.grid_kw >= 0:
            self._import_kwh += row.grid_kw * hours
        else:
            self._export_kwh -= row.grid_kw * hours

    def __call__(self, now: float) -> MeterValues:
        row = self.last
        volts = self._voltage
        if row is None:
            zero = (0.0, 0.0, 0.0)
            return MeterValues((volts,) * 3, zero, zero, 1.0, 50.0, 0.0, 0.0)
        power = (row.p_l1_kw * 1000, row.p_l2_kw * 1000, row.p_l3_kw * 1000)
        current = (row.i_l1_a, row.i_l2_a, row.i_l3_a)
        return MeterValues(
            (volts, volts, volts), current, power, 1.0, 50.0, self._import_kwh, self._export_kwh
        )


class PhysicsBattery(SimulatedSunSpecBattery):
    """A SunSpec battery that shows the physics' battery instead of running its own."""

    def __init__(self, physics: SitePhysics, capacity_kwh: float, max_kw: float) -> None:
        self._physics = physics  # first: the base class reads the state while it builds
        super().__init__(time.monotonic, capacity_wh=capacity_kwh * 1000, max_power_w=max_kw * 1000)

    def _advance(self, now: float) -> None:
        """Model 124 as the device applies it, with the physics doing the energy."""
        written = self._rates_written_at
        if 0 < self.rate_revert_s <= now - (written if written is not None else now):
            self.in_w_rte_pct = self.out_w_rte_pct = 100.0  # the revert timer lapsed
            self.stor_ctl_mod = 0
            self._rates_written_at = None
        soc = self._physics.battery_soc()
        if soc is not None:
            self.soc_pct = soc * 100
        self.demand_w = 0.0  # on its own the battery holds; the rates force it
        self._physics.set_battery_kw(-self._target_w() / 1000)  # physics: + = discharge
        self.power_w = -self._physics.battery_kw() * 1000  # SunSpec sim: + = charging
        self.dc_power_w = self.power_w


class PhysicsConnectors(ModbusServing):
    """Every connector behind one TCP gateway, one unit id each, faces over the physics."""

    def __init__(
        self,
        physics: SitePhysics,
        slots: list[tuple[ChargerSpec, int, int]],  # charger, connector id, unit id
        limit_signal: bool = False,  # also the utility's control box (unit 247)
    ) -> None:
        self._physics = physics
        self._slots = slots
        self._limit_signal = limit_signal
        self.faults: dict[str, FaultSwitch] = {}  # per charger: offline = SILENT
        for charger, _, _ in slots:
            self.faults.setdefault(charger.id, FaultSwitch())
        self.writes = 0
        self._last_written: dict[tuple[str, int, int], int] = {}  # what a read-back shows

    def sim_devices(self) -> list[SimDevice]:
        slots = self._slots
        devices = [self._device(charger, connector, unit) for charger, connector, unit in slots]
        if self._limit_signal:
            devices.append(self._signal_device())
        return devices

    def _signal_device(self) -> SimDevice:
        def words() -> dict[int, int]:
            watts = round(self._physics.grid_limit_kw() * 1000) & 0xFFFFFFFF
            return {LIMIT_SIGNAL_REGISTER: watts >> 16, LIMIT_SIGNAL_REGISTER + 1: watts & 0xFFFF}

        return read_only_words(LIMIT_SIGNAL_UNIT, LIMIT_SIGNAL_REGISTER, 2, words)

    def _device(self, charger: ChargerSpec, connector: int, unit: int) -> SimDevice:
        holding = [SimData(STATE, count=110, values=0, datatype=DataType.REGISTERS)]

        async def on_access(
            function_code: int,
            start_address: int,
            address: int,
            count: int,
            registers: list[int],
            set_values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            if (fault := await self.faults[charger.id].apply()) is not None:
                return fault
            if function_code not in (3, 6, 16):
                return ExcCodes.ILLEGAL_FUNCTION
            if set_values is not None:
                return self._write(charger, connector, address, [int(v) for v in set_values])
            words = self._words(charger, connector)
            for offset in range(len(registers)):
                registers[offset] = words.get(start_address + offset, 0)
            return None

        return modbus_unit(unit, on_access, holding)

    def _write(
        self, charger: ChargerSpec, connector: int, address: int, values: list[int]
    ) -> ExcCodes | None:
        max_kw = next(c.max_kw for c in charger.connectors if c.id == connector)
        for index, raw in enumerate(values):
            register = address + index
            if register == POWER_SETPOINT and charger.kind == "dc":
                if raw * 0.1 > max_kw:
                    return ExcCodes.ILLEGAL_VALUE
                self._physics.set_connector_limit(charger.id, connector, raw * 0.1)
            elif register == CURRENT_SETPOINT and charger.kind == "ac":
                if raw * 0.1 > (charger.max_a or 0.0):
                    return ExcCodes.ILLEGAL_VALUE
                self._physics.set_connector_limit(charger.id, connector, raw * 0.1)
            else:
                return ExcCodes.ILLEGAL_ADDRESS
            self.writes += 1
        self._last_written[(charger.id, connector, address)] = values[-1]
        return None

    def _words(self, charger: ChargerSpec, connector: int) -> dict[int, int]:
        physics = self._physics
        power = round(physics.connector_power_kw(charger.id, connector) * 100) & 0xFFFFFFFF
        energy = round(physics.connector_energy_kwh(charger.id, connector) * 1000) & 0xFFFFFFFF
        session_wh = round(physics.connector_session_kwh(charger.id, connector) * 1000)
        session_wh &= 0xFFFFFFFF
        limit = physics.connector_limit(charger.id, connector)
        max_kw = next(c.max_kw for c in charger.connectors if c.id == connector)
        state = connector_state(physics, charger.id, connector)
        dc = charger.kind == "dc"
        setpoint = self._last_written.get(
            (charger.id, connector, POWER_SETPOINT if dc else CURRENT_SETPOINT), 0
        )
        return {
            STATE: state,
            POWER: power >> 16,
            POWER + 1: power & 0xFFFF,
            ENERGY: energy >> 16,
            ENERGY + 1: energy & 0xFFFF,
            SESSION: session_wh >> 16,
            SESSION + 1: session_wh & 0xFFFF,
            MAX_POWER: round(max_kw * 10),
            LIMIT_KW: round(limit * 10) if dc else 0,
            LIMIT_A: 0 if dc else round(limit * 10),
            POWER_SETPOINT: setpoint if dc else 0,
            WATCHDOG: WATCHDOG_S,
            CURRENT_SETPOINT: 0 if dc else setpoint,
        }


def pv_share(
    physics_last: Callable[[], StepResult | None], inverters: int
) -> Callable[[float], float]:
    """An inverter's PV source: its share of the PV the physics used in the last second (W)."""

    def source(now: float) -> float:
        row = physics_last()
        return 0.0 if row is None else row.pv_used_kw * 1000 / inverters

    return source


def connector_state(physics: SitePhysics, charger: str, connector: int) -> int:
    """The generic charger's state code: 0 available, 1 preparing, 2 charging, 3 finished."""
    session = physics.connector_session(charger, connector)
    if session is None:
        return 0
    if physics.connector_session_kwh(charger, connector) >= session.energy_kwh - 1e-6:
        return 3
    return 2 if physics.connector_power_kw(charger, connector) > 0 else 1
