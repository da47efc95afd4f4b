"""`edge-agent simulate`: run a scenario in fast mode or hardware-in-the-loop, print the KPIs.

Both modes write the generated site config (`site.toml`) next to the results, so what the agent
was told about the site is part of every run's record.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from agent.config_loader import ConfigError, load_config
from agent.control.strategy import STRATEGY_NAMES
from hil.plot import plot_day
from hil.scenario import Scenario
from hil.scenario_loader import ScenarioError, load_scenario, scenario_names
from hil.site_config import site_toml
from hil.yardstick import YardstickError
from hil.yardstick_report import compare, yardstick_for

EXIT_OK = 0
EXIT_BAD_INPUT = 1

SUMMARY_KEYS = (
    "energy_requested_kwh",
    "energy_delivered_kwh",
    "yardstick_delivered_kwh",
    "delivered_vs_yardstick",
    "sessions_completed",
    "grid_import_kwh",
    "energy_cost",
    "cost_vs_yardstick",
    "peak_import_kw",
    "limit_violation_kwh",
    "limit_violation_s",
    "pv_self_consumption",
    "jain_fairness",
    "wall_s",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", help=f"a file, or one of: {', '.join(scenario_names())}")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default out/NAME)")
    parser.add_argument("--strategy", default="fair", choices=STRATEGY_NAMES)
    parser.add_argument("--hil", action="store_true", help="real daemon, devices on real sockets")
    parser.add_argument("--from", dest="start", default=None, help="HIL: start at HH:MM")
    parser.add_argument("--for", dest="seconds", type=float, default=None, help="HIL: run length")
    parser.add_argument("--speed", type=float, default=1.0, help="HIL: simulated s per wall s")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--learnt-state",
        type=Path,
        default=None,
        help="fast mode: start from what an earlier run learnt (its control-state.json)",
    )


def main(args: argparse.Namespace) -> int:
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    out_dir: Path = args.out or Path("out") / scenario.name
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.hil:
        from hil.hil_mode import run_hil  # sockets only when asked for

        kpis = asyncio.run(
            run_hil(
                scenario,
                out_dir,
                strategy=args.strategy,
                start=args.start,
                seconds=args.seconds,
                speed=args.speed,
                progress=not args.quiet,
            )
        )
    else:
        config_path = out_dir / "site.toml"
        config_path.write_text(site_toml(scenario, strategy=args.strategy), encoding="utf-8")
        try:
            config = load_config(config_path)
        except ConfigError as exc:  # a bug in the generator, not the user's fault: say so
            print(f"generated site config is invalid:\n{exc.report()}", file=sys.stderr)
            return EXIT_BAD_INPUT
        from hil.fast_mode import run_fast

        kpis = run_fast(
            scenario,
            config,
            out_dir,
            args.strategy,
            progress=not args.quiet,
            learnt_from=args.learnt_state,
        )
    add_yardstick(kpis, scenario, out_dir)
    plot_day(out_dir, scenario)
    print(summary(kpis, out_dir))
    return EXIT_OK


def add_yardstick(kpis: dict[str, object], scenario: Scenario, out_dir: Path) -> None:
    """The perfect-foresight bound next to the run's delivered energy and cost, in kpis.json."""
    try:
        kpis.update(compare(kpis, yardstick_for(scenario), scenario))
    except YardstickError as exc:
        print(f"no yardstick: {exc}", file=sys.stderr)
        return
    text = json.dumps(kpis, indent=2, allow_nan=False) + "\n"
    (out_dir / "kpis.json").write_text(text, encoding="utf-8")


def summary(kpis: dict[str, object], out_dir: Path) -> str:
    lines = [f"results in {out_dir}/ (timeseries.csv, sessions.csv, kpis.json, day.png)"]
    for key in SUMMARY_KEYS:
        if key in kpis:
            lines.append(f"  {key:24s} {json.dumps(kpis[key])}")
    return "\n".join(lines)
