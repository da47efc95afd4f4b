"""Telling a garbled reply from no reply at all.

pymodbus reports a reply with a bad CRC, line noise, a wrong transaction id or a cut-off frame
exactly as it reports silence: `ModbusIOException` after the timeout. For a technician the two
mean different things (a wiring or termination fault versus a dead or mis-addressed unit), so
the bus worker watches the bytes that arrive, through pymodbus' `trace_packet` hook, and a
failed request during which bytes did arrive is re-raised as `GarbledReply`.
"""

from __future__ import annotations

from typing import Any

from pymodbus.exceptions import ModbusException, ModbusIOException


class GarbledReply(ModbusException):
    """Bytes came back, but not a reply pymodbus could accept."""


class LineActivity:
    """Counts bytes received on a link; pass `trace` as the client's trace_packet."""

    def __init__(self) -> None:
        self.received = 0

    def trace(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            self.received += len(data)
        return data


class GarbleAwareClient:
    """Wraps a client; a timeout with bytes received becomes `GarbledReply`."""

    def __init__(self, client: Any, activity: LineActivity) -> None:
        self._client = client
        self._activity = activity

    async def read_holding_registers(self, address: int, *, count: int, device_id: int) -> Any:
        return await self._watch(self._client.read_holding_registers(
            address, count=count, device_id=device_id
        ))  # fmt: skip

    async def read_input_registers(self, address: int, *, count: int, device_id: int) -> Any:
        return await self._watch(self._client.read_input_registers(
            address, count=count, device_id=device_id
        ))  # fmt: skip

    async def write_registers(self, address: int, values: list[int], *, device_id: int) -> Any:
        return await self._watch(self._client.write_registers(address, values, device_id=device_id))

    async def _watch(self, request: Any) -> Any:
        before = self._activity.received
        try:
            return await request
        except ModbusIOException as exc:
            if self._activity.received > before:
                raise GarbledReply(f"unusable reply: {exc}") from exc
            raise
