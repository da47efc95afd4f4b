"""One Modbus device: its profile's planned reads, executed on the bus client it is given.

A poll never raises for a device problem: an exception response, a timeout, a lost connection
or a garbage value comes back as a `PollResult` with an error class, which the bus worker turns
into bad-quality readings, counters and back-off.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from agent.config import Device
from agent.drivers.profile import DeviceProfile, PollClass, RegisterKind
from agent.drivers.registers import DecodeError, ReadBlock, decode_field, plan_reads
from agent.state import Reading

log = logging.getLogger(__name__)

SLOW_EVERY = 10  # slow fields (energy counters, temperatures) are read every tenth poll
STALE_SLACK_S = 1.0  # on top of three missed reads, for scheduling jitter


class RegisterReader(Protocol):
    """The part of a pymodbus async client a device needs; lets tests pass any reader."""

    async def read_holding_registers(self, address: int, *, count: int, device_id: int) -> Any: ...

    async def read_input_registers(self, address: int, *, count: int, device_id: int) -> Any: ...


@dataclass(slots=True)
class PollResult:
    readings: list[Reading] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # quantities that could not be read
    requests: int = 0
    error: str | None = None  # error class of the first failure: timeout, exception, ...


class ModbusDevice:
    """Reads one configured device through its profile."""

    def __init__(
        self,
        config: Device,
        profile: DeviceProfile,
        monotonic: Callable[[], float],
        wall_clock: Callable[[], datetime],
    ) -> None:
        self.config = config
        self.profile = profile
        self._monotonic = monotonic
        self._wall_clock = wall_clock
        self._polls = 0
        fast = [f for f in profile.fields if f.poll is PollClass.FAST]
        regular = [f for f in profile.fields if f.poll is not PollClass.ONCE]
        self._plan_fast = plan_reads(fast, profile.max_gap)
        self._plan_regular = plan_reads(regular, profile.max_gap)
        self._plan_first = plan_reads(profile.fields, profile.max_gap)

    @property
    def id(self) -> str:
        return self.config.id

    def plan_for_this_poll(self) -> list[ReadBlock]:
        """Everything on the first poll; slow fields every tenth poll; fast fields always."""
        if self._polls == 0:
            return self._plan_first
        return self._plan_regular if self._polls % SLOW_EVERY == 0 else self._plan_fast

    def max_age_s(self) -> dict[str, float]:
        """Per quantity, the age after which it is stale: three of its own reads missed."""
        interval = self.config.poll_interval_s
        ages = {}
        for field_ in self.profile.fields:
            if field_.poll is PollClass.ONCE:
                ages[field_.quantity] = float("inf")  # nameplate data does not age
            else:
                every = 1 if field_.poll is PollClass.FAST else SLOW_EVERY
                ages[field_.quantity] = 3 * every * interval + STALE_SLACK_S
        return ages

    async def poll(self, client: RegisterReader) -> PollResult:
        result = PollResult()
        plan = self.plan_for_this_poll()
        self._polls += 1
        for index, block in enumerate(plan):
            result.requests += 1
            error = await self._read_block(client, block, result)
            if error is not None:
                result.error = result.error or error
                if error in ("timeout", "connection"):
                    # The device is not answering: do not spend a timeout per block.
                    for rest in plan[index:]:
                        result.failed.extend(f.quantity for f in rest.fields)
                    break
                result.failed.extend(f.quantity for f in block.fields)
        return result

    async def _read_block(
        self, client: RegisterReader, block: ReadBlock, result: PollResult
    ) -> str | None:
        read = (
            client.read_input_registers
            if block.kind is RegisterKind.INPUT
            else client.read_holding_registers
        )
        try:
            response = await read(block.address, count=block.count, device_id=self.config.unit_id)
        except ConnectionException as exc:
            log.debug("%s: connection lost: %s", self.id, exc)
            return "connection"
        except (ModbusIOException, TimeoutError) as exc:
            log.debug("%s: no answer: %s", self.id, exc)
            return "timeout"
        except ModbusException as exc:
            log.debug("%s: bad reply: %s", self.id, exc)
            return "garbage"
        if response.isError():
            log.debug("%s: exception response %s at %d", self.id, response, block.address)
            return "exception"
        registers = list(getattr(response, "registers", []))
        if len(registers) < block.count:
            return "short_reply"
        now_mono, now_wall = self._monotonic(), self._wall_clock()
        error: str | None = None
        for field_ in block.fields:
            try:
                value = decode_field(field_, block.address, registers)
            except DecodeError as exc:
                log.debug("%s: %s", self.id, exc)
                result.failed.append(field_.quantity)
                error = "decode"
                continue
            result.readings.append(Reading(self.id, field_.quantity, value, now_mono, now_wall))
        if error is not None:
            result.error = result.error or error
        return None
