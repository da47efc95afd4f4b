"""`edge-agent scan`: which unit ids answer on a bus, and what they are where that can be told.

Each unit gets one cheap request first (two holding registers at 40000), so a silent unit costs
one timeout and nothing more. A unit that answers, even with an exception, is then asked for
the SunSpec marker and model chain (the same discovery the SunSpec drivers run) and, failing
that, for Modbus device identification (function 43/14). Exception 0x0A/0x0B come from a TCP
gateway saying nobody is behind it at that unit id, so they count as silence.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from agent.config import SerialBus
from agent.drivers.modbus_device import RequestFailed, read_registers
from agent.drivers.profile import RegisterKind
from agent.drivers.sunspec_discovery import DiscoveryError, SunSpecChain, discover
from agent.drivers.sunspec_models import SunSpecLayoutError, model_layout, resolve_point
from agent.tools import (
    EXIT_INTERRUPTED,
    EXIT_NO_ANSWER,
    EXIT_NO_LINK,
    EXIT_OK,
    EXIT_UNKNOWN_NAME,
    Bus,
    ToolError,
    describe_bus,
    find_bus,
    line_gap_s,
    load_site,
    open_bus,
    run_tool,
)

FIRST_ADDRESS = 40000  # the usual SunSpec base; most devices answer it one way or another
LOWEST_UNIT, HIGHEST_UNIT = 0, 255  # TCP may use 0 and 255; serial lines 1-247
NOBODY_THERE = frozenset({0x0A, 0x0B})  # gateway path unavailable, gateway target silent
EXCEPTION_NAMES = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "device failure",
    0x05: "acknowledge",
    0x06: "device busy",
    0x08: "memory parity error",
}
_NAMEPLATE = (("Mn", ""), ("Md", ""), ("Vr", "version "), ("SN", "serial "))
_ID_OBJECTS = (0, 1, 2)  # VendorName, ProductCode, MajorMinorRevision
_PROGRESS_FROM = 10  # units; shorter scans are over before a progress line helps


def parse_units(text: str) -> tuple[int, ...]:
    """'1-247' or '1,3,10-12' -> sorted unit ids; ValueError with a readable message."""
    units: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        low, dash, high = part.partition("-")
        try:
            first = int(low)
            last = int(high) if dash else first
        except ValueError:
            raise ValueError(
                f"{text!r} is not a list of unit ids (use e.g. 1-247 or 1,3,10-12)"
            ) from None
        for unit in (first, last):
            if not LOWEST_UNIT <= unit <= HIGHEST_UNIT:
                raise ValueError(f"unit id {unit} is outside {LOWEST_UNIT}-{HIGHEST_UNIT}")
        if last < first:
            raise ValueError(f"range {part} runs backwards (write {last}-{first})")
        units.update(range(first, last + 1))
    return tuple(sorted(units))


def format_units(units: Sequence[int]) -> str:
    """(1, 2, 3, 7) -> '1-3,7': how the technician would have typed them."""
    runs: list[str] = []
    start = previous = None
    for unit in [*units, None]:
        if start is not None and previous is not None and unit != previous + 1:
            runs.append(str(start) if start == previous else f"{start}-{previous}")
            start = None
        if start is None:
            start = unit
        previous = unit
    return ",".join(runs)


@dataclass(frozen=True, slots=True)
class FirstAnswer:
    """How a unit answered the first request: registers, or an exception code."""

    registers: tuple[int, ...] = ()
    exception: int | None = None
    garbled: bool = False  # bytes came back, but no frame pymodbus could accept

    def describe(self) -> str:
        if self.garbled:
            return "a garbled reply: wrong baud rate or parity, or two units at this id?"
        if self.exception is not None:
            name = EXCEPTION_NAMES.get(self.exception, "exception")
            return f"exception 0x{self.exception:02X} {name} at {FIRST_ADDRESS}"
        words = " ".join(f"0x{r:04X}" for r in self.registers)
        return f"{FIRST_ADDRESS} = {words}"


class LinkLost(Exception):
    """The connection went away mid-scan; the scan reconnects once before giving up."""


async def first_request(reader: Any, unit: int) -> FirstAnswer | None:
    """None if the unit is silent (or the gateway says no one is there)."""
    try:
        response = await reader.read_holding_registers(FIRST_ADDRESS, count=2, device_id=unit)
    except ConnectionException as exc:
        raise LinkLost(str(exc)) from None
    except (ModbusIOException, TimeoutError):
        return None
    except ModbusException:
        return FirstAnswer(garbled=True)  # still somebody answering
    if response.isError():
        code = int(getattr(response, "exception_code", 0))
        return None if code in NOBODY_THERE else FirstAnswer(exception=code)
    return FirstAnswer(registers=tuple(int(r) for r in getattr(response, "registers", [])))


def describe_models(chain: SunSpecChain) -> str:
    names = []
    for model_id in chain.model_ids:
        try:
            names.append(f"{model_id} ({model_layout(model_id).name})")
        except SunSpecLayoutError:
            names.append(f"{model_id} (unknown model)")
    return f"SunSpec at base {chain.base}: models {', '.join(names)}"


async def nameplate(reader: Any, chain: SunSpecChain, unit: int) -> str | None:
    """Manufacturer, model, version and serial from the common model (1), if it has them."""
    common = chain.find([1])
    if common is None:
        return None
    try:
        points = [(resolve_point(1, name, common.length), label) for name, label in _NAMEPLATE]
    except SunSpecLayoutError:
        return None
    first = min(p.offset for p, _ in points)
    count = max(p.offset + p.size for p, _ in points) - first
    try:
        words = await read_registers(
            reader, RegisterKind.HOLDING, common.start + first, count, unit
        )
    except RequestFailed:
        return None
    parts = []
    for point, label in points:
        text = _text(words[point.offset - first : point.offset - first + point.size])
        if text:
            parts.append(label + text)
    return ", ".join(parts) or None


def _text(words: Sequence[int]) -> str:
    raw = b"".join(int(w).to_bytes(2, "big") for w in words)
    return raw.split(b"\0", 1)[0].decode("ascii", errors="replace").strip()


async def device_identification(link: Any, unit: int, gap_s: float | None) -> str | None:
    """Vendor, product code and revision from function 43/14, or None if not supported.

    pymodbus' client does this; PacedReader has no such method, so on RTU the line gap is
    waited out here before and after the request.
    """
    if gap_s:
        await asyncio.sleep(gap_s)
    try:
        response = await link.read_device_information(read_code=1, object_id=0, device_id=unit)
    except (ModbusException, TimeoutError):
        return None
    finally:
        if gap_s:
            await asyncio.sleep(gap_s)
    if response is None or response.isError():
        return None
    information = getattr(response, "information", {}) or {}
    parts = [_object_text(information[key]) for key in _ID_OBJECTS if key in information]
    return " ".join(p for p in parts if p) or None


def _object_text(value: object) -> str:
    if isinstance(value, list):
        return " ".join(_object_text(v) for v in value)
    if isinstance(value, bytes):
        return value.decode("ascii", errors="replace").strip("\0 ")
    return str(value).strip()


async def probe_unit(link: Any, reader: Any, unit: int, gap_s: float | None) -> str | None:
    """One line on what the unit is, or None if it is silent."""
    answer = await first_request(reader, unit)
    if answer is None:
        return None
    if answer.garbled:
        return f"answers with {answer.describe()}"
    try:
        chain = await discover(reader, unit)
    except DiscoveryError as exc:
        if exc.reason != "not_sunspec":
            return f"answers ({answer.describe()}); SunSpec discovery failed: {exc}"
    else:
        plate = await nameplate(reader, chain, unit)
        return describe_models(chain) + (f"; {plate}" if plate else "")
    identity = await device_identification(link, unit, gap_s)
    found = f"identification: {identity}" if identity else "no device identification"
    return f"answers ({answer.describe()}); not SunSpec; {found}"


class Progress:
    """'unit 17 of 247' on a terminal's stderr, rewritten in place; nothing elsewhere."""

    def __init__(self, stream: TextIO, total: int) -> None:
        self._stream = stream
        self._total = total
        self._on = total >= _PROGRESS_FROM and stream.isatty()

    def show(self, unit: int, done: int, answered: int) -> None:
        if self._on:
            text = f"\r  unit {unit} ({done} of {self._total}), {answered} answered so far"
            self._stream.write(text + "\x1b[K")
            self._stream.flush()

    def clear(self) -> None:
        if self._on:
            self._stream.write("\r\x1b[K")
            self._stream.flush()


async def scan(
    config_path: Path,
    bus_name: str,
    units: Sequence[int],
    timeout_s: float | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Print one line per answering unit and a summary; exit 0 if any answered, else 4."""
    out, err = out or sys.stdout, err or sys.stderr
    bus = scannable_bus(find_bus(load_site(config_path), bus_name))
    if timeout_s is not None:
        bus = bus.model_copy(update={"timeout_s": timeout_s})
    print(
        f"scanning {describe_bus(bus)}, units {format_units(units)}, "
        f"up to {bus.timeout_s:g} s per unit",
        file=err,
    )
    answered = 0
    progress = Progress(err, len(units))
    gap = line_gap_s(bus)
    async with open_bus(bus) as (link, reader):
        for done, unit in enumerate(units):
            progress.show(unit, done, answered)
            line = await _probe_reconnecting(link, reader, unit, gap, bus)
            if line is not None:
                answered += 1
                progress.clear()
                print(f"unit {unit:>3}: {line}", file=out, flush=True)
    progress.clear()
    print(f"{answered} of {len(units)} units answered", file=out)
    return EXIT_OK if answered else EXIT_NO_ANSWER


def scannable_bus(bus: Bus) -> Bus:
    if isinstance(bus, SerialBus) and bus.protocol != "modbus":
        raise ToolError(
            f"bus {bus.name} speaks {bus.protocol}, not Modbus: scan cannot ask it; "
            f"use 'edge-agent read' on its devices",
            EXIT_UNKNOWN_NAME,
        )
    return bus


async def _probe_reconnecting(
    link: Any, reader: Any, unit: int, gap: float | None, bus: Bus
) -> str | None:
    """A dropped TCP connection (gateways close idle or confused ones) is reopened once."""
    try:
        return await probe_unit(link, reader, unit, gap)
    except LinkLost:
        pass
    link.close()
    try:
        reconnected = bool(await link.connect())
    except OSError:
        reconnected = False
    if not reconnected:
        raise ToolError(f"lost the connection to {describe_bus(bus)} at unit {unit}", EXIT_NO_LINK)
    try:
        return await probe_unit(link, reader, unit, gap)
    except LinkLost as exc:
        raise ToolError(
            f"lost the connection to {describe_bus(bus)} at unit {unit}: {exc}", EXIT_NO_LINK
        ) from None


def scan_command(
    config_path: Path, bus_name: str, units: Sequence[int], timeout_s: float | None
) -> int:
    """The CLI's entry: a ToolError is one line on stderr and an exit code; Ctrl-C is 130."""

    def interrupted() -> int:
        print("\nscan interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED

    return run_tool(lambda: scan(config_path, bus_name, units, timeout_s), interrupted)
