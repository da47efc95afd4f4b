"""Controller benchmark: what `fair` buys over `static`, how close both get to the bound, and
what a control cycle costs.

    .venv/bin/python -m hil.bench_controller [--quick] [--json PATH]

1. fast mode on every shipped scenario, `fair` and `static` side by side with the
   perfect-foresight yardstick (`--quick`: the first 3 hours of each); a scenario with a
   week before it (`WEEK_BEFORE`) is run after `fair` has learnt that week, as at a site
   where the agent has been running (the one-day car park also as a first day, `NO_HISTORY`);
2. `step()` wall time p50/p99/max of each strategy (the reference station's 182 connectors is
   the case that matters) and the whole run's simulated seconds per wall second;
3. the battery planner's solve time, when the strategy has one.

The JSON it writes (default `bench-controller.json`) is output: do not commit it.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

from agent.config_loader import load_config
from agent.control.plan import Plan
from agent.control.strategy import Strategy, make_strategy
from agent.state import Snapshot
from hil import fast_mode
from hil.bench.common import (
    Log,
    grid_limit_min_kw,
    header,
    join_sections,
    limit_range,
    num,
    run_main,
    sliced,
)
from hil.results import COMPLETED_SHARE
from hil.scenario import Scenario
from hil.scenario_loader import build_scenario, load_scenario, scenario_names
from hil.scenarios.make_ac_car_park_week import prior_week, week_before_the_day
from hil.site_config import site_toml
from hil.yardstick import Yardstick, YardstickError
from hil.yardstick_report import compare, yardstick_cost_same_soc, yardstick_for

REFERENCE = "reference-station"
STRATEGIES = ("fair", "static")
QUICK_S = 10800
BOUND = "bound"
WEEK_BEFORE: dict[str, Callable[[], dict[str, Any]]] = {
    "ac-car-park": week_before_the_day,
    "ac-car-park-week": prior_week,
}
NO_HISTORY = "fair, first day"  # `fair` without the week before, as on its first day at a site
FIRST_DAY_TOO = frozenset({"ac-car-park"})


@dataclasses.dataclass
class Timings:
    """What one run's strategy cost: each step() in seconds, each new battery plan's solve."""

    steps: list[float] = dataclasses.field(default_factory=list)
    solves: list[float] = dataclasses.field(default_factory=list)
    has_planner: bool = False


@contextmanager
def timed_strategies(timings: Timings) -> Iterator[None]:
    """Swap fast mode's `make_strategy` for the run with one that times each strategy's step.

    The strategy is the real object, with its `step` shadowed on that one instance, so whatever
    fast mode reads on it (failsafe, planner) is untouched. A new
    `planner.latest` seen after a step is a replan: its `solve_s` is collected.
    """

    def make(*args: Any, **kwargs: Any) -> Strategy:
        strategy = make_strategy(*args, **kwargs)
        inner: Callable[[Snapshot, float], Plan] = strategy.step
        seen: list[object] = [None]

        def step(snapshot: Snapshot, now_s: float) -> Plan:
            started = time.perf_counter()
            plan = inner(snapshot, now_s)
            timings.steps.append(time.perf_counter() - started)
            planner = getattr(strategy, "planner", None)
            if planner is not None:
                timings.has_planner = True
                latest = getattr(planner, "latest", None)
                if latest is not None and latest is not seen[0]:
                    seen[0] = latest
                    timings.solves.append(float(latest.solve_s))
            return plan

        strategy.step = step  # type: ignore[method-assign]
        return strategy

    with mock.patch.object(fast_mode, "make_strategy", make):
        yield


def spread(samples: list[float]) -> dict[str, float] | None:
    """p50/p99/max in milliseconds (nearest rank), None without samples."""
    if not samples:
        return None
    ordered = sorted(samples)

    def rank(q: float) -> float:
        return 1000 * ordered[max(math.ceil(q * len(ordered)) - 1, 0)]

    return {"n": len(ordered), "p50_ms": rank(0.5), "p99_ms": rank(0.99), "max_ms": rank(1.0)}


def bound_kpis(scenario: Scenario, y: Yardstick) -> dict[str, Any]:
    """The yardstick in the KPIs' own keys; None where the LP says nothing (it holds the limits
    on 5-minute averages by construction and has no per-second PV or fail-safe)."""
    got = y.delivered_by_session()
    ratios = [got.get(s.id, 0.0) / s.energy_kwh if s.energy_kwh > 0 else 1.0
              for s in scenario.sessions]  # fmt: skip
    squares = sum(r * r for r in ratios)
    return {
        "strategy": BOUND, "energy_requested_kwh": y.requested_kwh,
        "energy_delivered_kwh": y.delivered_kwh, "delivered_vs_yardstick": 1.0,
        "unserved_kwh": sum(max(s.energy_kwh - got.get(s.id, 0.0), 0.0)
                            for s in scenario.sessions),
        "energy_cost": y.cost, "cost_vs_yardstick": 1.0 if y.cost > 0 else None,
        "energy_cost_same_soc": (same := yardstick_cost_same_soc(scenario, y)),
        "cost_same_soc_vs_yardstick": 1.0 if same is not None and same > 0 else None,
        "peak_import_kw": y.peak_import_kw, "sessions": len(scenario.sessions),
        "sessions_completed": sum(got.get(s.id, 0.0) >= COMPLETED_SHARE * s.energy_kwh
                                  for s in scenario.sessions),
        "jain_fairness": sum(ratios) ** 2 / (len(ratios) * squares) if squares > 0 else 1.0,
        "battery_soc_end": y.battery_soc_end, "solve_s": y.solve_s,
    }  # fmt: skip


def run_strategy(
    scenario: Scenario, strategy: str, learnt_from: Path | None = None
) -> dict[str, Any]:
    """One fast-mode run with its step and planner timings; its files go to a temp dir."""
    timings = Timings()
    with tempfile.TemporaryDirectory(prefix="bench-controller-") as tmp:
        out_dir = Path(tmp)
        config = load_config(_site_file(scenario, strategy, out_dir))
        with timed_strategies(timings):
            kpis = fast_mode.run_fast(
                scenario, config, out_dir, strategy, progress=False, learnt_from=learnt_from
            )
    return {
        "kpis": kpis,
        "step": spread(timings.steps),
        "has_planner": timings.has_planner,
        "planner_solve": spread(timings.solves),
    }


def _site_file(scenario: Scenario, strategy: str, out_dir: Path) -> Path:
    path = out_dir / "site.toml"
    path.write_text(site_toml(scenario, strategy=strategy), encoding="utf-8")
    return path


def learn_week_before(name: str, into: Path, log: Log) -> Path | None:
    """Run `fair` over the week before scenario `name`, if it has one; its learnt state file."""
    make = WEEK_BEFORE.get(name)
    if make is None:
        return None
    before = build_scenario(make())
    log(f"  {name}: learning from {before.name}, {before.duration_s} s ...")
    config = load_config(_site_file(before, "fair", into))
    fast_mode.run_fast(before, config, into, "fair", progress=False)
    return into / fast_mode.LEARNT_STATE


def compare_scenario(name: str, duration_s: int | None = None, log: Log = print) -> dict[str, Any]:
    """Every strategy on a scenario (or its first `duration_s`), and the bound."""
    scenario = sliced(load_scenario(name), duration_s)
    result: dict[str, Any] = {
        "scenario": name, "simulated_s": scenario.duration_s,
        "connectors": sum(len(c.connectors) for c in scenario.chargers),
        "grid_limit_kw": scenario.site.grid_limit_kw,
        "grid_limit_min_kw": grid_limit_min_kw(scenario),
        "phase_limits": scenario.site.phase_limit_a is not None,
        "battery": scenario.battery is not None, "runs": {},
    }  # fmt: skip
    try:
        y: Yardstick | None = yardstick_for(scenario)
    except YardstickError as exc:
        y, result["yardstick_error"] = None, str(exc)
    with tempfile.TemporaryDirectory(prefix="bench-controller-before-") as before:
        learnt = learn_week_before(name, Path(before), log) if duration_s is None else None
        result["learnt_week_before"] = learnt is not None
        runs = [(strategy, strategy, learnt) for strategy in STRATEGIES]
        if learnt is not None and name in FIRST_DAY_TOO:
            runs.append((NO_HISTORY, "fair", None))
        for label, strategy, learnt_from in runs:
            log(f"  {name}, {label}, {scenario.duration_s} s ...")
            run = run_strategy(scenario, strategy, learnt_from)
            if y is not None:
                run["kpis"].update(compare(run["kpis"], y, scenario))
            result["runs"][label] = run
    if y is not None:
        result["runs"][BOUND] = {"kpis": bound_kpis(scenario, y)}
    return result


Row = tuple[str, Callable[[dict[str, Any], dict[str, Any]], str]]
ROWS: list[Row] = [
    ("delivered (of bound)", lambda k, s: f"{k['energy_delivered_kwh']:.1f} kWh "
     f"({num(k.get('delivered_vs_yardstick'), '.1%')})"),
    ("unserved", lambda k, s: f"{k['unserved_kwh']:.1f} kWh"),
    ("cost (x bound)", lambda k, s: f"{k['energy_cost']:.2f} {s['currency']} "
     f"(x{num(k.get('cost_vs_yardstick'), '.3f')})"),
    ("cost, same end SoC", lambda k, s: f"{num(k.get('energy_cost_same_soc'), '.2f')} "
     f"{s['currency']} (x{num(k.get('cost_same_soc_vs_yardstick'), '.3f')})"),
    ("peak import / limit", lambda k, s: f"{k['peak_import_kw']:.1f} / {s['limit']} kW"),
    ("limit violation", lambda k, s: num(k.get("limit_violation_kwh"), ".3f", " kWh")),
    ("limit violation time", lambda k, s: num(k.get("limit_violation_s"), ".0f", " s")),
    ("phase violation time", lambda k, s: num(k.get("phase_violation_s"), ".0f", " s")),
    ("PV self-consumption", lambda k, s: num(k.get("pv_self_consumption"), ".1%")),
    ("Jain fairness", lambda k, s: f"{k['jain_fairness']:.3f}"),
    ("sessions completed", lambda k, s: f"{k['sessions_completed']} of {k['sessions']}"),
    ("battery SoC at end", lambda k, s: num(k.get("battery_soc_end"), ".1%")),
    ("fail-safe entries", lambda k, s: num(k.get("failsafe_entries"), "d")),
]  # fmt: skip


def scenario_lines(r: dict[str, Any]) -> list[str]:
    """One table: the KPIs as rows, fair / static / bound as columns."""
    first = next(iter(r["runs"].values()))["kpis"]
    facts = {"currency": first.get("currency", ""),
             "limit": limit_range(r["grid_limit_min_kw"], r["grid_limit_kw"])}  # fmt: skip
    skip = set() if r["phase_limits"] else {"phase violation time"}
    skip |= set() if r["battery"] else {"battery SoC at end", "cost, same end SoC"}
    names = list(r["runs"])
    width = 24
    learnt = ", after learning the week before" if r.get("learnt_week_before") else ""
    lines = [f"   {r['scenario']} ({r['simulated_s']} s, {r['connectors']} connectors{learnt})",
             f"   {'KPI':<22} | " + " | ".join(f"{n:>{width}}" for n in names)]  # fmt: skip
    for label, cell in ROWS:
        if label not in skip:
            cells = " | ".join(f"{cell(r['runs'][n]['kpis'], facts):>{width}}" for n in names)
            lines.append(f"   {label:<22} | {cells}")
    if "yardstick_error" in r:
        lines.append(f"   no bound: {r['yardstick_error']}")
    return lines


def timing_lines(scenarios: list[dict[str, Any]]) -> list[str]:
    """Sections 2 and 3: step() time and run speed per run, then the planner's solves."""
    lines = ["2. step() wall time per control cycle, and the whole fast-mode run's speed",
             f"   {'scenario':<20} {'strategy':<8} {'conn':>4} | {'steps':>6} | {'p50':>9} | "
             f"{'p99':>9} | {'max':>9} | {'sim s / wall s':>14}"]  # fmt: skip
    planner = ["3. Battery planner solve time (BatteryPlan.solve_s, one per replan)"]
    for r in scenarios:
        for name in STRATEGIES:
            run = r["runs"][name]
            s = run["step"] or {"n": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
            lines.append(
                f"   {r['scenario']:<20} {name:<8} {r['connectors']:>4} | {s['n']:>6} | "
                f"{num(s['p50_ms'], '.3f', ' ms'):>9} | {num(s['p99_ms'], '.3f', ' ms'):>9} | "
                f"{num(s['max_ms'], '.3f', ' ms'):>9} | "
                f"{run['kpis']['simulated_s_per_wall_s']:>14.0f}"
            )
            solve = run["planner_solve"]
            where = f"   {r['scenario']:<20} {name:<8}: "
            if not run["has_planner"]:
                planner.append(where + "no planner in this strategy")
            elif solve is None:
                planner.append(where + "a planner, but no plan was solved in the run")
            else:
                planner.append(where + f"{solve['n']} solves, p50 {solve['p50_ms']:.1f} ms, "
                               f"max {solve['max_ms']:.1f} ms")  # fmt: skip
    return [*lines, "", *planner]


def report(results: dict[str, Any]) -> str:
    """The whole printed report."""
    span = f"first {QUICK_S / 3600:g} h of each" if results["quick"] else "whole scenarios"
    kpis = [f"1. KPIs, fast mode, {span}; bound = perfect-foresight yardstick (5-min LP: its "
            "peak is a 5-min average, '-' = not modelled).",
            "   The bound ends with the battery at its starting SoC; a strategy ending lower spent "
            "stored energy the bound may not, and can pass 100 %."]  # fmt: skip
    for r in results["scenarios"]:
        kpis += ["", *scenario_lines(r)]
    return join_sections([header("controller", results), kpis, timing_lines(results["scenarios"])])


def measure(quick: bool, log: Log) -> dict[str, Any]:
    """Every strategy and the bound on every shipped scenario."""
    duration = QUICK_S if quick else None
    return {"scenarios": [compare_scenario(n, duration, log) for n in scenario_names()]}


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark."""
    run_main(argv, name="controller", description=__doc__, default_json="bench-controller.json",
             quick_help="the first 3 h of each scenario", allow_nan=False, measure=measure,
             report=report)  # fmt: skip


if __name__ == "__main__":
    main()
