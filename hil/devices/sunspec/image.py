"""The SunSpec register image: marker, a chain of pysunspec2 models and the end model.

Point offsets, encodings, scale factors and "not implemented" values all come from pysunspec2
and the model definitions it ships, never from the agent's `sunspec_models`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pymodbus.constants import ExcCodes
from sunspec2.device import Model

SUNSPEC_BASES = (40000, 0, 50000)
_MARKER = (0x5375, 0x6E53)  # "SunS"
_END = (0xFFFF, 0)

Clock = Callable[[], float]
"""Seconds; monotonic for the demo, a stepped fake in tests."""

# Raw ranges a value is clamped to; each type's "not implemented" marker stays out of reach.
_RAW_RANGES: dict[str, tuple[int, int]] = {
    "int16": (-0x7FFF, 0x7FFF),
    "uint16": (0, 0xFFFE),
    "count": (0, 0xFFFE),
    "int32": (-0x7FFFFFFF, 0x7FFFFFFF),
    "uint32": (0, 0xFFFFFFFE),
    "sunssf": (-10, 10),
    "enum16": (0, 0xFFFE),
    "bitfield16": (0, 0xFFFE),
    "bitfield32": (0, 0xFFFFFFFE),
}
_ACCUMULATORS = {"acc16": 1 << 16, "acc32": 1 << 32, "acc64": 1 << 64}  # these wrap around
_FLOATS = {"float32", "float64"}
_POWER_SFS = {"W_SF", "VA_SF", "VAr_SF", "DCW_SF", "WChaMax_SF", "WChaDisChaMax_SF"}


def fitting(factors: Mapping[str, int], peak: float) -> dict[str, int]:
    """The power scale factors raised until `peak` fits an int16: large sites need W_SF 1+."""
    shift = 0
    while peak / 10 ** (factors.get("W_SF", 0) + shift) > 0x7FFF:
        shift += 1
    return {n: sf + shift if n in _POWER_SFS else sf for n, sf in factors.items()}


class SunSpecImage:
    """The marker, a chain of pysunspec2 models and the end model, from `base` on."""

    def __init__(self, base: int, models: Sequence[tuple[int, int]]) -> None:
        """`models`: (model id, repeats of its repeating group) in chain order."""
        if base not in SUNSPEC_BASES:
            raise ValueError(f"SunSpec base must be one of {SUNSPEC_BASES}, not {base}")
        self.base = base
        self.models: dict[int, Any] = {}
        self.starts: dict[int, int] = {}
        address = base + 2
        for model_id, repeats in models:
            if model_id in self.models:
                raise ValueError(f"model {model_id} twice; the simulator serves each once")
            model = _new_model(model_id, repeats)
            self.models[model_id] = model
            self.starts[model_id] = address
            address += model.len
        self.size = address + 2 - base
        self._by_address: dict[int, tuple[int, str, Any]] = {}
        for model_id, model in self.models.items():
            for path, point in _all_points(model):
                self._by_address[self.starts[model_id] + point.offset] = (model_id, path, point)

    def chain(self) -> list[tuple[int, int, int]]:
        """(model id, address of its ID register, L) in order: what discovery should find."""
        return [(mid, self.starts[mid], m.len - 2) for mid, m in self.models.items()]

    def registers(self) -> list[int]:
        """The whole image as register values, base first."""
        data = bytearray()
        for model in self.models.values():
            data.extend(model.get_mb())
        words = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
        return [*_MARKER, *words, *_END]

    def point(self, model_id: int, path: str) -> Any:
        """A pysunspec2 point by "Name" or "group[n].Name" (n from 1)."""
        model = self.models[model_id]
        if "[" not in path:
            return model.points[path]
        group, rest = path.split("[", 1)
        index, name = rest.split("].", 1)
        return model.groups[group][int(index) - 1].points[name]

    def put(self, model_id: int, path: str, value: float | None) -> None:
        """Show `value` (in the point's unit) through the point's own scale factor.

        None shows the point as not implemented.
        """
        point = self.point(model_id, path)
        if value is None:
            point.set_value(None)
            return
        kind = point.pdef["type"]
        if kind in _FLOATS:
            point.set_value(float(value))
            return
        raw = round(value / 10 ** self._scale_factor(point))
        if kind in _ACCUMULATORS:
            raw %= _ACCUMULATORS[kind]
        elif kind in _RAW_RANGES:
            low, high = _RAW_RANGES[kind]
            raw = min(max(raw, low), high)
        point.set_value(raw)

    def put_raw(self, model_id: int, path: str, raw: int | str | None) -> None:
        self.point(model_id, path).set_value(raw)

    def value_of(self, point: Any, raw: int | float) -> float:
        """A raw register value of `point` in its unit (for writes the device receives)."""
        if point.pdef["type"] in _FLOATS:
            return float(raw)
        return float(raw * 10 ** self._scale_factor(point))

    def _scale_factor(self, point: Any) -> int:
        if point.sf_value is not None and point.sf is None:
            return int(point.sf_value)  # a constant in the definition
        if point.sf is None:
            return 0
        holder = point.group.points.get(point.sf) or point.model.points.get(point.sf)
        sf = holder.value if holder is not None else None
        if sf is None:
            raise ValueError(f"scale factor {point.sf} of {point.pdef['name']} is not set")
        return int(sf)

    def decode_write(
        self, address: int, values: Sequence[int]
    ) -> list[tuple[int, str, Any, int | float]] | ExcCodes:
        """Split a write into whole points: (model id, path, point, raw value) each."""
        writes: list[tuple[int, str, Any, int | float]] = []
        index = 0
        while index < len(values):
            found = self._by_address.get(address + index)
            if found is None:
                return ExcCodes.ILLEGAL_ADDRESS  # the marker, a header or mid-point
            model_id, path, point = found
            words = values[index : index + point.len]
            if len(words) < point.len:
                return ExcCodes.ILLEGAL_ADDRESS  # half a 32-bit point
            data = b"".join(int(w & 0xFFFF).to_bytes(2, "big") for w in words)
            writes.append((model_id, path, point, point.info.data_to(data)))
            index += point.len
        return writes


def _new_model(model_id: int, repeats: int) -> Any:
    """A pysunspec2 model sized for `repeats` instances of its repeating group."""
    probe = Model(model_id=model_id)
    length = probe.len - 2
    groups = probe.model_def["group"].get("groups", [])
    if repeats:
        if len(groups) != 1:
            raise ValueError(f"model {model_id} has no single repeating group")
        length += repeats * sum(int(p["size"]) for p in groups[0]["points"])
    model = Model(model_id=model_id, model_len=length)
    if model.error_info:
        raise ValueError(f"pysunspec2 model {model_id}: {model.error_info.strip()}")
    return model


def _all_points(model: Any) -> list[tuple[str, Any]]:
    found = [(name, point) for name, point in model.points.items()]
    for group_name, groups in model.groups.items():
        for number, group in enumerate(groups if isinstance(groups, list) else [groups], 1):
            found.extend((f"{group_name}[{number}].{n}", p) for n, p in group.points.items())
    return found
