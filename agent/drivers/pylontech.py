"""Pylontech low-voltage BMS serial protocol: the pure frame codec.

Facts from Pylontech's "RS485-protocol-pylon-low-voltage" V3.3 (2018-08-21), which keeps the
frame of "PYLON LFP Battery communication protocol - RS485" V2.8 (2016-12-16):

    SOI  VER  ADR  CID1  CID2/RTN  LENGTH  INFO      CHKSUM  EOI
    '~'  2    2    2     2         4       LENID     4       CR     (ASCII characters)

Everything between SOI and EOI is hex ASCII, two characters per byte, upper case. CID1 is 0x46
(lithium iron battery); a request carries the command in CID2, a reply its return code (RTN).
LENGTH is LCHKSUM (4 bits) over LENID (12 bits, the number of ASCII characters in INFO), with
LCHKSUM the two's complement, mod 16, of the sum of LENID's three nibbles. CHKSUM is the two's
complement, mod 65536, of the sum of every ASCII character after SOI and before CHKSUM.

No I/O here: `pylontech_link` moves the bytes, `pylontech_info` reads a reply's INFO,
`pylontech_bms` turns it into readings.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

SOI = b"~"
EOI = b"\r"
CID1_BATTERY = 0x46
PROTOCOL_VERSION = 0x20  # VER 2.0, what V3.3 packs expect and answer with

_HEX = frozenset(b"0123456789ABCDEFabcdef")
_HEADER_CHARS = 12  # VER ADR CID1 RTN LENGTH
_CHECKSUM_CHARS = 4


class Command(IntEnum):
    GET_ANALOG_VALUES = 0x42
    GET_ALARM_INFO = 0x44
    GET_PROTOCOL_VERSION = 0x4F
    GET_MANUFACTURER_INFO = 0x51
    GET_CHARGE_MANAGEMENT = 0x92


class ReturnCode(IntEnum):
    NORMAL = 0x00
    VERSION_ERROR = 0x01
    CHECKSUM_ERROR = 0x02
    LENGTH_CHECKSUM_ERROR = 0x03
    CID2_INVALID = 0x04
    COMMAND_FORMAT_ERROR = 0x05
    INVALID_DATA = 0x06
    ADDRESS_ERROR = 0x90
    INTERNAL_COMMUNICATION_ERROR = 0x91  # between the master and a slave pack


_RTN_TEXT: dict[int, str] = {
    ReturnCode.NORMAL: "normal",
    ReturnCode.VERSION_ERROR: "version error",
    ReturnCode.CHECKSUM_ERROR: "checksum error",
    ReturnCode.LENGTH_CHECKSUM_ERROR: "LCHKSUM error",
    ReturnCode.CID2_INVALID: "CID2 invalid",
    ReturnCode.COMMAND_FORMAT_ERROR: "command format error",
    ReturnCode.INVALID_DATA: "invalid data",
    ReturnCode.ADDRESS_ERROR: "address error",
    ReturnCode.INTERNAL_COMMUNICATION_ERROR: "communication error between master and slave",
}


def rtn_text(code: int) -> str:
    return _RTN_TEXT.get(code, f"unknown return code 0x{code:02X}")


FrameErrorReason = Literal["garbage", "exception", "short_reply", "decode"]


class FrameError(Exception):
    """A reply we cannot use; `reason` is the poll error class it counts as.

    garbage: bad framing, non-hex characters, a checksum or LENGTH mismatch (line noise).
    exception: a well-formed reply whose RTN says the pack refused the request.
    short_reply / decode: a well-formed reply whose INFO is too short or makes no sense.
    """

    def __init__(self, reason: FrameErrorReason, message: str, rtn: int | None = None) -> None:
        super().__init__(message)
        self.reason: FrameErrorReason = reason
        self.rtn = rtn


@dataclass(frozen=True, slots=True)
class Response:
    version: int
    address: int
    cid1: int
    rtn: int
    info: bytes  # INFO decoded from hex ASCII


def frame_checksum(chars: bytes) -> int:
    """CHKSUM over the ASCII characters between SOI and the checksum itself."""
    return (~sum(chars) + 1) & 0xFFFF


def length_field(lenid: int) -> int:
    """LENGTH for an INFO of `lenid` ASCII characters: LCHKSUM nibble over the 12-bit LENID."""
    if not 0 <= lenid <= 0xFFF:
        raise ValueError(f"INFO of {lenid} characters does not fit LENID")
    nibbles = (lenid & 0xF) + ((lenid >> 4) & 0xF) + ((lenid >> 8) & 0xF)
    lchksum = (~nibbles + 1) & 0xF
    return (lchksum << 12) | lenid


def encode_command(
    address: int, command: int, info: bytes = b"", version: int = PROTOCOL_VERSION
) -> bytes:
    """A complete request frame, SOI to EOI."""
    for name, value in (("address", address), ("command", command), ("version", version)):
        if not 0 <= value <= 0xFF:
            raise ValueError(f"{name} {value} is not one byte")
    info_chars = info.hex().upper().encode("ascii")
    head = f"{version:02X}{address:02X}{CID1_BATTERY:02X}{command:02X}"
    body = head.encode("ascii") + f"{length_field(len(info_chars)):04X}".encode("ascii")
    body += info_chars
    return SOI + body + f"{frame_checksum(body):04X}".encode("ascii") + EOI


def encode_request(address: int, command: int) -> bytes:
    """The usual request: INFO is one byte, the address of the pack asked about."""
    return encode_command(address, command, bytes([address]))


def decode_response(frame: bytes) -> Response:
    """Check a reply frame from SOI to EOI and return its fields; FrameError if unusable."""
    if not frame.startswith(SOI) or not frame.endswith(EOI):
        raise FrameError("garbage", "frame does not run from '~' to CR")
    body = frame[1:-1]
    if len(body) < _HEADER_CHARS + _CHECKSUM_CHARS:
        raise FrameError("garbage", f"frame of {len(frame)} bytes is too short")
    if len(body) % 2 or any(char not in _HEX for char in body):
        raise FrameError("garbage", "frame holds characters that are not hex ASCII")
    expected = frame_checksum(body[:-_CHECKSUM_CHARS])
    received = int(body[-_CHECKSUM_CHARS:], 16)
    if received != expected:
        raise FrameError("garbage", f"CHKSUM {received:04X}, computed {expected:04X}")
    length = int(body[8:12], 16)
    lenid = length & 0xFFF
    if length != length_field(lenid):
        raise FrameError("garbage", f"LENGTH {length:04X} fails its LCHKSUM")
    info_chars = body[_HEADER_CHARS:-_CHECKSUM_CHARS]
    if len(info_chars) != lenid:
        raise FrameError("garbage", f"LENID {lenid}, INFO has {len(info_chars)} characters")
    version, address, cid1, rtn = bytes.fromhex(body[:8].decode("ascii"))
    if rtn != ReturnCode.NORMAL:
        raise FrameError("exception", f"pack answered RTN 0x{rtn:02X} ({rtn_text(rtn)})", rtn)
    if cid1 != CID1_BATTERY:
        raise FrameError("garbage", f"CID1 0x{cid1:02X} is not a battery reply")
    return Response(version, address, cid1, rtn, bytes.fromhex(info_chars.decode("ascii")))
