"""From a register map to Modbus requests and back: read planning and value decoding.

Planning merges neighbouring fields into as few requests as the Modbus limit of 125 registers
and the profile's gap allowance permit, because on a 9600-baud RS-485 line every request costs
tens of milliseconds whatever its length.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agent.drivers.profile import DataType, RegisterField, RegisterKind, WordOrder

MAX_REGISTERS_PER_READ = 125


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One read request: a contiguous register range and the fields decoded from it."""

    kind: RegisterKind
    address: int
    count: int
    fields: tuple[RegisterField, ...]


def plan_reads(
    fields: Iterable[RegisterField],
    max_gap: int,
    max_count: int = MAX_REGISTERS_PER_READ,
) -> list[ReadBlock]:
    """Group fields into the fewest reads; a gap wider than `max_gap` starts a new read."""
    blocks: list[ReadBlock] = []
    ordered = sorted(fields, key=lambda f: (f.kind, f.address))
    current: list[RegisterField] = []
    for field in ordered:
        if current:
            first, last_end = current[0], max(f.end for f in current)
            fits = (
                field.kind == first.kind
                and field.address - last_end <= max_gap
                and field.end - first.address <= max_count
            )
            if not fits:
                blocks.append(_block(current))
                current = []
        current.append(field)
    if current:
        blocks.append(_block(current))
    return blocks


def _block(fields: list[RegisterField]) -> ReadBlock:
    start = fields[0].address
    end = max(f.end for f in fields)
    return ReadBlock(fields[0].kind, start, end - start, tuple(fields))


_STRUCT_CODES: dict[DataType, str] = {
    DataType.U16: ">H",
    DataType.S16: ">h",
    DataType.U32: ">I",
    DataType.S32: ">i",
    DataType.U64: ">Q",
    DataType.S64: ">q",
    DataType.F32: ">f",
    DataType.F64: ">d",
}


class DecodeError(ValueError):
    """The registers do not hold a usable value (short reply, NaN, infinity)."""


def decode_field(field: RegisterField, block_address: int, registers: Sequence[int]) -> float:
    """Decode one field from the registers of the block it was read in, scaled to its unit."""
    offset = field.address - block_address
    words = list(registers[offset : offset + field.data_type.words])
    if len(words) != field.data_type.words:
        raise DecodeError(f"{field.quantity}: reply too short ({len(registers)} registers)")
    if field.word_order is WordOrder.LITTLE:
        words.reverse()
    raw = b"".join(word.to_bytes(2, "big") for word in words)
    (value,) = struct.unpack(_STRUCT_CODES[field.data_type], raw)
    number = float(value)
    if not math.isfinite(number):
        raise DecodeError(f"{field.quantity}: not a number ({number})")
    return number * field.scale


def encode_float32(value: float, word_order: WordOrder = WordOrder.BIG) -> list[int]:
    """Two registers holding `value` as IEEE-754 float32 (used by simulated devices)."""
    raw = struct.pack(">f", value)
    words = [int.from_bytes(raw[0:2], "big"), int.from_bytes(raw[2:4], "big")]
    if word_order is WordOrder.LITTLE:
        words.reverse()
    return words
