"""Writing a setpoint: range check before the bus, constant preparation writes, read-back.

The range check runs before anything is queued, so a value outside the profile's range is
refused at the caller and never reaches a device. Everything after that can fail on the bus;
a failure is reported, and the bus worker keeps the write pending for the next cycle.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

from agent.drivers.modbus_device import RegisterClient, RequestFailed, read_registers, send_request
from agent.drivers.profile import (
    DeviceProfile,
    Encoding,
    FieldRole,
    PollClass,
    RegisterField,
    RegisterKind,
    SetpointField,
)
from agent.drivers.registers import DecodeError, EncodeError, apply_scale, decode_raw, encode_value

log = logging.getLogger(__name__)


class SetpointError(ValueError):
    """A setpoint the profile does not allow: unknown name or out of range."""


def check_setpoint(profile: DeviceProfile, name: str, value: float) -> SetpointField:
    """The profile's setpoint if `value` may be written to it; raises SetpointError if not."""
    try:
        setpoint = profile.setpoint(name)
    except KeyError:
        allowed = ", ".join(s.name for s in profile.setpoints) or "none"
        raise SetpointError(
            f"{profile.name} has no setpoint {name!r} (it has: {allowed})"
        ) from None
    if not math.isfinite(value) or not setpoint.minimum <= value <= setpoint.maximum:
        raise SetpointError(
            f"{name} = {value} is outside {setpoint.minimum:g}..{setpoint.maximum:g} "
            f"allowed by {profile.name}"
        )
    return setpoint


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    ok: bool
    requests: int
    reason: str = ""  # failed, readback_mismatch, timeout, exception, ...


async def write_setpoint(
    client: RegisterClient,
    unit_id: int,
    setpoint: SetpointField,
    value: float,
    scale_factors: Mapping[str, float],
) -> WriteOutcome:
    """Write prepare constants, then the value, then read it back if the profile says so."""
    requests = 0
    try:
        for constant in setpoint.prepare:
            requests += 1
            address = _address(constant.address)
            await _write(client, unit_id, address, constant.encoding, constant.value, scale_factors)
        requests += 1
        address = _address(setpoint.address)
        await _write(client, unit_id, address, setpoint.encoding, value, scale_factors)
        if not setpoint.readback:
            return WriteOutcome(True, requests)
        requests += 1
        words = await read_registers(
            client, RegisterKind.HOLDING, address, setpoint.encoding.words, unit_id
        )
    except RequestFailed as exc:
        return WriteOutcome(False, requests, exc.reason)
    except EncodeError as exc:
        log.warning("setpoint %s: %s", setpoint.name, exc)
        return WriteOutcome(False, requests, "encode")
    expected = encode_value(value, setpoint.encoding, _sf(setpoint.encoding, scale_factors))
    if words != expected:
        shown = _shown(words, setpoint.encoding, scale_factors)
        log.warning("setpoint %s: wrote %s, device shows %s", setpoint.name, value, shown)
        return WriteOutcome(False, requests, "readback_mismatch")
    return WriteOutcome(True, requests)


async def _write(
    client: RegisterClient,
    unit_id: int,
    address: int,
    encoding: Encoding,
    value: float,
    scale_factors: Mapping[str, float],
) -> None:
    words = encode_value(value, encoding, _sf(encoding, scale_factors))
    request = client.write_registers(address, words, device_id=unit_id)
    await send_request(request, f"writing {address}")


def _sf(encoding: Encoding, scale_factors: Mapping[str, float]) -> float | None:
    if encoding.scale_factor is None:
        return None
    if encoding.scale_factor not in scale_factors:
        raise EncodeError(f"scale factor {encoding.scale_factor} not read yet")
    return scale_factors[encoding.scale_factor]


def _shown(words: list[int], encoding: Encoding, scale_factors: Mapping[str, float]) -> str:
    probe = RegisterField("readback", FieldRole.HELPER, 0, RegisterKind.HOLDING, encoding,
                          PollClass.ONCE)  # fmt: skip
    try:
        return (
            f"{apply_scale(decode_raw(probe, 0, words), encoding, _sf(encoding, scale_factors)):g}"
        )
    except (DecodeError, EncodeError):
        return str(words)


def _address(address: int | None) -> int:
    if address is None:
        raise EncodeError("setpoint has no address (profile not bound)")
    return address
