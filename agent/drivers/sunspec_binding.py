"""Binding a SunSpec profile to one device: discovery, then model + point to address.

The profile names points (`model = [103, 113]`, `point = "W"`); the device says which models it
has and where (`sunspec_discovery`); the SunSpec Alliance's model definitions say where each
point sits in its model and which scale factor it uses (`sunspec_models`). The result is a
plain bound profile the read planner can use, with the scale factors as helper fields.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from agent.drivers.modbus_device import Binder, PollResult, RegisterReader
from agent.drivers.profile import (
    DataType,
    DeviceProfile,
    Encoding,
    FieldRole,
    PollClass,
    ProfileError,
    RegisterField,
    RegisterKind,
    SunSpecPoint,
    WordOrder,
)
from agent.drivers.profile_parser import check_profile
from agent.drivers.sunspec_discovery import DiscoveryError, SunSpecChain, discover
from agent.drivers.sunspec_models import PointLayout, SunSpecLayoutError, resolve_point

log = logging.getLogger(__name__)

_TYPES: dict[str, DataType] = {
    "uint16": DataType.U16,
    "int16": DataType.S16,
    "uint32": DataType.U32,
    "int32": DataType.S32,
    "uint64": DataType.U64,
    "int64": DataType.S64,
    "acc16": DataType.U16,
    "acc32": DataType.U32,
    "acc64": DataType.U64,
    "float32": DataType.F32,
    "float64": DataType.F64,
    "sunssf": DataType.S16,
    "count": DataType.U16,
    "enum16": DataType.ENUM16,
    "enum32": DataType.U32,
    "bitfield16": DataType.BITFIELD16,
    "bitfield32": DataType.BITFIELD32,
    "string": DataType.STRING,
}


class _Located:
    """A point placed on the device: its address and how to decode it."""

    def __init__(self, model_id: int, start: int, point: PointLayout) -> None:
        self.model_id = model_id
        self.address = start + point.offset
        self.point = point
        data_type = _TYPES.get(point.type)
        if data_type is None:
            raise ProfileError(f"SunSpec type {point.type} of {point.name} is not supported")
        self.data_type = data_type


def bind_sunspec(profile: DeviceProfile, chain: SunSpecChain) -> DeviceProfile:
    """The profile with every point the device has placed; points it lacks are left out."""
    helpers: dict[str, RegisterField] = {}
    fields: list[RegisterField] = []
    for field_ in profile.fields:
        located = _locate(chain, field_.sunspec)
        if located is None:
            log.debug("%s: %s not on this device", profile.name, field_.name)
            continue
        encoding = _encoding(located, field_.encoding.scale, chain, helpers)
        fields.append(
            dataclasses.replace(
                field_,
                address=located.address,
                kind=RegisterKind.HOLDING,
                encoding=encoding,
                labels=field_.labels or dict(located.point.symbols or {}),
                sunspec=None,
            )
        )
    setpoints = []
    for setpoint in profile.setpoints:
        located = _locate(chain, setpoint.sunspec)
        if located is None:
            continue
        prepare = []
        for constant in setpoint.prepare:
            target = _locate(chain, constant.sunspec)
            if target is not None:
                encoding = _encoding(target, constant.encoding.scale, chain, helpers)
                prepare.append(
                    dataclasses.replace(
                        constant, address=target.address, encoding=encoding, sunspec=None
                    )
                )
        setpoints.append(
            dataclasses.replace(
                setpoint,
                address=located.address,
                encoding=_encoding(located, setpoint.encoding.scale, chain, helpers),
                prepare=tuple(prepare),
                sunspec=None,
            )
        )
    known = {f.name for f in fields}
    fields.extend(h for name, h in helpers.items() if name not in known)
    bound = profile.replace(fields=tuple(fields), setpoints=tuple(setpoints))
    check_profile(bound, f"profiles/{profile.name}.toml bound to models {chain.model_ids}")
    return bound


def _locate(chain: SunSpecChain, where: SunSpecPoint | None) -> _Located | None:
    if where is None:
        return None
    instance = chain.find(where.models)
    if instance is None:
        return None
    try:
        point = resolve_point(instance.id, where.point, instance.length)
    except SunSpecLayoutError as exc:
        log.debug("%s", exc)
        return None
    return _Located(instance.id, instance.start, point)


def _encoding(
    located: _Located, scale: float, chain: SunSpecChain, helpers: dict[str, RegisterField]
) -> Encoding:
    """The point's encoding; a named scale factor becomes a helper field read alongside it."""
    sf = located.point.sf
    scale_factor = None
    if isinstance(sf, int):
        scale *= 10.0**sf
    elif isinstance(sf, str):
        scale_factor = f"{located.model_id}.{sf}"
        if scale_factor not in helpers:
            helper = _locate(chain, SunSpecPoint((located.model_id,), sf))
            if helper is None:
                raise ProfileError(f"model {located.model_id}: scale factor {sf} is missing")
            helpers[scale_factor] = RegisterField(
                name=scale_factor,
                role=FieldRole.HELPER,
                address=helper.address,
                kind=RegisterKind.HOLDING,
                encoding=Encoding(DataType.S16, not_implemented=True),
                poll=PollClass.FAST,
            )
    return Encoding(
        data_type=located.data_type,
        word_order=WordOrder.BIG,
        scale=scale,
        scale_factor=scale_factor,
        length=located.point.size if located.data_type is DataType.STRING else 0,
        not_implemented=True,
    )


class _CountingReader:
    """Counts the requests discovery makes, so they show in the device's request metric."""

    def __init__(self, reader: RegisterReader) -> None:
        self._reader = reader
        self.requests = 0

    async def read_holding_registers(self, address: int, *, count: int, device_id: int) -> Any:
        self.requests += 1
        return await self._reader.read_holding_registers(address, count=count, device_id=device_id)

    async def read_input_registers(self, address: int, *, count: int, device_id: int) -> Any:
        self.requests += 1
        return await self._reader.read_input_registers(address, count=count, device_id=device_id)


def sunspec_binder(profile: DeviceProfile, unit_id: int) -> Binder:
    """Discovery for `ModbusDevice`: run when the device is first reached."""

    async def bind(reader: RegisterReader, result: PollResult) -> DeviceProfile | None:
        counting = _CountingReader(reader)
        try:
            chain = await discover(counting, unit_id)
        except DiscoveryError as exc:
            log.warning("unit %d: SunSpec discovery failed: %s", unit_id, exc)
            result.error = exc.reason
            return None
        finally:
            result.requests += counting.requests
        log.info("unit %d: SunSpec models %s at base %d", unit_id, chain.model_ids, chain.base)
        return bind_sunspec(profile, chain)

    return bind
