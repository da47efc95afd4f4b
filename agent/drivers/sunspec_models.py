"""Where each point of a SunSpec model sits, computed from the SunSpec Alliance's definitions.

The model definitions are the JSON files that ship with `pysunspec2` (sunspec2/models/json,
model_<id>.json); nothing here is typed in by hand, so a profile names a model and a point and
the offset, type and scale factor come from the standard itself.

Offsets count registers from the model's start: its ID register is offset 0, L is offset 1.
A model may end in one repeating group (model 160's `module`); how often it repeats follows
from the length L the device reports, which is why resolving a point needs L.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

_PATH = re.compile(
    r"^(?:(?P<group>[A-Za-z0-9_\-]+)\[(?P<index>\d+)\]\.)?(?P<point>[A-Za-z0-9_\-.]+)$"
)


class SunSpecLayoutError(LookupError):
    """A model or point the agent cannot place; names both so a profile error is findable."""

    def __init__(self, model_id: int, point: str | None, message: str) -> None:
        super().__init__(message)
        self.model_id = model_id
        self.point = point


class UnknownModelError(SunSpecLayoutError):
    """The SunSpec definitions have no model with this id."""


class UnknownPointError(SunSpecLayoutError):
    """The model definition has no such point (a typo in a profile, usually)."""


class PointNotPresentError(SunSpecLayoutError):
    """The point exists in the standard but not in this device's instance of the model.

    A repeating-group index beyond the device's repeats, or a point past the model length L the
    device reports (older firmware ships shorter models). Profiles leave such points out.
    """


@dataclass(frozen=True, slots=True)
class PointLayout:
    name: str
    offset: int  # registers from the model start (ID = 0, L = 1)
    size: int  # registers
    type: str  # the SunSpec type as in the JSON: uint16, int16, acc32, sunssf, enum16, ...
    sf: str | int | None = None  # scale-factor point (a path resolve() accepts) or a constant
    units: str | None = None
    access: str = "R"  # "R" or "RW"
    mandatory: bool = False
    symbols: Mapping[int, str] | None = field(default=None, hash=False)  # enum value / bit


@dataclass(frozen=True, slots=True)
class GroupLayout:
    """The repeating group at a model's end; point offsets are from the group instance start."""

    name: str
    points: tuple[PointLayout, ...]
    length: int  # registers per repeat


@dataclass(frozen=True, slots=True)
class ModelLayout:
    id: int
    name: str
    points: tuple[PointLayout, ...]  # the fixed part, ID and L included
    group: GroupLayout | None
    fixed_length: int  # registers of the fixed part, ID and L included
    # Groups this module does not place (nested repeats, anything after the repeating group).
    unsupported_groups: tuple[str, ...] = ()

    def repeats(self, length: int) -> int:
        """How many times the repeating group occurs in a model whose L register says `length`."""
        if self.group is None:
            return 0
        return max(0, (length + 2 - self.fixed_length) // self.group.length)

    def resolve(self, path: str, length: int) -> PointLayout:
        """Place `path` ("W", "module[2].DCW") in a device's instance of length L = `length`.

        The result's offset is from the model start; its `sf`, when a name, is again a path
        (a group's own scale factors become "module[2].X_SF", fixed-part ones stay bare).
        """
        match = _PATH.match(path)
        if match is None:
            raise UnknownPointError(self.id, path, f"model {self.id}: bad point path {path!r}")
        group_name, point_name = match["group"], match["point"]
        if group_name is None:
            point = self._fixed(path)
            if point is None:
                raise UnknownPointError(
                    self.id, path, f"model {self.id} ({self.name}) has no point {path!r}"
                )
            self._check_fits(point, path, length)
            return point
        group = self.group
        if group is None or group.name != group_name:
            why = "is not placed" if group_name in self.unsupported_groups else "does not exist"
            raise UnknownPointError(
                self.id, path, f"model {self.id}: repeating group {group_name!r} {why}"
            )
        member = next((p for p in group.points if p.name == point_name), None)
        if member is None:
            raise UnknownPointError(
                self.id, path, f"model {self.id}: group {group_name!r} has no point {point_name!r}"
            )
        index = int(match["index"])
        repeats = self.repeats(length)
        if not 1 <= index <= repeats:
            raise PointNotPresentError(
                self.id,
                path,
                f"model {self.id}: {path!r} is beyond the device's {repeats} "
                f"{group_name} group(s) (L={length}; indices start at 1)",
            )
        sf = member.sf
        if isinstance(sf, str) and any(p.name == sf for p in group.points):
            sf = f"{group_name}[{index}].{sf}"
        start = self.fixed_length + (index - 1) * group.length
        return PointLayout(
            name=path,
            offset=start + member.offset,
            size=member.size,
            type=member.type,
            sf=sf,
            units=member.units,
            access=member.access,
            mandatory=member.mandatory,
            symbols=member.symbols,
        )

    def _fixed(self, name: str) -> PointLayout | None:
        return next((p for p in self.points if p.name == name), None)

    def _check_fits(self, point: PointLayout, path: str, length: int) -> None:
        if point.offset + point.size > length + 2:
            raise PointNotPresentError(
                self.id,
                path,
                f"model {self.id}: {path!r} lies beyond the device's model length L={length}",
            )


def model_layout(model_id: int) -> ModelLayout:
    """The layout of one model; raises UnknownModelError if pysunspec2 does not define it."""
    return _load(model_id)


def resolve_point(model_id: int, path: str, length: int) -> PointLayout:
    """Shorthand for model_layout(model_id).resolve(path, length)."""
    return _load(model_id).resolve(path, length)


@cache
def _load(model_id: int) -> ModelLayout:
    source = resources.files("sunspec2").joinpath("models", "json", f"model_{model_id}.json")
    try:
        text = source.read_text(encoding="utf-8")
    except (FileNotFoundError, OSError) as exc:
        raise UnknownModelError(
            model_id, None, f"SunSpec model {model_id} is not defined in pysunspec2"
        ) from exc
    try:
        return _build(model_id, json.loads(text))
    except (KeyError, TypeError, ValueError) as exc:
        raise UnknownModelError(
            model_id, None, f"SunSpec model {model_id}: unreadable definition: {exc}"
        ) from exc


def _build(model_id: int, definition: dict[str, Any]) -> ModelLayout:
    top: dict[str, Any] = definition["group"]
    points = _points(top, 0, "", {})
    scope = {p.name: p.name for p in points}
    offset = sum(p.size for p in points)
    repeating: GroupLayout | None = None
    unsupported: list[str] = []
    for sub in top.get("groups", []):
        name = str(sub["name"])
        if repeating is not None or unsupported:
            unsupported.append(name)  # its offset would depend on the repeats before it
        elif sub.get("count") is None:
            # A single instance: part of the fixed layout, its points named "group.point".
            flat = _flatten(sub, offset, f"{name}.", scope)
            if flat is None:
                unsupported.append(name)
            else:
                points.extend(flat)
                offset += sum(p.size for p in flat)
        elif sub.get("groups"):
            unsupported.append(name)  # nested repeats: sizes need the device's count points
        else:
            # Scale factors stay bare names here; resolve() makes the group's own indexed.
            members = tuple(_points(sub, 0, "", scope))
            repeating = GroupLayout(name, members, sum(p.size for p in members))
    return ModelLayout(
        id=model_id,
        name=str(top["name"]),
        points=tuple(points),
        group=repeating,
        fixed_length=offset,
        unsupported_groups=tuple(unsupported),
    )


def _flatten(
    group: dict[str, Any], offset: int, prefix: str, scope: dict[str, str]
) -> list[PointLayout] | None:
    """A single-instance group's points (and its single-instance subgroups'), or None."""
    own = {str(raw["name"]): f"{prefix}{raw['name']}" for raw in group.get("points", [])}
    inner_scope = {**scope, **own}
    flat = _points(group, offset, prefix, inner_scope)
    offset += sum(p.size for p in flat)
    for sub in group.get("groups", []):
        if sub.get("count") is not None:
            return None
        inner = _flatten(sub, offset, f"{prefix}{sub['name']}.", inner_scope)
        if inner is None:
            return None
        flat.extend(inner)
        offset += sum(p.size for p in inner)
    return flat


def _points(
    group: dict[str, Any], offset: int, prefix: str, scope: dict[str, str]
) -> list[PointLayout]:
    """The group's points from `offset`; `scope` maps scale-factor names to point paths."""
    placed = []
    for raw in group.get("points", []):
        point = _point(raw, offset, prefix, scope)
        placed.append(point)
        offset += point.size
    return placed


def _point(raw: dict[str, Any], offset: int, prefix: str, scope: dict[str, str]) -> PointLayout:
    size = int(raw["size"])
    if size < 1:
        raise ValueError(f"point {raw['name']} has size {size}")
    units = raw.get("units")
    symbols = raw.get("symbols")
    return PointLayout(
        name=f"{prefix}{raw['name']}",
        offset=offset,
        size=size,
        type=str(raw["type"]),
        sf=_scale_factor(raw.get("sf"), scope),
        units=str(units).strip() if units is not None else None,
        access=str(raw.get("access", "R")),
        mandatory=raw.get("mandatory") == "M",
        symbols={int(s["value"]): str(s["name"]) for s in symbols} if symbols else None,
    )


def _scale_factor(raw: object, scope: dict[str, str]) -> str | int | None:
    if raw is None:
        return None
    if isinstance(raw, int):
        return raw
    text = str(raw).strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return scope.get(text, text)
