"""One Modbus device: its profile's planned reads, executed on the bus client it is given.

A poll never raises for a device problem: an exception response, a timeout, a lost connection
or a garbage value comes back as a `PollResult` with an error class, which the bus worker turns
into bad-quality readings, counters and back-off.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from agent.config import Device
from agent.drivers.profile import (
    DataType,
    DeviceProfile,
    FieldRole,
    PollClass,
    RegisterField,
    RegisterKind,
)
from agent.drivers.registers import (
    MAX_REGISTERS_PER_READ,
    DecodeError,
    NotImplementedValue,
    ReadBlock,
    apply_scale,
    decode_raw,
    decode_text,
    plan_reads,
)
from agent.state import Reading

log = logging.getLogger(__name__)

SLOW_EVERY = 10  # slow fields (energy counters, temperatures) are read every tenth poll
STALE_SLACK_S = 1.0  # on top of three missed reads, for scheduling jitter


class RegisterReader(Protocol):
    """The part of a pymodbus async client a device needs; lets tests pass any reader."""

    async def read_holding_registers(self, address: int, *, count: int, device_id: int) -> Any: ...

    async def read_input_registers(self, address: int, *, count: int, device_id: int) -> Any: ...


class RegisterClient(RegisterReader, Protocol):
    """A reader that can also write holding registers (function 16)."""

    async def write_registers(self, address: int, values: list[int], *, device_id: int) -> Any: ...


class RequestFailed(Exception):
    """A read that got no usable reply; `reason` is the error class counted for it."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


async def send_request(request: Awaitable[Any], what: str) -> Any:
    """Await one request; every way it can fail becomes `RequestFailed` with an error class."""
    try:
        response = await request
    except ConnectionException as exc:
        raise RequestFailed("connection", str(exc)) from None
    except (ModbusIOException, TimeoutError) as exc:
        raise RequestFailed("timeout", str(exc)) from None
    except ModbusException as exc:
        raise RequestFailed("garbage", str(exc)) from None
    if response.isError():
        raise RequestFailed("exception", f"{response} {what}")
    return response


async def read_registers(
    client: RegisterReader, kind: RegisterKind, address: int, count: int, unit_id: int
) -> list[int]:
    """One read request; every way it can fail becomes `RequestFailed` with an error class."""
    read = (
        client.read_input_registers if kind is RegisterKind.INPUT else client.read_holding_registers
    )
    response = await send_request(
        read(address, count=count, device_id=unit_id), f"at {kind} {address}"
    )
    registers = list(getattr(response, "registers", []))
    if len(registers) < count:
        raise RequestFailed("short_reply", f"{len(registers)} of {count} registers")
    return registers


@dataclass(slots=True)
class PollResult:
    readings: list[Reading] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # quantities that could not be read
    requests: int = 0
    error: str | None = None  # error class of the first failure: timeout, exception, ...
    info: dict[str, str] = field(default_factory=dict)  # text fields: serial number, ...

    def fail(self, reason: str, quantities: Sequence[str]) -> None:
        self.error = self.error or reason
        self.failed.extend(quantities)


Binder = Callable[[RegisterReader, PollResult], Awaitable[DeviceProfile | None]]
"""Finds a profile's addresses on the device (SunSpec discovery); None if it could not."""


class ModbusDevice:
    """Reads one configured device through its profile."""

    def __init__(
        self,
        config: Device,
        profile: DeviceProfile,
        monotonic: Callable[[], float],
        wall_clock: Callable[[], datetime],
        max_gap: int = MAX_REGISTERS_PER_READ,
        binder: Binder | None = None,
    ) -> None:
        self.config = config
        self.profile = profile
        self._monotonic = monotonic
        self._wall_clock = wall_clock
        self._max_gap = max_gap if profile.max_gap is None else min(max_gap, profile.max_gap)
        self._binder = binder
        self._polls = 0
        self.scale_factors: dict[str, float] = {}  # latest helper values, for setpoint writes
        self._missing: set[str] = set()  # fields the device marks as not implemented
        self._plans: dict[str, list[ReadBlock]] = {}
        if profile.bound:
            self._make_plans()

    @property
    def id(self) -> str:
        return self.config.id

    def _make_plans(self) -> None:
        fields = [f for f in self.profile.fields if f.name not in self._missing]
        fast = [f for f in fields if f.poll is PollClass.FAST]
        regular = [f for f in fields if f.poll is not PollClass.ONCE]
        self._plans = {
            "first": self._plan(fields, fields),
            "regular": self._plan(regular, fields),
            "fast": self._plan(fast, fields),
        }

    def _plan(self, due: list[RegisterField], every: list[RegisterField]) -> list[ReadBlock]:
        """Plan the due fields plus the scale-factor helpers they need."""
        wanted = {f.encoding.scale_factor for f in due if f.encoding.scale_factor}
        helpers = [f for f in every if f.name in wanted and f not in due]
        return plan_reads(due + helpers, self._max_gap, self.profile.barriers)

    def plan_for_this_poll(self) -> list[ReadBlock]:
        """Everything on the first poll; slow fields every tenth poll; fast fields always."""
        if self._polls == 0:
            return self._plans["first"]
        return self._plans["regular" if self._polls % SLOW_EVERY == 0 else "fast"]

    def max_age_s(self) -> dict[str, float]:
        """Per quantity, the age after which it is stale: three of its own reads missed."""
        interval = self.config.poll_interval_s
        ages = {}
        for field_ in self.profile.quantities():
            if field_.poll is PollClass.ONCE:
                ages[field_.name] = float("inf")  # nameplate data does not age
            else:
                every = 1 if field_.poll is PollClass.FAST else SLOW_EVERY
                ages[field_.name] = 3 * every * interval + STALE_SLACK_S
        return ages

    def all_quantities(self) -> list[str]:
        return [f.name for f in self.profile.quantities()]

    async def probe(self, client: RegisterReader) -> PollResult:
        """One small read, to learn whether a backed-off device answers again."""
        result = PollResult(requests=1)
        target = min(self.profile.fields, key=lambda f: (f.address is None, f.address or 0))
        address = target.address if target.address is not None else 40000
        try:
            await read_registers(client, target.kind, address, 1, self.config.unit_id)
        except RequestFailed as exc:
            if exc.reason != "exception":  # an exception reply is an answer
                result.fail(exc.reason, self.all_quantities())
        return result

    async def poll(self, client: RegisterReader) -> PollResult:
        result = PollResult()
        if not self.profile.bound and not await self._bind(client, result):
            return result
        plan = self.plan_for_this_poll()
        self._polls += 1
        blocks: list[tuple[ReadBlock, list[int]]] = []
        for index, block in enumerate(plan):
            result.requests += 1
            try:
                registers = await read_registers(
                    client, block.kind, block.address, block.count, self.config.unit_id
                )
            except RequestFailed as exc:
                log.debug("%s: %s", self.id, exc)
                if exc.reason in ("timeout", "connection"):
                    # The device is not answering: do not spend a timeout per block.
                    for rest in plan[index:]:
                        result.fail(exc.reason, _quantities(rest.fields))
                    break
                result.fail(exc.reason, _quantities(block.fields))
                continue
            blocks.append((block, registers))
        self._decode(blocks, result)
        return result

    async def _bind(self, client: RegisterReader, result: PollResult) -> bool:
        if self._binder is None:
            raise RuntimeError(f"{self.id}: profile {self.profile.name} is not bound")
        bound = await self._binder(client, result)
        if bound is None:
            result.fail(result.error or "exception", self.all_quantities())
            return False
        log.info("%s: %s found on the device", self.id, self.profile.name)
        self.profile = bound
        self._make_plans()
        return True

    def _decode(self, blocks: list[tuple[ReadBlock, list[int]]], result: PollResult) -> None:
        now_mono, now_wall = self._monotonic(), self._wall_clock()
        ordered = [(b, r, f) for b, r in blocks for f in b.fields]
        # Scale factors first: the values that use them may sit before them in the map.
        ordered.sort(key=lambda item: item[2].role is not FieldRole.HELPER)
        missing_before = len(self._missing)
        for block, registers, field_ in ordered:
            try:
                value = self._decode_one(field_, block, registers, result)
            except NotImplementedValue:
                self._missing.add(field_.name)
                log.info("%s: %s is not implemented by the device", self.id, field_.name)
                continue
            except DecodeError as exc:
                log.debug("%s: %s", self.id, exc)
                if field_.role is FieldRole.QUANTITY:
                    result.fail(exc.reason, [field_.name])
                continue
            if value is not None and field_.role is FieldRole.QUANTITY:
                result.readings.append(Reading(self.id, field_.name, value, now_mono, now_wall))
        if len(self._missing) > missing_before:
            self._make_plans()

    def _decode_one(
        self, field_: RegisterField, block: ReadBlock, registers: list[int], result: PollResult
    ) -> float | None:
        if field_.data_type is DataType.STRING:
            result.info[field_.name] = decode_text(field_, block.address, registers)
            return None
        raw = decode_raw(field_, block.address, registers)
        if field_.role is FieldRole.HELPER:
            self.scale_factors[field_.name] = raw
            return None
        sf_name = field_.encoding.scale_factor
        scale_factor = None
        if sf_name is not None:
            if sf_name not in self.scale_factors:
                raise DecodeError(f"{field_.name}: scale factor {sf_name} unknown")
            scale_factor = self.scale_factors[sf_name]
        value = apply_scale(raw, field_.encoding, scale_factor)
        if field_.role is FieldRole.INFO:
            result.info[field_.name] = f"{value:g}"
            return None
        return value


def _quantities(fields: Sequence[RegisterField]) -> list[str]:
    return [f.name for f in fields if f.role is FieldRole.QUANTITY]
