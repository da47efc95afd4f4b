"""Faults a simulated Modbus device can show on demand, the way field devices misbehave.

Every simulated device owns a `FaultSwitch` and calls `await switch.apply()` at the top of its
pymodbus `action` callback. Tests flip the switch while the device is being polled:

- `SILENT`: the device does not answer at all (a unit that lost power, a broken RS-485 pair).
  The server must be created with `ignore_missing_devices=True`: raising pymodbus'
  `NoSuchIdException` from the action then sends nothing, and the client times out.
- `EXCEPTION`: a Modbus exception response (by default 0x04 device failure).
- `SLOW`: the answer comes after `delay_s` (a busy gateway, a device near its timeout).
- `NONE`: normal service. "Disappears and comes back" is SILENT, then NONE.

Garbage frames (a reply that does not parse) cannot be produced from inside pymodbus' server;
`TcpFaultProxy` in `hil.devices.fault_proxy` sits between client and simulator for those.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException


class Fault(StrEnum):
    NONE = "none"
    SILENT = "silent"
    EXCEPTION = "exception"
    SLOW = "slow"


@dataclass(slots=True)
class FaultSwitch:
    """The fault a simulated device shows right now; mutate it from a test."""

    fault: Fault = Fault.NONE
    exception: ExcCodes = ExcCodes.DEVICE_FAILURE
    delay_s: float = 0.0
    requests_seen: int = 0  # every request addressed to the device, answered or not

    def set(self, fault: Fault, *, delay_s: float = 0.0, exception: ExcCodes | None = None) -> None:
        self.fault = fault
        self.delay_s = delay_s
        if exception is not None:
            self.exception = exception

    def clear(self) -> None:
        self.set(Fault.NONE)

    async def apply(self) -> ExcCodes | None:
        """Act out the fault; returns an exception code to answer with, or None to go on."""
        self.requests_seen += 1
        if self.fault is Fault.SILENT:
            raise NoSuchIdException("simulated device is not answering")
        if self.fault is Fault.EXCEPTION:
            return self.exception
        if self.fault is Fault.SLOW:
            await asyncio.sleep(self.delay_s)
        return None
