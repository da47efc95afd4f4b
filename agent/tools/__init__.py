"""What the technician tools share: the site, a bus or device by name, and a live link to it.

`scan` and `read` talk to devices exactly as the daemon does (same link from `make_link`, same
RTU pacing, same drivers), so what they show is what the agent would see. Every way of not
getting there (a bad file, an unknown name, a busy or missing port, an unreachable gateway)
becomes a `ToolError`: one line for the technician and an exit code a script can test.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any, TextIO

import serial

from agent.config import AgentConfig, Device, SerialBus, TcpBus
from agent.config_loader import ConfigError, load_config
from agent.drivers.bus_worker import make_link, modbus_reader
from agent.drivers.line_activity import LineActivity
from agent.drivers.rtu_pacing import character_bits, inter_frame_gap_s

EXIT_OK = 0
EXIT_BAD_CONFIG = 1  # as check-config
EXIT_UNKNOWN_NAME = 2  # no such bus or device in the site file (argparse also uses 2)
EXIT_NO_LINK = 3  # the port is busy or missing, the gateway unreachable
EXIT_NO_ANSWER = 4  # connected, but nothing (usable) answered
EXIT_INTERRUPTED = 130  # Ctrl-C in the middle of a scan

Bus = SerialBus | TcpBus


class ToolError(Exception):
    """The tool cannot go on; `str()` is the line the technician reads."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def load_site(path: Path) -> AgentConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise ToolError(exc.report(), EXIT_BAD_CONFIG) from None


def find_bus(config: AgentConfig, name: str) -> Bus:
    for bus in config.buses:
        if bus.name == name:
            return bus
    raise ToolError(
        f"no bus named {name!r} in the site file; buses: {_names(b.name for b in config.buses)}",
        EXIT_UNKNOWN_NAME,
    )


def find_device(config: AgentConfig, name: str) -> Device:
    for device in config.devices:
        if device.id == name:
            return device
    raise ToolError(
        f"no device named {name!r} in the site file; devices: "
        f"{_names(d.id for d in config.devices)}",
        EXIT_UNKNOWN_NAME,
    )


def _names(names: Iterable[str]) -> str:
    listed = ", ".join(names)
    return listed or "none"


def describe_bus(bus: Bus) -> str:
    if isinstance(bus, TcpBus):
        return f"bus {bus.name} (tcp {bus.host}:{bus.port})"
    frame = f"{bus.baudrate} {bus.bytesize}{bus.parity.value}{bus.stopbits}"
    return f"bus {bus.name} (serial {bus.port} {frame})"


def line_gap_s(bus: Bus) -> float | None:
    """The RTU inter-frame gap of a Modbus serial line; None where there is none to keep.

    The same rule as the bus worker's pacing (agent.drivers.rtu_pacing), for the one request
    that does not go through its PacedReader: device identification in `scan`.
    """
    if not isinstance(bus, SerialBus) or bus.protocol != "modbus":
        return None
    return inter_frame_gap_s(
        bus.baudrate, character_bits(bus.bytesize, bus.parity.value, bus.stopbits)
    )


def check_serial_port(bus: SerialBus) -> None:
    """Fail early, and say why, if the port is missing or another process holds it.

    pymodbus and the Pylontech link open ports with pyserial's `exclusive=True` (an flock),
    so a running daemon holds that lock and a second exclusive open fails.
    """
    try:
        port = serial.Serial(
            bus.port,
            baudrate=bus.baudrate,
            bytesize=bus.bytesize,
            parity=bus.parity.value,
            stopbits=bus.stopbits,
            exclusive=True,
        )
    except serial.SerialException as exc:
        raise ToolError(_port_problem(bus.port, exc), EXIT_NO_LINK) from None
    except ValueError as exc:  # settings the adapter refuses
        raise ToolError(f"port {bus.port}: {exc}", EXIT_NO_LINK) from None
    port.close()


def _port_problem(port: str, exc: serial.SerialException) -> str:
    code = exc.errno
    if code in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY):
        return f"port {port} is in use (is edge-agent running? stop it or use its metrics)"
    if code == errno.ENOENT:
        return f"port {port} does not exist (adapter unplugged? see ls /dev/serial/by-id/)"
    if code == errno.EACCES:
        return f"port {port}: permission denied (is this user in the dialout group?)"
    return f"cannot open port {port}: {exc}"


async def _why_unreachable(bus: TcpBus) -> str:
    """pymodbus' connect() only says False: ask the socket layer for the reason."""
    where = f"{bus.host}:{bus.port}"
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(bus.host, bus.port), timeout=bus.timeout_s
        )
    except TimeoutError:
        return f"cannot reach {where} (bus {bus.name}): no reply within {bus.timeout_s:g} s"
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)  # not asyncio's wording
        return f"cannot reach {where} (bus {bus.name}): {reason}"
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return f"cannot connect to {where} (bus {bus.name})"


@contextlib.asynccontextmanager
async def open_bus(bus: Bus) -> AsyncIterator[tuple[Any, Any]]:
    """(link, reader) on a connected bus, built as the bus worker builds them; closed after.

    The reader is the worker's: garbled replies told from silence, RTU frames paced.
    """
    if isinstance(bus, SerialBus):
        check_serial_port(bus)
    activity = LineActivity()
    link = make_link(bus, activity.trace)
    try:
        try:
            connected = bool(await link.connect())
        except OSError:
            connected = False
        if not connected:
            if isinstance(bus, TcpBus):
                raise ToolError(await _why_unreachable(bus), EXIT_NO_LINK)
            raise ToolError(f"cannot open port {bus.port} (bus {bus.name})", EXIT_NO_LINK)
        yield link, modbus_reader(bus, link, activity)
    finally:
        link.close()


def run_tool(
    work: Callable[[], Coroutine[Any, Any, int]],
    on_interrupt: Callable[[], int] = lambda: EXIT_INTERRUPTED,
    err: TextIO | None = None,
) -> int:
    """Run a tool's coroutine: a ToolError is printed and becomes its exit code."""
    stream = err or sys.stderr
    try:
        return asyncio.run(work())
    except ToolError as exc:
        print(exc, file=stream)
        return exc.exit_code
    except KeyboardInterrupt:
        return on_interrupt()
