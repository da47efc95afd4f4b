"""From a register map to Modbus requests and back: read planning, decoding and encoding.

Planning merges neighbouring fields into as few requests as the Modbus limit of 125 registers,
the gap worth reading across and the device's barriers permit, because on a 9600-baud RS-485
line every request costs tens of milliseconds whatever its length.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agent.drivers.profile import DataType, Encoding, RegisterField, RegisterKind, WordOrder

MAX_REGISTERS_PER_READ = 125
TCP_MAX_GAP = 100  # on Ethernet a register costs ~nothing next to a round trip
DEVICE_TURNAROUND_S = 0.05  # what a typical RS-485 device takes to start answering


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One read request: a contiguous register range and the fields decoded from it."""

    kind: RegisterKind
    address: int
    count: int
    fields: tuple[RegisterField, ...]


def worthwhile_gap(baudrate: int | None, character_bits: int = 10) -> int:
    """Registers worth reading across rather than sending another request.

    A new RTU request costs its 8-byte frame, the reply's 5 bytes of overhead, two 3.5-character
    silences and the device's turnaround; each register read across costs 2 characters.
    `baudrate=None` means Modbus TCP.
    """
    if baudrate is None:
        return TCP_MAX_GAP
    char_s = character_bits / baudrate
    request_chars = 8 + 5 + 7 + DEVICE_TURNAROUND_S / char_s
    return min(int(request_chars / 2), MAX_REGISTERS_PER_READ)


def plan_reads(
    fields: Iterable[RegisterField],
    max_gap: int,
    barriers: Sequence[tuple[int, int]] = (),
    max_count: int = MAX_REGISTERS_PER_READ,
) -> list[ReadBlock]:
    """Group fields into the fewest reads.

    A gap wider than `max_gap` or covering a barrier (registers the device refuses) starts a
    new read, as does a change of register kind or reaching 125 registers.
    """
    blocks: list[ReadBlock] = []
    ordered = sorted(fields, key=lambda f: (f.kind, f.start))
    current: list[RegisterField] = []
    for field in ordered:
        if current:
            first, last_end = current[0], max(f.end for f in current)
            fits = (
                field.kind == first.kind
                and field.start - last_end <= max_gap
                and field.end - first.start <= max_count
                and not _crosses(barriers, last_end, field.start)
            )
            if not fits:
                blocks.append(_block(current))
                current = []
        current.append(field)
    if current:
        blocks.append(_block(current))
    return blocks


def _crosses(barriers: Sequence[tuple[int, int]], gap_start: int, gap_end: int) -> bool:
    """Whether reading registers gap_start..gap_end-1 would touch a barrier."""
    return any(low < gap_end and high >= gap_start for low, high in barriers)


def _block(fields: list[RegisterField]) -> ReadBlock:
    start = fields[0].start
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
    DataType.ENUM16: ">H",
    DataType.BITFIELD16: ">H",
    DataType.BITFIELD32: ">I",
}

# SunSpec's "not implemented" values, per type (floats: NaN, refused anyway).
_NOT_IMPLEMENTED: dict[DataType, int] = {
    DataType.U16: 0xFFFF,
    DataType.S16: -0x8000,
    DataType.U32: 0xFFFFFFFF,
    DataType.S32: -0x80000000,
    DataType.U64: 0xFFFFFFFFFFFFFFFF,
    DataType.S64: -0x8000000000000000,
    DataType.ENUM16: 0xFFFF,
    DataType.BITFIELD16: 0xFFFF,
    DataType.BITFIELD32: 0xFFFFFFFF,
}


class DecodeError(ValueError):
    """The registers do not hold a usable value (short reply, NaN, infinity)."""

    reason = "decode"


class NotImplementedValue(DecodeError):
    """The device marks the value as not implemented (SunSpec 0x8000, 0xFFFF, ...)."""

    reason = "not_implemented"


def _words(encoding: Encoding, offset: int, registers: Sequence[int], name: str) -> list[int]:
    words = list(registers[offset : offset + encoding.words])
    if offset < 0 or len(words) != encoding.words:
        raise DecodeError(f"{name}: reply too short ({len(registers)} registers)")
    return words


def decode_raw(field: RegisterField, block_address: int, registers: Sequence[int]) -> float:
    """The field's number as stored, before scaling; markers and NaN raise."""
    words = _words(field.encoding, field.start - block_address, registers, field.name)
    if field.encoding.word_order is WordOrder.LITTLE:
        words.reverse()
    raw = b"".join(word.to_bytes(2, "big") for word in words)
    (value,) = struct.unpack(_STRUCT_CODES[field.data_type], raw)
    if field.encoding.not_implemented and value == _NOT_IMPLEMENTED.get(field.data_type):
        raise NotImplementedValue(f"{field.name}: not implemented by the device")
    number = float(value)
    if not math.isfinite(number):
        raise DecodeError(f"{field.name}: not a number ({number})")
    return number


def decode_text(field: RegisterField, block_address: int, registers: Sequence[int]) -> str:
    """A string field: two ASCII characters per register, NULs and padding stripped."""
    words = _words(field.encoding, field.start - block_address, registers, field.name)
    raw = b"".join(word.to_bytes(2, "big") for word in words)
    text = raw.split(b"\0", 1)[0].decode("ascii", errors="replace").strip()
    if not text and field.encoding.not_implemented:
        raise NotImplementedValue(f"{field.name}: not implemented by the device")
    return text


def apply_scale(raw: float, encoding: Encoding, scale_factor: float | None) -> float:
    """Raw register number to the quantity's unit: x scale, x 10^scale_factor."""
    value = raw * encoding.scale
    if scale_factor is not None:
        value *= 10.0**scale_factor
    return value


def decode_field(field: RegisterField, block_address: int, registers: Sequence[int]) -> float:
    """Decode one field with a fixed scale (no scale-factor register) into its unit."""
    return apply_scale(decode_raw(field, block_address, registers), field.encoding, None)


class EncodeError(ValueError):
    """A value that cannot be put into the registers as the profile describes them."""


def encode_value(value: float, encoding: Encoding, scale_factor: float | None = None) -> list[int]:
    """A value in its unit to registers: the inverse of decoding."""
    raw = value / encoding.scale
    if scale_factor is not None:
        raw /= 10.0**scale_factor
    code = _STRUCT_CODES.get(encoding.data_type)
    if code is None:
        raise EncodeError(f"cannot write a {encoding.data_type}")
    if encoding.data_type not in (DataType.F32, DataType.F64):
        raw = round(raw)
    try:
        packed = struct.pack(code, raw)
    except struct.error as exc:
        raise EncodeError(f"{value} does not fit a {encoding.data_type}: {exc}") from None
    words = [int.from_bytes(packed[i : i + 2], "big") for i in range(0, len(packed), 2)]
    if encoding.word_order is WordOrder.LITTLE:
        words.reverse()
    return words


def encode_float32(value: float, word_order: WordOrder = WordOrder.BIG) -> list[int]:
    """Two registers holding `value` as IEEE-754 float32 (used by simulated devices)."""
    return encode_value(value, Encoding(DataType.F32, word_order))
