"""`edge-agent read DEVICE`: every value a configured device gives, as the daemon decodes it.

The device is built by the same factory and polled through the same link as in the daemon,
so a wrong unit id, profile or word order shows here exactly as it would in the metrics. The
first poll reads every field (nameplate data included); SunSpec devices are discovered on it.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from agent.config import Device
from agent.drivers.bus_worker import PolledDevice
from agent.drivers.factory import build_device
from agent.drivers.modbus_device import ModbusDevice, PollResult
from agent.drivers.profile import DataType, ProfileError, RegisterField
from agent.quantities import QUANTITIES
from agent.tools import (
    EXIT_BAD_CONFIG,
    EXIT_NO_ANSWER,
    EXIT_OK,
    Bus,
    ToolError,
    describe_bus,
    find_bus,
    find_device,
    load_site,
    open_bus,
    run_tool,
)

NO_VALUE = "—"


@dataclass(slots=True)
class Latest:
    """What the device has shown so far: slow and once-only fields are not read every poll."""

    values: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # quantity -> error class, this poll
    info: dict[str, str] = field(default_factory=dict)
    answered: bool = False  # any value at all, in any poll

    def update(self, result: PollResult) -> None:
        self.failed = {name: result.error or "error" for name in result.failed}
        for reading in result.readings:
            self.values[reading.quantity] = reading.value
        self.info.update(result.info)
        self.answered = self.answered or bool(result.readings or result.info)


def format_value(value: float) -> str:
    """Integers without a point, others to three decimals without trailing zeros."""
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text if text not in ("0", "-0") else f"{value:.3g}"


def labelled(profile_field: RegisterField | None, value: float) -> tuple[str, str]:
    """(value text, '(label)') for enums and bitfields; plain numbers have no label."""
    if profile_field is None or not profile_field.data_type.has_labels or not value.is_integer():
        return format_value(value), ""
    code, labels = int(value), profile_field.labels
    if profile_field.data_type is DataType.ENUM16:
        return str(code), f"({labels.get(code, 'unknown code')})"
    digits = 8 if profile_field.data_type is DataType.BITFIELD32 else 4
    bits = [labels.get(bit, f"bit {bit}") for bit in range(digits * 4) if code >> bit & 1]
    return f"0x{code:0{digits}X}", f"({', '.join(bits) or 'none'})"


def _profile_fields(device: PolledDevice) -> Mapping[str, RegisterField]:
    if isinstance(device, ModbusDevice):
        return {f.name: f for f in device.profile.fields}
    return {}


def table(device: PolledDevice, latest: Latest) -> list[str]:
    """quantity, value, unit or label; failed ones as '—  (timeout)'; then the info fields."""
    fields = _profile_fields(device)
    rows: list[tuple[str, str, str]] = []
    for name in device.all_quantities():
        if name in latest.failed:
            rows.append((name, NO_VALUE, f"({latest.failed[name]})"))
        elif name in latest.values:
            text, label = labelled(fields.get(name), latest.values[name])
            unit = QUANTITIES[name].unit if name in QUANTITIES else ""
            unit = "" if unit == "1" else unit  # power factor: a plain ratio
            rows.append((name, text, label or unit))
        else:
            rows.append((name, NO_VALUE, "(no value: not implemented by the device)"))
    width = max([len(n) for n, _, _ in rows] + [len(n) for n in latest.info] + [8])
    values = max([len(v) for _, v, _ in rows] + [1])
    lines = [f"{n:<{width}}  {v:>{values}}  {u}".rstrip() for n, v, u in rows]
    if latest.info:
        lines.append("")
        lines.extend(f"{name:<{width}}  {text}" for name, text in latest.info.items())
    return lines


def no_answer(device: Device, bus: Bus, error: str | None) -> str:
    """The one line for a poll that got no value at all, by what went wrong."""
    who = f"{device.id}, unit {device.unit_id} on {describe_bus(bus)}"
    if error == "timeout":
        return (
            f"{who}: no answer within {bus.timeout_s:g} s "
            "(check the unit id, wiring, baud rate and parity)"
        )
    if error == "connection":
        return f"{who}: the connection dropped while reading"
    if error == "not_sunspec":
        return f"{who}: answers, but shows no SunSpec marker at 40000, 0 or 50000"
    if error == "exception":
        return f"{who}: answered every read with a Modbus exception (wrong unit id or profile?)"
    return f"{who}: no value could be read ({error or 'nothing decoded'})"


def header(device: Device, bus: Bus) -> str:
    return f"{device.id}: {device.profile}, unit {device.unit_id} on {describe_bus(bus)}"


async def read(
    config_path: Path,
    device_id: str,
    watch: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
    latest: Latest | None = None,
) -> int:
    """Poll once (or until cancelled with `watch`) and print the table each time."""
    out, err = out or sys.stdout, err or sys.stderr
    latest = latest if latest is not None else Latest()
    config = load_site(config_path)
    device = find_device(config, device_id)
    bus = find_bus(config, device.bus)
    try:
        polled = build_device(device, bus, time.monotonic)
    except ProfileError as exc:
        raise ToolError(f"{device.id}: {exc}", EXIT_BAD_CONFIG) from None
    async with open_bus(bus) as (link, reader):
        while True:
            started = time.monotonic()
            result = await _poll(polled, link, reader)
            latest.update(result)
            _show(device, bus, polled, result, latest, watch, out, err)
            if not watch:
                return EXIT_OK if latest.answered else EXIT_NO_ANSWER
            await asyncio.sleep(max(device.poll_interval_s - (time.monotonic() - started), 0))


async def _poll(device: PolledDevice, link: Any, reader: Any) -> PollResult:
    """One poll; in watch mode a dropped connection is reopened before the next one."""
    if not link.connected:
        try:
            connected = bool(await link.connect())
        except OSError:
            connected = False
        if not connected:
            result = PollResult(error="connection")
            result.failed.extend(device.all_quantities())
            return result
    return await device.poll(reader)


def _show(
    device: Device,
    bus: Bus,
    polled: PolledDevice,
    result: PollResult,
    latest: Latest,
    watch: bool,
    out: TextIO,
    err: TextIO,
) -> None:
    """The table; a poll without any value gets its one line on stderr instead.

    After exception replies the table still shows which quantities failed; after silence,
    or when SunSpec discovery found no marker, it would only repeat the same error.
    """
    if watch:
        print(f"--- {time.strftime('%H:%M:%S')} ---", file=out, flush=True)
    got_values = bool(result.readings or result.info)
    if not got_values:
        print(no_answer(device, bus, result.error), file=err, flush=True)
    if got_values or result.error == "exception":
        lines = [header(device, bus), *table(polled, latest)]
        print("\n".join(lines), file=out, flush=True)


def read_command(config_path: Path, device_id: str, watch: bool) -> int:
    """The CLI's entry; with --watch, Ctrl-C ends it: 0 if the device ever answered, else 4."""
    latest = Latest()

    def interrupted() -> int:
        return EXIT_OK if latest.answered else EXIT_NO_ANSWER

    return run_tool(lambda: read(config_path, device_id, watch, latest=latest), interrupted)
