"""One worker per physical bus: it alone talks on that bus, so requests never overlap.

The worker polls its devices on their own intervals, earliest due first, and applies queued
setpoint writes between polls. A device that stops answering is backed off (its interval
doubles per failure up to a cap) and then probed with one small read, so that a dead unit on a
shared line costs the others at most one timeout per back-off period. Connecting is ours to
retry: pymodbus' own reconnect is switched off because its delays grow to minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

from agent.config import Device, SerialBus, TcpBus
from agent.drivers.line_activity import GarbleAwareClient, LineActivity
from agent.drivers.modbus_device import ModbusDevice, PollResult
from agent.drivers.pylontech_link import PylontechLink
from agent.drivers.rtu_pacing import PacedReader, character_bits, inter_frame_gap_s
from agent.drivers.setpoints import check_setpoint, write_setpoint
from agent.state import SiteState

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
WRITE_RETRY_S = 1.0  # a failed write is tried again at the next control cycle
# Errors that mean the device did not answer at all: it counts as down.
SILENT_ERRORS = frozenset({"timeout", "connection"})
# Errors that cost the bus a whole timeout; a device causing them is backed off.
BACKOFF_ERRORS = SILENT_ERRORS | {"garbage"}


class PolledDevice(Protocol):
    """What a worker needs of a device, whatever protocol it speaks."""

    config: Device

    @property
    def id(self) -> str: ...

    def max_age_s(self) -> dict[str, float]: ...

    def all_quantities(self) -> list[str]: ...

    async def poll(self, link: Any) -> PollResult: ...

    async def probe(self, link: Any) -> PollResult: ...


class Link(Protocol):
    """A bus connection: a pymodbus client or a serial protocol's line."""

    @property
    def connected(self) -> bool: ...

    async def connect(self) -> bool: ...

    def close(self) -> None: ...


def make_link(bus: SerialBus | TcpBus, trace_packet: Callable[[bool, bytes], bytes]) -> Any:
    """The connection for a bus, with pymodbus' own retries and reconnects off."""
    if isinstance(bus, TcpBus):
        return AsyncModbusTcpClient(
            bus.host,
            port=bus.port,
            timeout=bus.timeout_s,
            retries=0,
            reconnect_delay=0,
            trace_packet=trace_packet,
        )
    if bus.protocol == "pylontech":
        return PylontechLink(bus)
    return AsyncModbusSerialClient(
        bus.port,
        baudrate=bus.baudrate,
        parity=bus.parity.value,
        stopbits=bus.stopbits,
        bytesize=bus.bytesize,
        timeout=bus.timeout_s,
        retries=0,
        reconnect_delay=0,
        trace_packet=trace_packet,
    )


def modbus_reader(bus: SerialBus | TcpBus, link: Any, activity: LineActivity) -> Any:
    """What devices talk through: garbled replies told from silence, RTU frames paced."""
    if isinstance(bus, SerialBus) and bus.protocol != "modbus":
        return link
    reader = GarbleAwareClient(link, activity)
    if isinstance(bus, TcpBus):
        return reader
    bits = character_bits(bus.bytesize, bus.parity.value, bus.stopbits)
    return PacedReader(reader, inter_frame_gap_s(bus.baudrate, bits))


class _Schedule:
    """When each device is due next, and how far it is backed off."""

    def __init__(
        self, device: PolledDevice, interval_s: float, first_due: float, max_backoff_s: float
    ) -> None:
        self.device = device
        self.interval_s = interval_s
        self.max_backoff_s = max_backoff_s
        self.due = first_due
        self.failures = 0

    def after_poll(self, now: float, failed: bool) -> None:
        interval = self.interval_s
        if failed:
            self.failures += 1
            backed_off = interval * 2 ** (self.failures - 1)
            interval = min(backed_off, max(self.max_backoff_s, interval))
        else:
            self.failures = 0
        # Keep the cadence when on time; never try to catch up on missed polls.
        self.due = max(self.due + interval, now) if not failed else now + interval


@dataclass(slots=True)
class _PendingWrite:
    device: ModbusDevice
    setpoint: str
    value: float
    not_before: float


class BusWorker:
    """Owns one bus connection and polls the devices behind it, one request at a time."""

    def __init__(
        self,
        bus: SerialBus | TcpBus,
        devices: Sequence[PolledDevice],
        state: SiteState,
        link_factory: Callable[[SerialBus | TcpBus, Callable[[bool, bytes], bytes]], Any] = (
            make_link
        ),
        max_backoff_s: float = MAX_BACKOFF_S,
    ) -> None:
        self.bus = bus
        self.state = state
        self._link_factory = link_factory
        self._link: Any = None
        self._activity = LineActivity()
        self._reader: Any = None  # what devices talk through: the link, paced on RTU lines
        now = state.now()
        self._schedules = [
            _Schedule(device, device.config.poll_interval_s, now, max_backoff_s)
            for device in devices
        ]
        self._pending: dict[tuple[str, str], _PendingWrite] = {}
        self._wake = asyncio.Event()
        for device in devices:
            state.register_device(device.id, device.max_age_s())

    @property
    def devices(self) -> list[PolledDevice]:
        return [s.device for s in self._schedules]

    def submit_write(self, device_id: str, setpoint: str, value: float) -> None:
        """Queue a setpoint; raises SetpointError at once if the profile does not allow it.

        A newer value for the same setpoint replaces one still waiting.
        """
        device = next((d for d in self.devices if d.id == device_id), None)
        if not isinstance(device, ModbusDevice):
            raise KeyError(f"no writable device {device_id!r} on bus {self.bus.name}")
        check_setpoint(device.profile, setpoint, value)
        self._pending[(device_id, setpoint)] = _PendingWrite(device, setpoint, value, 0.0)
        self._wake.set()

    async def run(self) -> None:
        """Poll forever; only cancellation ends it."""
        if not self._schedules:
            return
        try:
            while True:
                await self._apply_writes()
                schedule = min(self._schedules, key=lambda s: s.due)
                delay = schedule.due - self.state.now()
                if delay > 0:
                    await self._sleep(delay)
                    continue  # a write may have arrived; look again
                await self._poll(schedule)
        finally:
            self._close()

    async def _sleep(self, delay: float) -> None:
        self._wake.clear()
        retry = min((w.not_before for w in self._pending.values()), default=None)
        if retry is not None:
            delay = min(delay, max(retry - self.state.now(), 0.0))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def _apply_writes(self) -> None:
        now = self.state.now()
        for key, pending in list(self._pending.items()):
            if pending.not_before > now:
                continue
            reader = await self._connected_reader()
            device = pending.device
            setpoint = device.profile.setpoint(pending.setpoint)
            if reader is None:
                ok, reason, requests = False, "connection", 0
            else:
                outcome = await write_setpoint(
                    reader, device.config.unit_id, setpoint, pending.value, device.scale_factors
                )
                ok, reason, requests = outcome.ok, outcome.reason, outcome.requests
            if self._pending.get(key) is pending:
                if ok:
                    del self._pending[key]
                else:
                    pending.not_before = self.state.now() + WRITE_RETRY_S
            self.state.record_write(device.id, pending.setpoint, ok, reason, requests)
            if not ok:
                log.warning(
                    "%s: writing %s = %g failed (%s); retrying next cycle",
                    device.id, pending.setpoint, pending.value, reason,
                )  # fmt: skip

    async def _poll(self, schedule: _Schedule) -> None:
        device = schedule.device
        started = self.state.now()
        reader = await self._connected_reader()
        if reader is None:
            result = PollResult(error="connection")
            result.failed.extend(device.all_quantities())
        elif schedule.failures > 0:
            # Backed off: one small read first, a full poll only if it is answered.
            result = await device.probe(reader)
            if result.error is None:
                probe_requests = result.requests
                result = await device.poll(reader)
                result.requests += probe_requests
        else:
            result = await device.poll(reader)
        if result.error == "connection":
            self._close()  # start from a fresh socket next time
        finished = self.state.now()
        silent = result.error in SILENT_ERRORS
        self.state.record_poll(
            device.id,
            result.readings,
            result.failed,
            duration_s=finished - started,
            requests=result.requests,
            error=result.error,
            answered=not silent,
            info=result.info,
        )
        backs_off = result.error in BACKOFF_ERRORS
        if backs_off and schedule.failures == 0:
            log.warning("%s on %s: not answering (%s)", device.id, self.bus.name, result.error)
        elif not backs_off and schedule.failures > 0:
            log.info("%s on %s: answering again", device.id, self.bus.name)
        schedule.after_poll(finished, failed=result.error in BACKOFF_ERRORS)

    async def _connected_reader(self) -> Any:
        """What to talk through, connecting first if needed; None if the bus is down."""
        if self._link is None:
            self._link = self._link_factory(self.bus, self._activity.trace)
            self._reader = modbus_reader(self.bus, self._link, self._activity)
        if not self._link.connected:
            try:
                connected = bool(await self._link.connect())
            except OSError as exc:
                log.debug("%s: connect failed: %s", self.bus.name, exc)
                connected = False
            if not connected:
                return None
        return self._reader

    def _close(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None
            self._reader = None
