"""TOML profile text to a validated `DeviceProfile`, with errors naming file and field.

Every check a technician's mistake could slip past lives here: unknown keys, quantities and
types, units that differ from the agent's, overlapping or duplicated fields, dangling scale
factor names, setpoint ranges the wrong way round. docs/devices.md describes the format.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from agent.drivers.profile import (
    ConstantWrite,
    DataType,
    DeviceProfile,
    Encoding,
    FieldRole,
    PollClass,
    ProfileError,
    RegisterField,
    RegisterKind,
    SetpointField,
    SunSpecPoint,
    WordOrder,
)
from agent.drivers.profile_values import (
    barriers,
    choices,
    enum_value,
    header_flag,
    header_text,
    is_int,
    is_number,
    max_gap,
    refuse_unknown,
    scale_only,
    setpoint_bound,
    table_list,
)
from agent.quantities import QUANTITIES, SETPOINTS

HEADER_KEYS = frozenset(
    {
        "name", "manufacturer", "model", "kind", "source", "register_kind", "word_order",
        "max_gap", "barriers", "not_implemented", "sunspec", "template", "protocol",
    }
)  # fmt: skip
ENCODING_KEYS = frozenset({"type", "word_order", "scale", "scale_factor", "length"})
FIELD_KEYS = ENCODING_KEYS | {
    "quantity", "info", "name", "address", "model", "point", "register", "unit", "poll", "labels",
}  # fmt: skip
SETPOINT_KEYS = ENCODING_KEYS | {
    "name", "address", "model", "point", "unit", "min", "max", "readback", "renew_s", "prepare",
}  # fmt: skip
PREPARE_KEYS = ENCODING_KEYS | {"address", "model", "point", "value"}
PROTOCOLS = ("modbus", "pylontech")


class _Defaults:
    """Header values that fields inherit, and how the profile locates its registers."""

    def __init__(self, header: Mapping[str, Any], origin: str) -> None:
        self.kind = enum_value(
            RegisterKind, header.get("register_kind", "holding"), f"{origin}: profile.register_kind"
        )
        self.word_order = enum_value(
            WordOrder, header.get("word_order", "big"), f"{origin}: profile.word_order"
        )
        marker = header.get("not_implemented")
        if marker not in (None, "sunspec"):
            raise ProfileError(
                f'{origin}: profile.not_implemented = {marker!r}: only "sunspec" is known'
            )
        self.sunspec = header_flag(header, "sunspec", origin)
        self.template = header_flag(header, "template", origin)
        self.not_implemented = marker == "sunspec" or self.sunspec
        if self.sunspec and self.template:
            raise ProfileError(f"{origin}: a profile is either sunspec or template, not both")


def parse_profile(text: str, origin: str) -> DeviceProfile:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{origin}: {exc}") from exc
    unknown_tables = sorted(set(data) - {"profile", "fields", "setpoints"})
    if unknown_tables:
        raise ProfileError(f"{origin}: unknown table(s) {', '.join(unknown_tables)}")
    header = data.get("profile")
    if not isinstance(header, dict):
        raise ProfileError(f"{origin}: [profile] table is missing")
    refuse_unknown(header, HEADER_KEYS, f"{origin}: profile")
    defaults = _Defaults(header, origin)
    protocol = header.get("protocol", "modbus")
    if protocol not in PROTOCOLS:
        raise ProfileError(
            f"{origin}: profile.protocol = {protocol!r}: one of {', '.join(PROTOCOLS)}"
        )
    fields = tuple(
        _parse_field(raw, defaults, f"{origin}: fields[{index}]")
        for index, raw in enumerate(
            table_list(data, "fields", origin, required=protocol == "modbus")
        )
    )
    setpoints = tuple(
        _parse_setpoint(raw, defaults, f"{origin}: setpoints[{index}]")
        for index, raw in enumerate(table_list(data, "setpoints", origin, required=False))
    )
    profile = DeviceProfile(
        name=header_text(header, "name", origin),
        manufacturer=header_text(header, "manufacturer", origin),
        model=header_text(header, "model", origin),
        kind=header_text(header, "kind", origin),
        source=header_text(header, "source", origin),
        fields=fields,
        setpoints=setpoints,
        max_gap=max_gap(header, origin),
        barriers=barriers(header, origin),
        protocol=protocol,
        sunspec=defaults.sunspec,
        template=defaults.template,
    )
    check_profile(profile, origin)
    return profile


def check_profile(profile: DeviceProfile, origin: str) -> None:
    """Cross-field checks; run again after binding, when addresses are known."""
    names = [f.name for f in profile.fields]
    for name in names:
        if names.count(name) > 1:
            raise ProfileError(f"{origin}: {name} is mapped twice")
    setpoint_names = [s.name for s in profile.setpoints]
    for name in setpoint_names:
        if setpoint_names.count(name) > 1:
            raise ProfileError(f"{origin}: setpoint {name} is mapped twice")
    known = set(names)
    encodings = [(f.name, f.encoding) for f in profile.fields]
    encodings += [(f"setpoint {s.name}", s.encoding) for s in profile.setpoints]
    for owner, encoding in encodings:
        sf = encoding.scale_factor
        if sf is not None and not profile.sunspec and sf not in known:
            raise ProfileError(f"{origin}: {owner}.scale_factor names no field: {sf!r}")
    bound = sorted(
        (f for f in profile.fields if f.address is not None), key=lambda f: (f.kind, f.start)
    )
    for before, after in itertools.pairwise(bound):
        if before.kind == after.kind and after.start < before.end:
            raise ProfileError(
                f"{origin}: fields {before.name} and {after.name} overlap "
                f"at {after.kind} register {after.start}"
            )
    for low, high in profile.barriers:
        for field_ in bound:
            if field_.start <= high and field_.end > low:
                raise ProfileError(
                    f"{origin}: field {field_.name} lies in the barrier [{low}, {high}]"
                )


def parse_encoding(
    raw: Mapping[str, Any],
    word_order: WordOrder,
    not_implemented: bool,
    where: str,
    required: bool = True,
) -> Encoding | None:
    """The type/word_order/scale/scale_factor/length keys of a field, setpoint or override."""
    if "type" not in raw:
        if required:
            raise ProfileError(f"{where}.type is missing; one of {choices(DataType)}")
        return None
    data_type = enum_value(DataType, raw["type"], f"{where}.type")
    scale = raw.get("scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, int | float) or scale == 0:
        raise ProfileError(f"{where}.scale: {scale!r} must be a non-zero number")
    length = raw.get("length", 0)
    if data_type is DataType.STRING:
        if not isinstance(length, int) or isinstance(length, bool) or not 1 <= length <= 125:
            raise ProfileError(f"{where}.length: {length!r}: a string needs 1-125 registers")
    elif "length" in raw:
        raise ProfileError(f"{where}.length: only strings have a length")
    sf = raw.get("scale_factor")
    if sf is not None and not isinstance(sf, str):
        raise ProfileError(f"{where}.scale_factor: {sf!r} must name a field")
    return Encoding(
        data_type=data_type,
        word_order=enum_value(WordOrder, raw.get("word_order", word_order), f"{where}.word_order"),
        scale=float(scale),
        scale_factor=sf,
        length=length,
        not_implemented=not_implemented,
    )


def _parse_field(raw: Any, defaults: _Defaults, where: str) -> RegisterField:
    if not isinstance(raw, dict):
        raise ProfileError(f"{where}: must be a table")
    refuse_unknown(raw, FIELD_KEYS, where)
    role, name = _role(raw, where)
    where = f"{where} ({name})"
    address, sunspec = _location(raw, defaults, where)
    encoding = parse_encoding(
        raw,
        defaults.word_order,
        defaults.not_implemented,
        where,
        required=not (defaults.sunspec or defaults.template),
    )
    if encoding is None:  # given later by the SunSpec model or the site config
        encoding = Encoding(DataType.U16, defaults.word_order, scale_only(raw, where))
    if role is FieldRole.QUANTITY:
        expected = QUANTITIES[name].unit
        if raw.get("unit", expected) != expected:
            raise ProfileError(
                f"{where}.unit: {raw['unit']!r}, but {name} is kept in {expected!r}; "
                "use scale to convert"
            )
    labels = _labels(raw, encoding.data_type, where, explicit_type="type" in raw)
    return RegisterField(
        name=name,
        role=role,
        address=address,
        kind=enum_value(RegisterKind, raw.get("register", defaults.kind), f"{where}.register"),
        encoding=encoding,
        poll=enum_value(PollClass, raw.get("poll", "fast"), f"{where}.poll"),
        labels=labels,
        sunspec=sunspec,
    )


def _parse_setpoint(raw: Any, defaults: _Defaults, where: str) -> SetpointField:
    if not isinstance(raw, dict):
        raise ProfileError(f"{where}: must be a table")
    refuse_unknown(raw, SETPOINT_KEYS, where)
    name = raw.get("name")
    if name not in SETPOINTS:
        raise ProfileError(f"{where}.name: {name!r} is not one of {', '.join(SETPOINTS)}")
    where = f"{where} ({name})"
    if raw.get("unit", SETPOINTS[name].unit) != SETPOINTS[name].unit:
        raise ProfileError(
            f"{where}.unit: {raw['unit']!r}, but {name} is in {SETPOINTS[name].unit!r}"
        )
    address, sunspec = _location(raw, defaults, where)
    encoding = parse_encoding(
        raw,
        defaults.word_order,
        defaults.not_implemented,
        where,
        required=not (defaults.sunspec or defaults.template),
    ) or Encoding(DataType.U16, defaults.word_order, scale_only(raw, where))
    # A template's range may be left to the site config, which narrows it per device.
    unset = 0.0 if defaults.template else None
    minimum = setpoint_bound(raw.get("min", unset), f"{where}.min")
    maximum = setpoint_bound(
        raw.get("max", math.inf if defaults.template else None), f"{where}.max"
    )
    if minimum > maximum:
        raise ProfileError(f"{where}: min {minimum:g} is above max {maximum:g}")
    renew = raw.get("renew_s")
    if renew is not None and (not is_number(renew) or renew <= 0):
        raise ProfileError(f"{where}.renew_s: {renew!r} must be a positive number of seconds")
    readback = raw.get("readback", True)
    if not isinstance(readback, bool):
        raise ProfileError(f"{where}.readback: {readback!r} must be true or false")
    prepare = raw.get("prepare", [])
    if not isinstance(prepare, list):
        raise ProfileError(f"{where}.prepare: must be a list of tables")
    return SetpointField(
        name=name,
        address=address,
        encoding=encoding,
        minimum=minimum,
        maximum=maximum,
        readback=readback,
        renew_s=None if renew is None else float(renew),
        prepare=tuple(
            _parse_constant(entry, defaults, f"{where}.prepare[{index}]")
            for index, entry in enumerate(prepare)
        ),
        sunspec=sunspec,
    )


def _parse_constant(raw: Any, defaults: _Defaults, where: str) -> ConstantWrite:
    if not isinstance(raw, dict):
        raise ProfileError(f"{where}: must be a table")
    refuse_unknown(raw, PREPARE_KEYS, where)
    address, sunspec = _location(raw, defaults, where)
    encoding = parse_encoding(
        raw, defaults.word_order, defaults.not_implemented, where, required=not defaults.sunspec
    ) or Encoding(DataType.U16, defaults.word_order)
    value = raw.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProfileError(f"{where}.value: {value!r} must be a number")
    return ConstantWrite(address=address, encoding=encoding, value=float(value), sunspec=sunspec)


def _role(raw: Mapping[str, Any], where: str) -> tuple[FieldRole, str]:
    given = [key for key in ("quantity", "info", "name") if key in raw]
    if len(given) != 1:
        raise ProfileError(f"{where}: give exactly one of quantity, info or name")
    key = given[0]
    value = raw[key]
    if key == "quantity":
        if value not in QUANTITIES:
            raise ProfileError(f"{where}.quantity: {value!r} is not a known quantity")
        return FieldRole.QUANTITY, value
    if not isinstance(value, str) or not value.replace("_", "").replace(".", "").isalnum():
        raise ProfileError(f"{where}.{key}: {value!r} must be a name (letters, digits, _)")
    return (FieldRole.INFO if key == "info" else FieldRole.HELPER), value


def _location(
    raw: Mapping[str, Any], defaults: _Defaults, where: str
) -> tuple[int | None, SunSpecPoint | None]:
    """An address for plain profiles, model+point for SunSpec ones, nothing for templates."""
    if defaults.sunspec:
        if "address" in raw:
            raise ProfileError(f"{where}.address: a sunspec profile names model and point instead")
        models = raw.get("model")
        models = [models] if isinstance(models, int) else models
        if not isinstance(models, list) or not models or not all(is_int(m) for m in models):
            raise ProfileError(f"{where}.model: {raw.get('model')!r}: a model id or a list of them")
        point = raw.get("point")
        if not isinstance(point, str) or not point:
            raise ProfileError(f'{where}.point: {point!r}: the SunSpec point name, e.g. "W"')
        return None, SunSpecPoint(tuple(models), point)
    for key in ("model", "point"):
        if key in raw:
            raise ProfileError(f"{where}.{key}: only sunspec profiles locate by model and point")
    if defaults.template:
        if "address" in raw:
            raise ProfileError(f"{where}.address: a template's addresses come from the site config")
        return None, None
    address = raw.get("address")
    if isinstance(address, bool) or not isinstance(address, int) or not 0 <= address <= 0xFFFF:
        raise ProfileError(f"{where}.address: {address!r} is not a register address 0..65535")
    return address, None


def _labels(
    raw: Mapping[str, Any], data_type: DataType, where: str, explicit_type: bool
) -> Mapping[int, str]:
    labels = raw.get("labels")
    if labels is None:
        return MappingProxyType({})
    if explicit_type and not data_type.has_labels:
        raise ProfileError(f"{where}.labels: a {data_type} has no labels; use enum16 or bitfield")
    if not isinstance(labels, dict):
        raise ProfileError(f'{where}.labels: must be a table of number = "name"')
    parsed: dict[int, str] = {}
    for key, text in labels.items():
        if not key.isdigit() or not isinstance(text, str):
            raise ProfileError(f"{where}.labels.{key}: keys are numbers, values names")
        parsed[int(key)] = text
    return MappingProxyType(parsed)
