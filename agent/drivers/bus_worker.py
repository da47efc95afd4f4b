"""One worker per physical bus: it alone talks on that bus, so requests never overlap.

The worker polls its devices on their own intervals, earliest due first. A device that fails
is backed off (its interval doubles per failure up to a cap) so that a dead unit on a shared
line costs the others at most one timeout per back-off period. Connecting is ours to retry:
pymodbus' own reconnect is switched off because its delays grow to minutes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

from agent.config import SerialBus, TcpBus
from agent.drivers.modbus_device import ModbusDevice, PollResult, RegisterReader
from agent.drivers.rtu_pacing import PacedReader, character_bits, inter_frame_gap_s
from agent.state import SiteState

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
# Errors that mean the device did not answer at all; only these back a device off.
SILENT_ERRORS = frozenset({"timeout", "connection"})


def make_client(bus: SerialBus | TcpBus) -> Any:
    """A pymodbus async client for the bus, with pymodbus' own retries and reconnects off."""
    if isinstance(bus, TcpBus):
        return AsyncModbusTcpClient(
            bus.host, port=bus.port, timeout=bus.timeout_s, retries=0, reconnect_delay=0
        )
    return AsyncModbusSerialClient(
        bus.port,
        baudrate=bus.baudrate,
        parity=bus.parity.value,
        stopbits=bus.stopbits,
        bytesize=bus.bytesize,
        timeout=bus.timeout_s,
        retries=0,
        reconnect_delay=0,
    )


class _Schedule:
    """When each device is due next, and how far it is backed off."""

    def __init__(self, device: ModbusDevice, first_due: float) -> None:
        self.device = device
        self.due = first_due
        self.failures = 0

    def after_poll(self, now: float, failed: bool) -> None:
        interval = self.device.config.poll_interval_s
        if failed:
            self.failures += 1
            interval = min(interval * 2 ** (self.failures - 1), max(MAX_BACKOFF_S, interval))
        else:
            self.failures = 0
        # Keep the cadence when on time; never try to catch up on missed polls.
        self.due = max(self.due + interval, now) if not failed else now + interval


class BusWorker:
    """Owns one bus client and polls the devices behind it, one request at a time."""

    def __init__(
        self,
        bus: SerialBus | TcpBus,
        devices: Sequence[ModbusDevice],
        state: SiteState,
        client_factory: Callable[[SerialBus | TcpBus], Any] = make_client,
    ) -> None:
        self.bus = bus
        self.state = state
        self._client_factory = client_factory
        self._client: Any = None
        self._reader: RegisterReader | None = None  # the client, paced on RTU lines
        now = state.now()
        self._schedules = [_Schedule(device, now) for device in devices]
        for device in devices:
            state.register_device(device.id, device.max_age_s())

    async def run(self) -> None:
        """Poll forever; only cancellation ends it."""
        if not self._schedules:
            return
        try:
            while True:
                schedule = min(self._schedules, key=lambda s: s.due)
                delay = schedule.due - self.state.now()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self._poll(schedule)
        finally:
            self._close()

    async def _poll(self, schedule: _Schedule) -> None:
        device = schedule.device
        started = self.state.now()
        reader = await self._connected_reader()
        if reader is not None:
            result = await device.poll(reader)
        else:
            all_quantities = [f.quantity for f in device.profile.fields]
            result = PollResult(failed=all_quantities, error="connection")
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
        )
        if silent and schedule.failures == 0:
            log.warning("%s on %s: not answering (%s)", device.id, self.bus.name, result.error)
        elif not silent and schedule.failures > 0:
            log.info("%s on %s: answering again", device.id, self.bus.name)
        schedule.after_poll(finished, failed=silent)

    def _pace(self, client: RegisterReader) -> RegisterReader:
        """The client itself on TCP; on RTU, the client paced to the inter-frame gap."""
        if not isinstance(self.bus, SerialBus):
            return client
        bits = character_bits(self.bus.bytesize, self.bus.parity.value, self.bus.stopbits)
        return PacedReader(client, inter_frame_gap_s(self.bus.baudrate, bits))

    async def _connected_reader(self) -> RegisterReader | None:
        """The reader to poll through, connecting first if needed; None if the bus is down."""
        if self._client is None:
            self._client = self._client_factory(self.bus)
            self._reader = self._pace(self._client)
        if not self._client.connected:
            try:
                connected = bool(await self._client.connect())
            except OSError as exc:
                log.debug("%s: connect failed: %s", self.bus.name, exc)
                connected = False
            if not connected:
                return None
        return self._reader

    def _close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
            self._reader = None
