"""Generic checks of single TOML values in a profile, each raising `ProfileError` naming where.

`profile_parser` builds fields, setpoints and profiles from these; none of them knows what a
register or a quantity is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from agent.drivers.profile import ProfileError

E = TypeVar("E")


def scale_only(raw: Mapping[str, Any], where: str) -> float:
    """`scale` alone, for a field or setpoint whose type comes later (SunSpec, template)."""
    scale = raw.get("scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, int | float) or scale == 0:
        raise ProfileError(f"{where}.scale: {scale!r} must be a non-zero number")
    return float(scale)


def max_gap(header: Mapping[str, Any], origin: str) -> int | None:
    """profile.max_gap: None when not given, else a whole number of registers 0-120."""
    gap = header.get("max_gap")
    if gap is None:
        return None
    if isinstance(gap, bool) or not isinstance(gap, int) or not 0 <= gap <= 120:
        raise ProfileError(f"{origin}: profile.max_gap = {gap!r}: must be a whole number 0-120")
    return gap


def barriers(header: Mapping[str, Any], origin: str) -> tuple[tuple[int, int], ...]:
    """profile.barriers: [first, last] register ranges, one or a list of them."""
    raw = header.get("barriers", [])
    result: list[tuple[int, int]] = []
    for entry in raw if isinstance(raw, list) else [raw]:
        if (
            not isinstance(entry, list)
            or len(entry) != 2
            or not all(isinstance(a, int) and 0 <= a <= 0xFFFF for a in entry)
            or entry[0] > entry[1]
        ):
            raise ProfileError(
                f"{origin}: profile.barriers: {entry!r} must be [first, last] register addresses"
            )
        result.append((entry[0], entry[1]))
    return tuple(result)


def refuse_unknown(raw: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    """A table's keys must all be in `known`."""
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ProfileError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {sorted(known)}"
        )


def table_list(data: Mapping[str, Any], key: str, origin: str, required: bool) -> list[Any]:
    """An array of tables (`[[key]]`); `required` ones must not be empty."""
    value = data.get(key, [])
    if not isinstance(value, list) or (required and not value):
        raise ProfileError(f"{origin}: [[{key}]] is missing or empty")
    return value


def header_flag(header: Mapping[str, Any], key: str, origin: str) -> bool:
    """A true/false header key, false when not given."""
    value = header.get(key, False)
    if not isinstance(value, bool):
        raise ProfileError(f"{origin}: profile.{key} = {value!r}: must be true or false")
    return value


def setpoint_bound(value: object, where: str) -> float:
    """A setpoint's min or max: any number."""
    if not is_number(value):
        raise ProfileError(f"{where}: {value!r}: a setpoint needs a number range")
    return float(value)  # type: ignore[arg-type]


def is_number(value: object) -> bool:
    """An int or float, but not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_int(value: object) -> bool:
    """An int, but not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def choices(enum: Any) -> str:
    """An enum's values, comma-separated, for error messages."""
    return ", ".join(member.value for member in enum)


def enum_value(enum: type[E], value: Any, where: str) -> E:
    """The member of `enum` whose value is `value`."""
    try:
        return enum(value)  # type: ignore[call-arg]
    except ValueError:
        raise ProfileError(f"{where}: {value!r} is not one of {choices(enum)}") from None


def header_text(table: Mapping[str, Any], key: str, origin: str) -> str:
    """A non-empty string header key."""
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise ProfileError(f"{origin}: profile.{key} must be a non-empty string")
    return value
