"""Binding a template profile (`generic-charger`) to one device's register mapping.

The template says which fields and setpoints such a device has; the site config says where
they sit on this device. Fields the config does not map are left out, so a charger that has
no energy register simply has no energy reading.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

from agent.config import RegisterMapping
from agent.drivers.profile import (
    DataType,
    DeviceProfile,
    Encoding,
    ProfileError,
    RegisterKind,
    WordOrder,
)
from agent.drivers.profile_parser import check_profile


class TemplateError(ProfileError):
    """A device's register mapping that does not fit its template; `key` is the config path."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


def bind_template(
    profile: DeviceProfile, registers: Mapping[str, RegisterMapping], where: str
) -> DeviceProfile:
    """The template with addresses from `registers`; ProfileError names the config key."""
    known = {f.name for f in profile.fields} | {s.name for s in profile.setpoints}
    unknown = sorted(set(registers) - known)
    if unknown:
        raise TemplateError(
            f"{where}.registers.{unknown[0]}",
            f"{profile.name} has no such field; it has: {', '.join(sorted(known))}",
        )
    fields = []
    for field_ in profile.fields:
        mapping = registers.get(field_.name)
        if mapping is None:
            continue
        if mapping.min is not None or mapping.max is not None or mapping.renew_s is not None:
            raise TemplateError(
                f"{where}.registers.{field_.name}", "min, max and renew_s are for setpoints"
            )
        fields.append(
            dataclasses.replace(
                field_,
                address=mapping.address,
                kind=RegisterKind(mapping.kind),
                encoding=_encoding(mapping, field_.encoding.scale),
            )
        )
    setpoints = []
    for setpoint in profile.setpoints:
        mapping = registers.get(setpoint.name)
        if mapping is None:
            continue
        if mapping.kind != "holding":
            raise TemplateError(
                f"{where}.registers.{setpoint.name}", "setpoints are holding registers"
            )
        minimum = setpoint.minimum if mapping.min is None else max(mapping.min, setpoint.minimum)
        maximum = setpoint.maximum if mapping.max is None else min(mapping.max, setpoint.maximum)
        if math.isinf(maximum):
            raise TemplateError(
                f"{where}.registers.{setpoint.name}.max", "give the device's maximum"
            )
        if minimum > maximum:
            raise TemplateError(
                f"{where}.registers.{setpoint.name}", f"min {minimum} above max {maximum}"
            )
        setpoints.append(
            dataclasses.replace(
                setpoint,
                address=mapping.address,
                encoding=_encoding(mapping, setpoint.encoding.scale),
                minimum=minimum,
                maximum=maximum,
                renew_s=setpoint.renew_s if mapping.renew_s is None else mapping.renew_s,
            )
        )
    if not fields:
        raise TemplateError(f"{where}.registers", f"map at least one of {', '.join(sorted(known))}")
    bound = profile.replace(fields=tuple(fields), setpoints=tuple(setpoints), template=False)
    try:
        check_profile(bound, f"{where}.registers")
    except ProfileError as exc:
        raise TemplateError(f"{where}.registers", str(exc).split(": ", 1)[1]) from None
    return bound


def _encoding(mapping: RegisterMapping, template_scale: float) -> Encoding:
    return Encoding(
        data_type=DataType(mapping.type),
        word_order=WordOrder(mapping.word_order),
        scale=mapping.scale * template_scale,
    )
