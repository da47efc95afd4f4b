"""What the three benchmark scripts share: the machine facts, the report header, the command line.

Each `hil.bench_*` script supplies a `measure(quick, log)` that returns its own sections and a
`report(results)` that prints them; `run_main` does the rest: arguments, logging, timing, the
common keys (`timestamp`, `machine`, `quick`, `elapsed_s`, optionally `loadavg_start` and
`loadavg_end`), the printed report and the JSON file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pymodbus

from hil.scenario import GridLimitEvent, Scenario

Log = Callable[[str], None]
Measure = Callable[[bool, Log], dict[str, Any]]


def machine_facts() -> dict[str, object]:
    """What the numbers were measured on."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"python": platform.python_version(), "implementation": sys.implementation.name,
            "platform": platform.platform(), "cpu_count": os.cpu_count(), "cpu_model": model,
            "pymodbus": pymodbus.__version__}  # fmt: skip


def header(name: str, results: dict[str, Any]) -> list[str]:
    """The report's first lines: which run, when, on what machine (and its load, if recorded)."""
    m = results["machine"]
    lines = [
        f"edge-agent {name} benchmark ({'quick' if results['quick'] else 'full'} run), "
        f"{results['timestamp']}",
        f"machine: Python {m['python']}, {m['platform']}, {m['cpu_count']} CPUs "
        f"({m['cpu_model'] or 'unknown model'}), pymodbus {m['pymodbus']}",
    ]
    if "loadavg_start" in results:
        lines.append(
            "load average (1/5/15 min) at start "
            + " ".join(f"{x:.2f}" for x in results["loadavg_start"])
            + ", at end "
            + " ".join(f"{x:.2f}" for x in results["loadavg_end"])
        )
    return lines


def join_sections(sections: Iterable[list[str]]) -> str:
    """The report's sections, one blank line between them."""
    return "\n\n".join("\n".join(lines) for lines in sections)


def num(value: Any, spec: str, unit: str = "") -> str:
    """A number with its unit, or '-' for what does not apply."""
    return "-" if value is None else format(value, spec) + unit


def sliced(scenario: Scenario, duration_s: int | None) -> Scenario:
    """The first `duration_s` of a scenario, without the cars arriving after it (they would only
    count as unserved)."""
    if duration_s is None or duration_s >= scenario.duration_s:
        return scenario
    sessions = tuple(s for s in scenario.sessions if s.arrive_s < duration_s)
    return dataclasses.replace(scenario, duration_s=duration_s, sessions=sessions)


def grid_limit_min_kw(scenario: Scenario) -> float:
    """The lowest grid limit in force during the scenario, its limit events included."""
    cuts = [e.kw for e in scenario.events
            if isinstance(e, GridLimitEvent) and e.t_s < scenario.duration_s]  # fmt: skip
    return min([scenario.site.grid_limit_kw, *cuts])


def limit_range(low: float, high: float) -> str:
    """A grid limit that changes during the run as 'low-high', else the one value."""
    return f"{high:g}" if low == high else f"{low:g}-{high:g}"


def say(text: str) -> None:
    """Print a progress line at once."""
    print(text, flush=True)


def run_main(
    argv: list[str] | None,
    *,
    name: str,
    description: str | None,
    default_json: str,
    quick_help: str,
    measure: Measure,
    report: Callable[[dict[str, Any]], str],
    loadavg: bool = True,
    quiet: bool = False,
    allow_nan: bool = True,
) -> None:
    """Parse `--quick`/`--json`, measure, print the report and write the results as JSON."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--json", type=Path, default=Path(default_json),
                        help="where to write the results (default: %(default)s)")  # fmt: skip
    args = parser.parse_args(argv)
    if quiet:  # expected timeouts and dead units are not news
        logging.basicConfig(level=logging.ERROR)
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    started = time.perf_counter()
    say(f"running the {'quick' if args.quick else 'full'} {name} benchmark ...")
    results: dict[str, Any] = {"timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
                               "machine": machine_facts(), "quick": args.quick}  # fmt: skip
    if loadavg:
        results["loadavg_start"] = os.getloadavg()
    results.update(measure(args.quick, say))
    results["elapsed_s"] = time.perf_counter() - started
    if loadavg:
        results["loadavg_end"] = os.getloadavg()  # other work on the machine skews the timings
    print()
    print(report(results))
    text = json.dumps(results, indent=2, allow_nan=allow_nan)
    args.json.write_text(text + "\n", encoding="utf-8")
    print(f"\nwritten to {args.json} in {results['elapsed_s']:.0f} s")
