"""From a configured device to the driver that polls it: the one place that knows them all."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from agent.config import Device, SerialBus, TcpBus
from agent.drivers.bus_worker import PolledDevice
from agent.drivers.modbus_device import ModbusDevice
from agent.drivers.profile import load_profile
from agent.drivers.registers import worthwhile_gap
from agent.drivers.rtu_pacing import character_bits
from agent.drivers.template import bind_template
from agent.state import utc_now


def bus_gap(bus: SerialBus | TcpBus) -> int:
    """Registers worth reading across on this bus rather than sending another request."""
    if isinstance(bus, TcpBus):
        return worthwhile_gap(None)
    bits = character_bits(bus.bytesize, bus.parity.value, bus.stopbits)
    return worthwhile_gap(bus.baudrate, bits)


def build_device(
    device: Device,
    bus: SerialBus | TcpBus,
    clock: Callable[[], float],
    profiles_dir: Path | None = None,
) -> PolledDevice:
    profile = load_profile(device.profile, profiles_dir)
    if profile.protocol == "pylontech":
        from agent.drivers.pylontech_bms import PylontechBms

        return PylontechBms(device, clock, utc_now, timeout_s=bus.timeout_s)
    if profile.template:
        profile = bind_template(profile, device.registers, f"devices[{device.id}]")
    binder = None
    if profile.sunspec:
        from agent.drivers.sunspec_binding import sunspec_binder

        binder = sunspec_binder(profile, device.unit_id)
    return ModbusDevice(device, profile, clock, utc_now, max_gap=bus_gap(bus), binder=binder)
