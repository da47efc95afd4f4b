"""Simulator benchmark: how fast fast mode runs, and what the daemon costs in a HIL run.

    .venv/bin/python -m hil.bench_simulator [--quick] [--json PATH]

1. fast mode, `static` strategy, on every shipped scenario: simulated seconds per wall second
   and the strategy's KPIs (`--quick`: the first 2 hours of each);
2. HIL mode, the reference station from 10:00 at speed 1 (1 s control cycle) for 600 s
   (`--quick`: 60 s): CPU share and RSS of the agent process (`python -m agent run`, sampled
   from /proc every 10 s), its own metrics at the end, and the simulator's CPU share.

The JSON it writes (default `bench-simulator.json`) is output: do not commit it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import time
import urllib.request
from collections import defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from agent.config_loader import load_config
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
from hil.fast_mode import run_fast
from hil.hil_mode import HilSite, run_hil, start_offset_s
from hil.physics import StepResult
from hil.scenario_loader import load_scenario, scenario_names
from hil.site_config import site_toml

REFERENCE = "reference-station"
HIL_FROM = "10:00"
QUICK_FAST_S = 7200
SAMPLE_S = 10  # /proc sample period of the agent process
WINDOW_S = 60  # CPU share reported per window
CLK_TCK = os.sysconf("SC_CLK_TCK")


def fast_run(name: str, duration_s: int | None = None) -> dict[str, Any]:
    """One scenario (optionally its first `duration_s`) in fast mode with `static`."""
    scenario = sliced(load_scenario(name), duration_s)
    with tempfile.TemporaryDirectory(prefix="bench-simulator-") as tmp:
        out_dir = Path(tmp)
        config_path = out_dir / "site.toml"
        config_path.write_text(site_toml(scenario, strategy="static"), encoding="utf-8")
        kpis = run_fast(scenario, load_config(config_path), out_dir, "static", progress=False)
    return {"scenario": name, "simulated_s": scenario.duration_s,
            "grid_limit_kw": scenario.site.grid_limit_kw,
            "grid_limit_min_kw": grid_limit_min_kw(scenario), "kpis": kpis}  # fmt: skip


def read_proc(pid: int) -> tuple[float, int, float]:
    """CPU seconds (user + system), VmRSS in kB and age in seconds of a process."""
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    fields = stat[stat.rfind(")") + 2 :].split()  # fields[0] is field 3 (state)
    cpu_s = (int(fields[11]) + int(fields[12])) / CLK_TCK
    age_s = time.clock_gettime(time.CLOCK_BOOTTIME) - int(fields[19]) / CLK_TCK
    rss_kb = 0
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
    return cpu_s, rss_kb, age_s


def find_agent(config_path: Path) -> int | None:
    """Our child `python -m agent run --config <config_path>`, by its command line."""
    want = ["-m", "agent", "run", "--config", str(config_path)]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile, or not ours to read
        if argv[1:] == want and ppid == os.getpid():
            return int(entry.name)
    return None


def scrape(port: int) -> dict[str, Any]:
    """The agent's /metrics, summed the way the report shows them."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode("utf-8")
    per_bus: dict[str, float] = {}
    writes: dict[str, float] = defaultdict(float)
    errors: dict[str, float] = defaultdict(float)
    requests, up, devices = 0.0, 0, 0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "edge_agent_modbus_requests_total":
                requests += s.value
            elif s.name == "edge_agent_bus_requests_per_cycle":
                per_bus[s.labels["bus"]] = s.value
            elif s.name == "edge_agent_setpoint_writes_total":
                writes[s.labels["result"]] += s.value
            elif s.name == "edge_agent_device_up":
                devices += 1
                up += s.value == 1
            elif s.name == "edge_agent_device_read_errors_total":
                errors[s.labels["reason"]] += s.value
    return {"modbus_requests_total": requests, "bus_requests_per_cycle": sum(per_bus.values()),
            "bus_requests_per_cycle_by_bus": per_bus, "setpoint_writes": dict(writes),
            "devices": devices, "devices_up": up, "read_errors": dict(errors)}  # fmt: skip


class AgentWatch:
    """`run_hil`'s on_second hook: samples the agent every SAMPLE_S s, scrapes it at the end."""

    def __init__(self, config_path: Path, first_s: float, last_s: float, port: int) -> None:
        self.config_path, self.first_s, self.last_s, self.port = config_path, first_s, last_s, port
        self.pid: int | None = None
        self.samples: list[dict[str, float]] = []
        self.sim: list[tuple[float, float]] = []  # (process_time, monotonic) at start and end
        self.metrics: dict[str, Any] = {}

    def __call__(self, site: HilSite, row: StepResult) -> None:
        offset = round(site.physics.now_s - self.first_s)
        if self.pid is None:
            self.pid = find_agent(self.config_path)
            if self.pid is None:
                return
        last = site.physics.now_s >= self.last_s
        if not self.samples or offset % SAMPLE_S == 0 or last:
            cpu_s, rss_kb, age_s = read_proc(self.pid)
            self.samples.append({"offset_s": offset, "wall": time.monotonic(), "cpu_s": cpu_s,
                                 "rss_mib": rss_kb / 1024, "age_s": age_s})  # fmt: skip
        if len(self.sim) == 0 or last:
            self.sim.append((time.process_time(), time.monotonic()))
        if last:
            try:
                self.metrics = scrape(self.port)
            except OSError as exc:
                self.metrics = {"error": str(exc)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def share(a: dict[str, float], b: dict[str, float]) -> float:
    """CPU % of one core between two samples."""
    return 100 * (b["cpu_s"] - a["cpu_s"]) / (b["wall"] - a["wall"])


async def hil_run(seconds: float) -> dict[str, Any]:
    """The reference station in HIL from HIL_FROM for `seconds` at speed 1, the agent watched."""
    scenario = load_scenario(REFERENCE)
    first_s = start_offset_s(scenario, HIL_FROM)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-simulator-hil-") as tmp:
        out_dir = Path(tmp)
        watch = AgentWatch(out_dir / "site.toml", first_s, first_s + seconds, port)
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            kpis = await run_hil(scenario, out_dir, strategy="static", start=HIL_FROM,
                                 seconds=seconds, speed=1.0, progress=False, metrics_port=port,
                                 on_second=watch)  # fmt: skip
        except RuntimeError as exc:  # the temp dir goes: keep the end of the agent's log
            log = (out_dir / "agent.log").read_text(encoding="utf-8", errors="replace")
            raise RuntimeError(f"{exc}; its log ends:\n{log[-3000:]}") from exc
        wall_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    s = watch.samples
    if watch.pid is None or len(s) < 2:
        raise RuntimeError("the agent process was not found under /proc")
    marks = [x for i, x in enumerate(s) if i in (0, len(s) - 1) or x["offset_s"] % WINDOW_S == 0]
    windows = [{"from_s": a["offset_s"], "to_s": b["offset_s"], "cpu_pct": share(a, b),
                "rss_mib": b["rss_mib"]} for a, b in pairwise(marks)]  # fmt: skip
    (p0, w0), (p1, w1) = watch.sim[0], watch.sim[-1]
    requests = watch.metrics.get("modbus_requests_total", 0.0)
    return {
        "scenario": REFERENCE, "from": HIL_FROM, "seconds": seconds, "speed": 1.0, "cycle_s": 1.0,
        "pid": watch.pid, "samples": s, "windows": windows,
        "agent": {
            "age_s": s[-1]["age_s"], "cpu_s": s[-1]["cpu_s"],
            "cpu_pct_lifetime": 100 * s[-1]["cpu_s"] / s[-1]["age_s"],
            "cpu_pct_after_first_sample": share(s[0], s[-1]),
            "startup_cpu_s": s[0]["cpu_s"], "startup_age_s": s[0]["age_s"],
            "rss_start_mib": s[0]["rss_mib"], "rss_end_mib": s[-1]["rss_mib"],
            "rss_max_mib": max(x["rss_mib"] for x in s),
            "cpu_ms_per_request": 1000 * s[-1]["cpu_s"] / requests if requests else None,
        },
        "metrics": watch.metrics,
        "simulator": {"cpu_pct": 100 * (p1 - p0) / (w1 - w0), "cpu_s_real_time": p1 - p0,
                      "cpu_s_total": cpu_s, "wall_s_total": wall_s},
        "kpis": kpis,
    }  # fmt: skip


def limit_text(run: dict[str, Any]) -> str:
    limit = limit_range(run["grid_limit_min_kw"], run["grid_limit_kw"])
    return f"{run['kpis']['peak_import_kw']:.1f} / {limit} kW"


def fast_lines(runs: list[dict[str, Any]], quick: bool) -> list[str]:
    span = f"first {QUICK_FAST_S / 3600:g} h of each" if quick else "whole scenarios"
    lines = [
        f"1. Fast mode, static strategy, {span} (controller in-process, 1 s physics steps)",
        f"   {'scenario':<20} | {'simulated':>10} | {'wall':>8} | {'speed':>16} | writes",
    ]
    for r in runs:
        k = r["kpis"]
        lines.append(
            f"   {r['scenario']:<20} | {r['simulated_s']:>8} s | {k['wall_s']:>6.1f} s | "
            f"{k['simulated_s_per_wall_s']:>7.0f} sim s/s | {k['setpoint_writes']}"
        )
    rows: list[tuple[str, Any]] = [
        ("energy requested", lambda k, r: f"{k['energy_requested_kwh']:.1f} kWh"),
        ("energy delivered", lambda k, r: f"{k['energy_delivered_kwh']:.1f} kWh"),
        ("unserved", lambda k, r: f"{k['unserved_kwh']:.1f} kWh"),
        ("sessions completed", lambda k, r: f"{k['sessions_completed']} of {k['sessions']}"),
        ("grid import", lambda k, r: f"{k['grid_import_kwh']:.1f} kWh"),
        ("energy cost", lambda k, r: f"{k['energy_cost']:.2f} {k['currency']}"),
        ("peak import / limit", lambda k, r: limit_text(r)),
        ("limit violation", lambda k, r: f"{k['limit_violation_kwh']:.3f} kWh"),
        ("limit violation time", lambda k, r: f"{k['limit_violation_s']:.0f} s"),
        ("max overshoot", lambda k, r: f"{k['max_overshoot_kw']:.2f} kW"),
        ("PV self-consumption", lambda k, r: num(k["pv_self_consumption"], ".1%")),
        ("Jain fairness", lambda k, r: f"{k['jain_fairness']:.3f}"),
        ("phase violation time", lambda k, r: num(k.get("phase_violation_s"), ".0f", " s")),
        ("max phase overshoot", lambda k, r: num(k.get("max_phase_overshoot_a"), ".2f", " A")),
    ]  # fmt: skip
    width = max(22, *(len(r["scenario"]) for r in runs))
    lines += ["", f"   {'KPI':<22} | " + " | ".join(f"{r['scenario']:>{width}}" for r in runs)]
    for label, cell in rows:
        cells = " | ".join(f"{cell(r['kpis'], r):>{width}}" for r in runs)
        lines.append(f"   {label:<22} | {cells}")
    return lines


def hil_lines(h: dict[str, Any]) -> list[str]:
    a, m, sim = h["agent"], h["metrics"], h["simulator"]
    lines = [
        f"2. HIL mode: {h['scenario']} from {h['from']} for {h['seconds']:g} s at speed "
        f"{h['speed']:g} (control cycle {h['cycle_s']:g} s), agent pid {h['pid']}",
        f"   agent CPU: {a['cpu_pct_lifetime']:.1f} % of one core over its life "
        f"({a['cpu_s']:.1f} CPU s in {a['age_s']:.0f} s), {a['cpu_pct_after_first_sample']:.1f} %"
        " after the first sample",
        f"   startup: {a['startup_cpu_s']:.2f} CPU s by the first sample at "
        f"{a['startup_age_s']:.1f} s of age; "
        f"CPU per Modbus request {num(a['cpu_ms_per_request'], '.3f', ' ms')}",
        f"   agent RSS: start {a['rss_start_mib']:.1f} MiB, end {a['rss_end_mib']:.1f} MiB, "
        f"max {a['rss_max_mib']:.1f} MiB ({len(h['samples'])} samples every {SAMPLE_S} s)",
        f"   {'window':>13} | {'agent CPU':>9} | {'RSS at end':>10}",
    ]
    for w in h["windows"]:
        lines.append(f"   {w['from_s']:>5}-{w['to_s']:>5} s | {w['cpu_pct']:>7.1f} % | "
                     f"{w['rss_mib']:>6.1f} MiB")  # fmt: skip
    if "error" in m or not m:
        lines.append(f"   metrics: not scraped ({m.get('error', 'no data')})")
    else:
        per_s = m["modbus_requests_total"] / a["age_s"]
        lines += [
            f"   agent metrics at the end: {m['modbus_requests_total']:.0f} Modbus requests "
            f"(~{per_s:.0f} requests/s over its life),",
            f"     {m['bus_requests_per_cycle']:.0f} requests in the last cycle over "
            f"{len(m['bus_requests_per_cycle_by_bus'])} buses",
            f"     devices up {m['devices_up']} of {m['devices']}; setpoint writes "
            + (", ".join(f"{r} {n:.0f}" for r, n in sorted(m["setpoint_writes"].items()))
               or "none")
            + "; read errors "
            + (", ".join(f"{r} {n:.0f}" for r, n in sorted(m["read_errors"].items())) or "none"),
        ]  # fmt: skip
    k = h["kpis"]
    lines += [
        f"   simulator (this process) CPU: {sim['cpu_pct']:.1f} % of one core during the real-time"
        f" part ({sim['cpu_s_real_time']:.1f} CPU s);",
        f"     {sim['cpu_s_total']:.1f} CPU s in {sim['wall_s_total']:.0f} s wall in all, with "
        f"moving the physics to {h['from']} first",
        f"   window KPIs: peak import {k['peak_import_kw']:.1f} kW, violation "
        f"{k['limit_violation_kwh']:.3f} kWh / {k['limit_violation_s']:.0f} s, delivered "
        f"{k['energy_delivered_kwh']:.1f} kWh",
    ]
    return lines


def report(results: dict[str, Any]) -> str:
    """The whole printed report."""
    return join_sections([header("simulator", results),
                          fast_lines(results["fast"], results["quick"]),
                          hil_lines(results["hil"])])  # fmt: skip


def measure(quick: bool, log: Log) -> dict[str, Any]:
    """Fast mode on every shipped scenario, then the reference station in HIL."""
    fast = []
    for name in scenario_names():
        log(f"  fast mode: {name} ...")
        fast.append(fast_run(name, QUICK_FAST_S if quick else None))
    seconds = 60.0 if quick else 600.0
    log(f"  HIL: {REFERENCE} from {HIL_FROM} for {seconds:g} s ...")
    return {"fast": fast, "hil": asyncio.run(hil_run(seconds))}


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark."""
    run_main(argv, name="simulator", description=__doc__, default_json="bench-simulator.json",
             quick_help="2 h fast runs, 60 s of HIL", quiet=True, measure=measure,
             report=report)  # fmt: skip


if __name__ == "__main__":
    main()
