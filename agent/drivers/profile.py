"""Device profiles: a device model's register map, kept as data in `profiles/*.toml`.

A technician adds a device model by adding a TOML file; this module loads and validates it so
that a wrong map fails at start-up, naming the file and the field, instead of producing
plausible-looking nonsense at run time.
"""

from __future__ import annotations

import itertools
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any, TypeVar

from agent.quantities import QUANTITIES

E = TypeVar("E", bound=StrEnum)


class RegisterKind(StrEnum):
    HOLDING = "holding"  # function 3
    INPUT = "input"  # function 4


class DataType(StrEnum):
    U16 = "u16"
    S16 = "s16"
    U32 = "u32"
    S32 = "s32"
    U64 = "u64"
    S64 = "s64"
    F32 = "f32"
    F64 = "f64"

    @property
    def words(self) -> int:
        return {"16": 1, "32": 2, "64": 4}[self.value[1:]]


class WordOrder(StrEnum):
    BIG = "big"  # most significant word first (Modbus' usual order)
    LITTLE = "little"  # least significant word first ("swapped")


class PollClass(StrEnum):
    FAST = "fast"  # every poll: power, current, state
    SLOW = "slow"  # energy counters, temperatures, SoC
    ONCE = "once"  # nameplate, serial number


@dataclass(frozen=True, slots=True)
class RegisterField:
    """One value in the device's register map, decoded into one quantity."""

    quantity: str
    address: int
    kind: RegisterKind
    data_type: DataType
    word_order: WordOrder
    scale: float
    poll: PollClass

    @property
    def end(self) -> int:
        """First address after this field."""
        return self.address + self.data_type.words


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    name: str
    manufacturer: str
    model: str
    kind: str
    source: str
    fields: tuple[RegisterField, ...]
    max_gap: int  # registers worth reading across rather than starting a new request

    def field(self, quantity: str) -> RegisterField:
        for candidate in self.fields:
            if candidate.quantity == quantity:
                return candidate
        raise KeyError(quantity)


class ProfileError(ValueError):
    """A profile file that cannot be used; the message names the file and the field."""


PROFILE_FOLDER = resources.files("agent.drivers") / "profiles"


def available_profiles() -> list[str]:
    """Names of the shipped profiles (file names without `.toml`)."""
    folder = PROFILE_FOLDER
    return sorted(
        entry.name.removesuffix(".toml")
        for entry in folder.iterdir()
        if entry.name.endswith(".toml")
    )


@cache
def load_profile(name: str) -> DeviceProfile:
    """Load a shipped profile by name; cached, profiles never change while running."""
    resource = PROFILE_FOLDER / f"{name}.toml"
    if not resource.is_file():
        raise ProfileError(f"no profile named {name!r}; shipped: {', '.join(available_profiles())}")
    return parse_profile(resource.read_text(encoding="utf-8"), origin=f"profiles/{name}.toml")


def parse_profile(text: str, origin: str) -> DeviceProfile:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{origin}: {exc}") from exc
    header = _table(data, "profile", origin)
    header_keys = {"name", "manufacturer", "model", "kind", "source", "register_kind"}
    header_keys |= {"word_order", "max_gap"}
    unknown = sorted(set(header) - header_keys)
    if unknown:
        raise ProfileError(f"{origin}: profile has unknown key(s) {', '.join(unknown)}")
    max_gap = header.get("max_gap", 10)
    if not isinstance(max_gap, int) or not 0 <= max_gap <= 120:
        raise ProfileError(f"{origin}: profile.max_gap = {max_gap!r}: must be a whole number 0-120")
    defaults = {
        "word_order": header.get("word_order", "big"),
        "kind": header.get("register_kind", "holding"),
    }
    raw_fields = data.get("fields")
    if not isinstance(raw_fields, list) or not raw_fields:
        raise ProfileError(f"{origin}: [[fields]] is missing or empty")
    fields = tuple(
        _parse_field(raw, defaults, f"{origin}: fields[{index}]")
        for index, raw in enumerate(raw_fields)
    )
    _check_overlaps(fields, origin)
    return DeviceProfile(
        name=_text(header, "name", origin),
        manufacturer=_text(header, "manufacturer", origin),
        model=_text(header, "model", origin),
        kind=_text(header, "kind", origin),
        source=_text(header, "source", origin),
        fields=fields,
        max_gap=max_gap,
    )


def _parse_field(raw: Any, defaults: dict[str, str], where: str) -> RegisterField:
    if not isinstance(raw, dict):
        raise ProfileError(f"{where}: must be a table")
    known = {"quantity", "address", "register", "type", "word_order", "scale", "unit", "poll"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ProfileError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {sorted(known)}"
        )
    quantity = raw.get("quantity")
    if quantity not in QUANTITIES:
        raise ProfileError(f"{where}.quantity: {quantity!r} is not a known quantity")
    where = f"{where} ({quantity})"
    address = raw.get("address")
    if not isinstance(address, int) or not 0 <= address <= 0xFFFF:
        raise ProfileError(f"{where}.address: {address!r} is not a register address 0..65535")
    unit = raw.get("unit", QUANTITIES[quantity].unit)
    if unit != QUANTITIES[quantity].unit:
        raise ProfileError(
            f"{where}.unit: {unit!r}, but {quantity} is kept in {QUANTITIES[quantity].unit!r}; "
            "use scale to convert"
        )
    scale = raw.get("scale", 1.0)
    if not isinstance(scale, int | float) or scale == 0:
        raise ProfileError(f"{where}.scale: {scale!r} must be a non-zero number")
    return RegisterField(
        quantity=quantity,
        address=address,
        kind=_enum(RegisterKind, raw.get("register", defaults["kind"]), f"{where}.register"),
        data_type=_enum(DataType, raw.get("type"), f"{where}.type"),
        word_order=_enum(
            WordOrder, raw.get("word_order", defaults["word_order"]), f"{where}.word_order"
        ),
        scale=float(scale),
        poll=_enum(PollClass, raw.get("poll", "fast"), f"{where}.poll"),
    )


def _check_overlaps(fields: tuple[RegisterField, ...], origin: str) -> None:
    seen: set[str] = set()
    for field in fields:
        if field.quantity in seen:
            raise ProfileError(f"{origin}: quantity {field.quantity} is mapped twice")
        seen.add(field.quantity)
    by_kind = sorted(fields, key=lambda f: (f.kind, f.address))
    for before, after in itertools.pairwise(by_kind):
        if before.kind == after.kind and after.address < before.end:
            raise ProfileError(
                f"{origin}: fields {before.quantity} and {after.quantity} overlap "
                f"at {after.kind} register {after.address}"
            )


def _enum(enum: type[E], value: Any, where: str) -> E:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise ProfileError(f"{where}: {value!r} is not one of {allowed}") from None


def _table(data: dict[str, Any], key: str, origin: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise ProfileError(f"{origin}: [{key}] table is missing")
    return value


def _text(table: dict[str, Any], key: str, origin: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise ProfileError(f"{origin}: profile.{key} must be a non-empty string")
    return value
