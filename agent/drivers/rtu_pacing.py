"""Modbus RTU frame spacing: the silent interval a line needs between two frames.

RTU marks the end of a frame by silence: 3.5 character times, or a fixed 1.75 ms above
19200 baud (Modbus over Serial Line v1.02, 2.5.1.1). pymodbus sends the next request as soon
as the previous reply is parsed, which some meters on a busy line read as one long garbled
frame, so the bus worker waits out the gap itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from agent.drivers.modbus_device import RegisterClient

FIXED_GAP_S = 0.00175
FIXED_GAP_ABOVE_BAUD = 19200


def character_bits(bytesize: int, parity: str, stopbits: int) -> int:
    """Bits on the wire per character: start bit, data, parity bit if any, stop bits."""
    return 1 + bytesize + (0 if parity == "N" else 1) + stopbits


def inter_frame_gap_s(baudrate: int, bits_per_character: int) -> float:
    if baudrate > FIXED_GAP_ABOVE_BAUD:
        return FIXED_GAP_S
    return 3.5 * bits_per_character / baudrate


class PacedReader:
    """Wraps a bus client so that no request starts within `gap_s` of the last frame."""

    def __init__(
        self, client: RegisterClient, gap_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self._gap_s = gap_s
        self._clock = clock
        self._line_quiet_since = float("-inf")

    async def read_holding_registers(self, address: int, *, count: int, device_id: int) -> Any:
        return await self._paced(self._client.read_holding_registers, address, count, device_id)

    async def read_input_registers(self, address: int, *, count: int, device_id: int) -> Any:
        return await self._paced(self._client.read_input_registers, address, count, device_id)

    async def write_registers(self, address: int, values: list[int], *, device_id: int) -> Any:
        return await self._paced(self._client.write_registers, address, values, device_id)

    async def _paced(
        self, request: Callable[..., Awaitable[Any]], address: int, what: Any, device_id: int
    ) -> Any:
        """Send after the gap; `what` is the count of a read or the values of a write."""
        wait = self._line_quiet_since + self._gap_s - self._clock()
        if wait > 0:
            await asyncio.sleep(wait)
        try:
            if isinstance(what, int):
                return await request(address, count=what, device_id=device_id)
            return await request(address, what, device_id=device_id)
        finally:
            # The reply (or the timeout) has ended: the line counts as quiet from here.
            self._line_quiet_since = self._clock()
