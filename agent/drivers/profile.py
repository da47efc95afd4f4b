"""Device profiles: a device model's register map, kept as data in `profiles/*.toml`.

This module holds the types a parsed profile is made of and the loader for shipped profiles;
`profile_parser` turns TOML into them and refuses a wrong map at start-up, naming the file and
the field, instead of producing plausible-looking nonsense at run time.

A profile is *bound* when every field has an address. Plain profiles are bound as written;
SunSpec profiles are bound after discovery (`sunspec_binding`), template profiles from the
device's `registers` table in the site config (`bind_template`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType

EMPTY_LABELS: Mapping[int, str] = MappingProxyType({})


class RegisterKind(StrEnum):
    HOLDING = "holding"  # function 3 (read), 6/16 (write)
    INPUT = "input"  # function 4, read-only


class DataType(StrEnum):
    U16 = "u16"
    S16 = "s16"
    U32 = "u32"
    S32 = "s32"
    U64 = "u64"
    S64 = "s64"
    F32 = "f32"
    F64 = "f64"
    STRING = "string"  # `length` registers of two ASCII characters each
    ENUM16 = "enum16"  # a code with named values
    BITFIELD16 = "bitfield16"  # named bits
    BITFIELD32 = "bitfield32"

    @property
    def fixed_words(self) -> int:
        """Registers the type takes (strings: 0, their length is per field)."""
        return _WORDS[self]

    @property
    def has_labels(self) -> bool:
        return self in (DataType.ENUM16, DataType.BITFIELD16, DataType.BITFIELD32)


_WORDS = {
    DataType.U16: 1,
    DataType.S16: 1,
    DataType.U32: 2,
    DataType.S32: 2,
    DataType.U64: 4,
    DataType.S64: 4,
    DataType.F32: 2,
    DataType.F64: 4,
    DataType.STRING: 0,
    DataType.ENUM16: 1,
    DataType.BITFIELD16: 1,
    DataType.BITFIELD32: 2,
}


class WordOrder(StrEnum):
    BIG = "big"  # most significant word first (Modbus' usual order)
    LITTLE = "little"  # least significant word first ("swapped")


class PollClass(StrEnum):
    FAST = "fast"  # every poll: power, current, state
    SLOW = "slow"  # energy counters, temperatures, SoC
    ONCE = "once"  # nameplate, serial number


class FieldRole(StrEnum):
    QUANTITY = "quantity"  # a measurement, one of agent.quantities
    INFO = "info"  # text or nameplate data: serial number, firmware
    HELPER = "helper"  # read only to decode others, e.g. a SunSpec scale factor


@dataclass(frozen=True, slots=True)
class SunSpecPoint:
    """Where a SunSpec profile's value lives: the first of `models` the device has, `point`."""

    models: tuple[int, ...]
    point: str


@dataclass(frozen=True, slots=True)
class Encoding:
    """How a number sits in registers; shared by fields, setpoints and constant writes."""

    data_type: DataType
    word_order: WordOrder = WordOrder.BIG
    scale: float = 1.0
    scale_factor: str | None = None  # name of a helper field: x 10^value (SunSpec)
    length: int = 0  # registers, for strings
    not_implemented: bool = False  # SunSpec's 0x8000/0xFFFF... markers mean "no value"

    @property
    def words(self) -> int:
        return self.length if self.data_type is DataType.STRING else self.data_type.fixed_words


@dataclass(frozen=True, slots=True)
class RegisterField:
    """One value in the device's register map."""

    name: str  # the quantity, info or helper name
    role: FieldRole
    address: int | None  # None until bound (SunSpec, template)
    kind: RegisterKind
    encoding: Encoding
    poll: PollClass
    labels: Mapping[int, str] = field(default_factory=lambda: EMPTY_LABELS)
    sunspec: SunSpecPoint | None = None

    @property
    def data_type(self) -> DataType:
        return self.encoding.data_type

    @property
    def start(self) -> int:
        if self.address is None:
            raise ValueError(f"field {self.name} has no address yet")
        return self.address

    @property
    def end(self) -> int:
        """First address after this field."""
        return self.start + self.encoding.words


@dataclass(frozen=True, slots=True)
class ConstantWrite:
    """A fixed value written before a setpoint, e.g. an enable flag or a revert timer."""

    address: int | None
    encoding: Encoding
    value: float
    sunspec: SunSpecPoint | None = None


@dataclass(frozen=True, slots=True)
class SetpointField:
    """A register the agent writes: range-checked before sending, read back if it can be."""

    name: str  # one of agent.quantities.SETPOINTS
    address: int | None
    encoding: Encoding
    minimum: float
    maximum: float
    readback: bool = True
    renew_s: float | None = None  # the device drops the setpoint after this long
    prepare: tuple[ConstantWrite, ...] = ()
    sunspec: SunSpecPoint | None = None


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    name: str
    manufacturer: str
    model: str
    kind: str
    source: str
    fields: tuple[RegisterField, ...]
    setpoints: tuple[SetpointField, ...] = ()
    max_gap: int | None = None  # cap on registers read across; None: what the bus makes worth it
    barriers: tuple[tuple[int, int], ...] = ()  # inclusive ranges a read must not cover
    protocol: str = "modbus"  # or "pylontech": a serial protocol with no register map
    sunspec: bool = False
    template: bool = False

    @property
    def bound(self) -> bool:
        return all(f.address is not None for f in self.fields) and all(
            s.address is not None for s in self.setpoints
        )

    def field(self, name: str) -> RegisterField:
        for candidate in self.fields:
            if candidate.name == name:
                return candidate
        raise KeyError(name)

    def setpoint(self, name: str) -> SetpointField:
        for candidate in self.setpoints:
            if candidate.name == name:
                return candidate
        raise KeyError(name)

    def quantities(self) -> list[RegisterField]:
        return [f for f in self.fields if f.role is FieldRole.QUANTITY]

    def replace(self, **changes: object) -> DeviceProfile:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


class ProfileError(ValueError):
    """A profile file that cannot be used; the message names the file and the field."""


PROFILE_FOLDER = resources.files("agent.drivers") / "profiles"


def available_profiles(local: Path | None = None) -> list[str]:
    """Names of the profiles: the shipped ones and those in the site's own folder."""
    names = {
        entry.name.removesuffix(".toml")
        for entry in PROFILE_FOLDER.iterdir()
        if entry.name.endswith(".toml")
    }
    if local is not None and local.is_dir():
        names |= {path.stem for path in local.glob("*.toml")}
    return sorted(names)


@cache
def load_profile(name: str, local: Path | None = None) -> DeviceProfile:
    """Load a profile by name; cached, profiles never change while running.

    A file in the site's own folder (`drivers.profiles_dir`) wins over a shipped one of the
    same name, so a technician can add or correct a model without touching the package.
    """
    from agent.drivers.profile_parser import parse_profile

    local_file = None if local is None else local / f"{name}.toml"
    if local_file is not None and local_file.is_file():
        origin, text = str(local_file), local_file.read_text(encoding="utf-8")
    else:
        resource = PROFILE_FOLDER / f"{name}.toml"
        if not resource.is_file():
            known = ", ".join(available_profiles(local))
            raise ProfileError(f"no profile named {name!r}; known: {known}")
        origin, text = f"profiles/{name}.toml", resource.read_text(encoding="utf-8")
    profile = parse_profile(text, origin=origin)
    if profile.name != name:
        raise ProfileError(f"{origin}: profile.name is {profile.name!r}, not {name!r}")
    return profile
