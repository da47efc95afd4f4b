"""Finding a SunSpec device's models: the "SunS" marker, then the chain of model headers.

Where a model sits depends on which models the device implements and in which order, so the
agent asks the device once at start-up. Marker, bases and header layout follow the SunSpec
Information Model Specification (marker 0x5375 0x6E53 = "SunS"; each model starts with its ID
and its length L in registers, excluding those two; the chain ends with ID 0xFFFF).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from agent.drivers.modbus_device import RegisterReader, RequestFailed, read_registers
from agent.drivers.profile import RegisterKind

log = logging.getLogger(__name__)

SUNSPEC_BASES: tuple[int, ...] = (40000, 0, 50000)  # wire addresses, in the order tried
SUNS_MARKER: tuple[int, int] = (0x5375, 0x6E53)
END_MODEL_ID = 0xFFFF
MAX_MODELS = 100  # a real device has a handful; more means the chain loops or is garbage
LAST_ADDRESS = 0xFFFF

Reason = Literal["timeout", "connection", "exception", "not_sunspec", "garbage"]
# A failed read's error class, as a discovery failure (a short reply is garbage here).
_REASONS: dict[str, Reason] = {
    "connection": "connection",
    "timeout": "timeout",
    "garbage": "garbage",
    "short_reply": "garbage",
}


class DiscoveryError(Exception):
    """Discovery failed; `reason` is the error class the bus worker counts and backs off on."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason: Reason = reason


@dataclass(frozen=True, slots=True)
class ModelInstance:
    id: int
    start: int  # wire address of the model's ID register; a point is at start + its offset
    length: int  # the device's L: registers after the ID and L registers


@dataclass(frozen=True, slots=True)
class SunSpecChain:
    base: int  # where the "SunS" marker was found
    models: tuple[ModelInstance, ...]

    @property
    def model_ids(self) -> tuple[int, ...]:
        return tuple(m.id for m in self.models)

    def find(self, preferred: Sequence[int]) -> ModelInstance | None:
        """The device's instance of the first model in `preferred` it has (e.g. 103, 102, 101)."""
        for model_id in preferred:
            for model in self.models:
                if model.id == model_id:
                    return model
        return None


async def discover(reader: RegisterReader, unit_id: int) -> SunSpecChain:
    """Locate the marker at 40000, 0 or 50000 and walk the model chain behind it."""
    for base in SUNSPEC_BASES:
        registers = await _read_or_none(reader, base, unit_id)
        if registers is not None and tuple(registers) == SUNS_MARKER:
            return SunSpecChain(base, await _walk(reader, base, unit_id))
        log.debug("unit %d: no SunSpec marker at %d", unit_id, base)
    raise DiscoveryError(
        "not_sunspec", f"unit {unit_id}: no SunS marker at any of {list(SUNSPEC_BASES)}"
    )


async def _walk(reader: RegisterReader, base: int, unit_id: int) -> tuple[ModelInstance, ...]:
    models: list[ModelInstance] = []
    address = base + 2
    while True:
        if address + 1 > LAST_ADDRESS:
            raise DiscoveryError(
                "garbage", f"unit {unit_id}: model chain runs past address 65535 at {address}"
            )
        registers = await _read_or_none(reader, address, unit_id)
        if registers is None:
            raise DiscoveryError(
                "exception", f"unit {unit_id}: exception response reading the model at {address}"
            )
        model_id, length = registers
        if model_id == END_MODEL_ID:
            return tuple(models)
        if model_id == 0:
            raise DiscoveryError(
                "garbage", f"unit {unit_id}: model id 0 at {address} (chain without end marker?)"
            )
        if len(models) == MAX_MODELS:
            raise DiscoveryError(
                "garbage", f"unit {unit_id}: more than {MAX_MODELS} models from base {base}"
            )
        models.append(ModelInstance(model_id, address, length))
        address += 2 + length


async def _read_or_none(reader: RegisterReader, address: int, unit_id: int) -> list[int] | None:
    """Two holding registers, or None for an exception response (the address is not there)."""
    try:
        return await read_registers(reader, RegisterKind.HOLDING, address, 2, unit_id)
    except RequestFailed as exc:
        if exc.reason == "exception":
            log.debug("unit %d: %s", unit_id, exc)
            return None
        reason = _REASONS.get(exc.reason, "garbage")
        raise DiscoveryError(reason, f"unit {unit_id}: {exc} at {address}") from exc
