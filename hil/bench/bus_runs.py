"""A real BusWorker against simulated devices in another process: throughput, CPU, jitter.

The simulator runs in `hil.bench.simproc`'s process, so `time.process_time()` here is the
agent side alone: worker, ModbusDevice planning and decoding, pymodbus client, SiteState.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from agent.config import Device, DeviceKind, SerialBus, TcpBus
from agent.drivers.bus_worker import BusWorker
from agent.drivers.factory import build_device
from agent.drivers.rtu_pacing import character_bits, inter_frame_gap_s
from agent.state import Reading, SiteState
from hil.bench.planning import device_config
from hil.bench.simproc import SimProcess
from hil.pty import PtyPair

PROFILES = {"sdm630": ("eastron-sdm630", DeviceKind.METER), "charger": ("generic-charger",
            DeviceKind.CHARGER)}  # fmt: skip
RTU_REQUEST_BYTES = 8  # unit, function, address, count, CRC
RTU_REPLY_OVERHEAD_BYTES = 5  # unit, function, byte count, CRC


def rtu_theoretical_per_s(baudrate: int, registers: int, bits: int = 10) -> dict[str, float]:
    """Best case on a real line: both frames on the wire and a 3.5-character gap after each."""
    frames = RTU_REQUEST_BYTES + RTU_REPLY_OVERHEAD_BYTES + 2 * registers
    gap_s = inter_frame_gap_s(baudrate, bits)
    seconds = frames * bits / baudrate + 2 * gap_s
    return {"frame_bytes": frames, "gap_s": gap_s, "transaction_s": seconds,
            "max_per_s": 1 / seconds}  # fmt: skip


class CountingState(SiteState):
    """Counts requests as polls end; notes CPU and wall clock after the warm-up and at the end."""

    def __init__(self, warmup: int, count: int) -> None:
        super().__init__(time.monotonic)
        self.requests = 0
        self.errors = 0
        self._marks = (warmup, warmup + count)
        self.start: tuple[float, float, int] | None = None
        self.end: tuple[float, float, int] | None = None
        self.done = asyncio.Event()

    def record_poll(
        self, device: str, readings: Iterable[Reading], failed_quantities: Iterable[str],
        duration_s: float, requests: int, error: str | None, answered: bool,
        info: Mapping[str, str] | None = None,
    ) -> None:  # fmt: skip
        super().record_poll(
            device, readings, failed_quantities, duration_s, requests, error, answered, info
        )
        self.requests += requests
        self.errors += error is not None
        if self.start is None and self.requests >= self._marks[0]:
            self.start = self.mark()
        elif self.end is None and self.requests >= self._marks[1]:
            self.end = self.mark()
            self.done.set()

    def mark(self) -> tuple[float, float, int]:
        return time.process_time(), time.perf_counter(), self.requests


@dataclass(frozen=True, slots=True)
class Throughput:
    transport: str
    kind: str
    units: int
    transactions: int
    cpu_s: float
    wall_s: float
    errors: int

    @property
    def cpu_s_per_1000(self) -> float:
        return 1000 * self.cpu_s / self.transactions

    @property
    def per_s(self) -> float:
        return self.transactions / self.wall_s

    def as_dict(self) -> dict[str, object]:
        return {"transport": self.transport, "kind": self.kind, "units": self.units,
                "transactions": self.transactions, "cpu_s": self.cpu_s, "wall_s": self.wall_s,
                "errors": self.errors, "cpu_s_per_1000": self.cpu_s_per_1000,
                "transactions_per_s": self.per_s}  # fmt: skip


def serial_bus(port: str, baudrate: int, timeout_s: float) -> SerialBus:
    """An 8N1 RTU bus on `port`; validated as a site file's would be."""
    return SerialBus.model_validate({"type": "serial", "name": "bench", "port": port,
                                     "baudrate": baudrate, "timeout_s": timeout_s})  # fmt: skip


def _devices(kind: str, units: int, interval_s: float) -> list[Device]:
    profile, device_kind = PROFILES[kind]
    return [device_config(profile, device_kind, u, interval_s) for u in range(1, units + 1)]


async def _drive(bus: SerialBus | TcpBus, devices: list[Device], state: SiteState,
                 until: asyncio.Event | None, seconds: float) -> None:  # fmt: skip
    """Run one worker until `until` is set or `seconds` pass."""
    worker = BusWorker(bus, [build_device(d, bus, time.monotonic) for d in devices], state)
    running = asyncio.create_task(worker.run())
    try:
        if until is None:
            await asyncio.sleep(seconds)
        else:
            await asyncio.wait_for(until.wait(), timeout=seconds)
    except TimeoutError:
        pass
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def throughput(kind: str, units: int, count: int, baudrate: int | None = None,
                     warmup: int = 50, limit_s: float = 120.0) -> Throughput:  # fmt: skip
    """Back-to-back polls (interval 1 ms) through one worker until `count` transactions."""
    devices = _devices(kind, units, 0.001)
    state = CountingState(warmup, count)
    if baudrate is None:
        with SimProcess(kind, units, "--tcp") as sim:
            bus: SerialBus | TcpBus = TcpBus(type="tcp", name="bench", host="127.0.0.1",
                                             port=sim.port, timeout_s=1.0)  # fmt: skip
            await _drive(bus, devices, state, state.done, limit_s)
        transport = "tcp loopback"
    else:
        with tempfile.TemporaryDirectory() as tmp, PtyPair(Path(tmp)) as pty, SimProcess(
            kind, units, "--serial", str(pty.device_end), "--baud", str(baudrate)
        ):  # fmt: skip
            bus = serial_bus(str(pty.agent_end), baudrate, 1.0)
            await _drive(bus, devices, state, state.done, limit_s)
        transport = f"rtu pty {baudrate} baud"
    start = state.start or state.mark()
    end = state.end or state.mark()
    return Throughput(transport, kind, units, max(end[2] - start[2], 1), end[0] - start[0],
                      end[1] - start[1], state.errors)  # fmt: skip


def rtu_rate(measured: Throughput, baudrate: int, registers: int) -> dict[str, object]:
    """The pty rate next to what the wire allows; a pty moves bytes at memory speed."""
    theory = rtu_theoretical_per_s(baudrate, registers, character_bits(8, "N", 1))
    software_s = 1 / measured.per_s - theory["gap_s"]  # the worker waits out one gap itself
    estimate = 1 / (theory["transaction_s"] + max(software_s, 0.0))
    return {"baudrate": baudrate, "registers_per_request": registers,
            "measured_per_s": measured.per_s, "software_ms_per_request": 1000 * software_s,
            "estimate_real_line_per_s": estimate, **theory,
            "cpu_s_per_1000": measured.cpu_s_per_1000, "errors": measured.errors}  # fmt: skip


class RecordingState(SiteState):
    """Remembers when each device's poll ended, to measure poll periods."""

    def __init__(self) -> None:
        super().__init__(time.monotonic)
        self.polled: dict[str, list[float]] = {}

    def record_poll(
        self, device: str, readings: Iterable[Reading], failed_quantities: Iterable[str],
        duration_s: float, requests: int, error: str | None, answered: bool,
        info: Mapping[str, str] | None = None,
    ) -> None:  # fmt: skip
        self.polled.setdefault(device, []).append(self.now())
        super().record_poll(
            device, readings, failed_quantities, duration_s, requests, error, answered, info
        )


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks; q in 0..100."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


async def jitter(seconds: float, dead: int | None, units: int = 8, baudrate: int = 38400,
                 interval_s: float = 0.5, timeout_s: float = 0.3) -> dict[str, object]:  # fmt: skip
    """Poll periods of the healthy meters on one RTU line, with `dead` SILENT or all healthy."""
    devices = _devices("sdm630", units, interval_s)
    state = RecordingState()
    silent = () if dead is None else (dead,)
    with tempfile.TemporaryDirectory() as tmp, PtyPair(Path(tmp)) as pty, SimProcess(
        "sdm630", units, "--serial", str(pty.device_end), "--baud", str(baudrate), silent=silent
    ):  # fmt: skip
        bus = serial_bus(str(pty.agent_end), baudrate, timeout_s)
        await _drive(bus, devices, state, None, seconds)
    watched = [d.id for d in devices if d.unit_id != (dead or 4)]  # the same 7 in both runs
    periods = [
        later - earlier
        for device in watched
        for earlier, later in itertools.pairwise(state.polled.get(device, [])[1:])
    ]
    result: dict[str, object] = {
        "dead_unit": dead, "seconds": seconds, "units": units, "baudrate": baudrate,
        "interval_s": interval_s, "timeout_s": timeout_s, "healthy_devices": len(watched),
        "periods": len(periods), "p50_s": percentile(periods, 50),
        "p99_s": percentile(periods, 99), "max_s": max(periods, default=math.nan),
        "min_s": min(periods, default=math.nan),
    }  # fmt: skip
    if dead is not None:
        health = state.snapshot().health[devices[dead - 1].id]
        timeouts = health.errors_total.get("timeout", 0)
        result |= {"dead_requests": health.requests_total, "dead_timeouts": timeouts,
                   "dead_bus_time_s": timeouts * timeout_s,
                   "dead_requests_without_backoff": math.ceil(seconds / interval_s)}  # fmt: skip
    return result
