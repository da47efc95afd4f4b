"""What a simulator run reports against the yardstick: a cached `Yardstick` and the ratios.

The LP takes about half a second on the reference day, but a sweep runs the same scenario many
times, so `yardstick_for` keeps each answer in a small JSON file keyed by the scenario's content
(every field of the typed `Scenario`, so an edit to the file is a new key, while moving or
renaming it is not), the step and the formulation's version. A cache that cannot be read or
written never fails a run: the yardstick is solved again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path

from hil.scenario import Scenario
from hil.yardstick import DEFAULT_STEP_S, Yardstick, solve_yardstick

# Bump when the LP's formulation changes, so cached answers of the old one are not reused.
FORMULATION_VERSION = 1


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/edge-agent/yardstick`, else `~/.cache/edge-agent/yardstick`."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edge-agent" / "yardstick"


def cache_key(scenario: Scenario, step_s: float) -> str:
    """A hash of the scenario's content, the step and the formulation's version."""
    text = f"v{FORMULATION_VERSION}|step={float(step_s)!r}|{scenario!r}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def yardstick_for(
    scenario: Scenario, *, step_s: float = DEFAULT_STEP_S, cache_dir: Path | None = None
) -> Yardstick:
    """The scenario's yardstick, from the cache when it holds this scenario and step."""
    folder = default_cache_dir() if cache_dir is None else cache_dir
    path = folder / f"{scenario.name}-{cache_key(scenario, step_s)}.json"
    cached = _read(path)
    if cached is not None:
        return cached
    yardstick = solve_yardstick(scenario, step_s)
    _write(path, yardstick)
    return yardstick


def _read(path: Path) -> Yardstick | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["session_kwh"] = tuple((str(sid), float(kwh)) for sid, kwh in data["session_kwh"])
        return Yardstick(**data)
    except (OSError, ValueError, TypeError, KeyError):
        return None  # absent, unreadable or from another layout: solve again


def _write(path: Path, yardstick: Yardstick) -> None:
    """Write atomically (a temporary file, then rename), so readers never see half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(asdict(yardstick)) + "\n", encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        pass  # a read-only or full disk costs a re-solve next time, not the run


def _number(kpis: Mapping[str, object], key: str) -> float:
    value = kpis.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"kpis[{key!r}] must be a number, got {value!r}")
    return float(value)


def compare(kpis: Mapping[str, object], y: Yardstick, scenario: Scenario) -> dict[str, float]:
    """The run's delivered energy and cost against the yardstick, for kpis.json.

    `delivered_vs_yardstick` = energy_delivered_kwh / yardstick (at most about 1: the LP is an
    upper bound); `cost_vs_yardstick` = energy_cost / yardstick cost. A ratio is left out when
    the yardstick's value is not positive (nothing to deliver, or a site that earns money), as
    it would mean nothing and JSON has no NaN.

    With a battery, the costs again with both batteries brought back to the starting SoC
    (`energy_cost_same_soc`, `yardstick_cost_same_soc`, `cost_same_soc_vs_yardstick`): the
    bound ends where it started, but a controller that filled the battery in the night's valley
    for the next morning has paid for energy the bound did not buy. Each kWh stored above the
    start is credited at what it costs to store in the cheapest hour (that price / the charge
    efficiency), each kWh below it charged the same: neither side gains from the run's end.
    """
    delivered = _number(kpis, "energy_delivered_kwh")
    cost = _number(kpis, "energy_cost")
    result = {"yardstick_delivered_kwh": y.delivered_kwh, "yardstick_cost": y.cost}
    if y.delivered_kwh > 0.0:
        result["delivered_vs_yardstick"] = delivered / y.delivered_kwh
    if y.cost > 0.0:
        result["cost_vs_yardstick"] = cost / y.cost
    soc_end = kpis.get("battery_soc_end")
    bound_same = yardstick_cost_same_soc(scenario, y)
    if bound_same is None or not isinstance(soc_end, float):
        return result
    run_same = cost - stored_value(scenario, soc_end)
    result["energy_cost_same_soc"] = run_same
    result["yardstick_cost_same_soc"] = bound_same
    if bound_same > 0.0:
        result["cost_same_soc_vs_yardstick"] = run_same / bound_same
    return result


def yardstick_cost_same_soc(scenario: Scenario, y: Yardstick) -> float | None:
    """The bound's cost with its battery back at the starting SoC; None without a battery."""
    if scenario.battery is None or y.battery_soc_end is None:
        return None
    return y.cost - stored_value(scenario, y.battery_soc_end)


def stored_value(scenario: Scenario, soc_end: float) -> float:
    """What the battery's change of charge over the run is worth: kWh above the starting SoC at
    the cheapest import price over the charge efficiency (negative below it)."""
    battery = scenario.battery
    if battery is None:
        return 0.0
    cheapest = min(period.price for period in scenario.tariff.periods)
    kwh = (soc_end - battery.soc_init) * battery.capacity_kwh
    return kwh * cheapest / battery.charge_efficiency
