"""Driver benchmark: what polling the reference station costs in requests, CPU and bus time.

    .venv/bin/python -m hil.bench_drivers [--quick] [--json PATH]

1. requests per control cycle for the reference station's device set, from the read plans the
   drivers make (with and without planning), confirmed by a real worker over loopback TCP;
2. agent CPU seconds per 1,000 Modbus transactions over loopback TCP and over RTU on a pty;
3. the sustained request rate of one RTU worker at 9600, 19200 and 115200 baud;
4. poll-period jitter of healthy meters on one RTU line, with and without a dead unit.

Simulators run in a separate process (`hil.bench.simproc`), so the CPU clock read here is the
agent side only. The JSON it writes (default `bench-drivers.json`) is output: do not commit it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from hil.bench.bus_runs import jitter as jitter_run
from hil.bench.bus_runs import rtu_rate, throughput
from hil.bench.common import Log, header, join_sections, run_main
from hil.bench.planning import confirm_chargers, plan_reference_station

RTU_BAUDRATES = (9600, 19200, 115200)
CHARGER_REGISTERS = 9  # the generic-charger plan reads 100..108 in one request


@dataclass(frozen=True, slots=True)
class Sizes:
    """How long each part runs; --quick keeps the whole script under ~40 s."""

    confirm_s: float
    tcp_transactions: int
    rtu_transactions: int
    rate_transactions: int
    jitter_s: float


QUICK = Sizes(confirm_s=4.0, tcp_transactions=2000, rtu_transactions=400,
              rate_transactions=200, jitter_s=5.0)  # fmt: skip
FULL = Sizes(confirm_s=10.0, tcp_transactions=20000, rtu_transactions=3000,
             rate_transactions=1500, jitter_s=20.0)  # fmt: skip


async def measure(sizes: Sizes, log: Log = print) -> dict[str, Any]:
    """Every measurement, in order; `log` is told which part is running."""
    results: dict[str, Any] = {}
    log("  planning the reference station ...")
    results["planning"] = await plan_reference_station()
    log("  confirming over loopback TCP with a real bus worker ...")
    results["planning"]["confirmation"] = await confirm_chargers(20, sizes.confirm_s)
    log("  CPU per transaction: loopback TCP ...")
    tcp = await throughput("sdm630", 8, sizes.tcp_transactions)
    log("  CPU per transaction: RTU pty at 115200 baud ...")
    rtu = await throughput("sdm630", 8, sizes.rtu_transactions, baudrate=115200)
    per_s = results["planning"]["site"]["requests_per_cycle_avg"]
    results["cpu"] = {
        "device": "8 x eastron-sdm630, 72 registers per request (fast poll)",
        "runs": [tcp.as_dict(), rtu.as_dict()],
        "reference_station_core_fraction_tcp": per_s * tcp.cpu_s_per_1000 / 1000,
    }
    rates = []
    for baudrate in RTU_BAUDRATES:
        log(f"  RTU request rate at {baudrate} baud ...")
        run = await throughput("charger", 4, sizes.rate_transactions, baudrate=baudrate)
        rates.append(rtu_rate(run, baudrate, CHARGER_REGISTERS))
    results["rtu_rate"] = {"device": "4 x generic-charger connectors, 9 registers per request",
                           "runs": rates}  # fmt: skip
    log("  jitter: all healthy ...")
    healthy = await jitter_run(sizes.jitter_s, None)
    log("  jitter: unit 4 SILENT ...")
    dead = await jitter_run(sizes.jitter_s, 4)
    results["jitter"] = {"healthy": healthy, "dead_unit": dead}
    return results


def planning_lines(planning: dict[str, Any]) -> list[str]:
    """Section 1 of the report."""
    lines = ["1. Requests per 1 s control cycle, reference station device set "
             f"(Modbus TCP, poll interval {planning['poll_interval_s']:g} s)"]  # fmt: skip
    lines += ["   assumptions:", *(f"   - {a}" for a in planning["assumptions"])]
    lines += [
        "",
        f"   {'device type':<18} {'n':>4} | {'fields per poll':^17} | "
        f"{'requests per poll, planned':^27} | {'unplanned':>9}",
        f"   {'':<18} {'':>4} | {'fast':>5} {'slow':>5} {'first':>5} | "
        f"{'fast':>5} {'slow':>5} {'first':>5} {'avg/10':>9} | {'fast':>9}",
    ]
    for d in planning["devices"]:
        lines.append(
            f"   {d['type']:<18} {d['count']:>4} | {d['fields_fast']:>5} {d['fields_slow']:>5} "
            f"{d['fields_first']:>5} | {d['requests_fast']:>5} {d['requests_slow']:>5} "
            f"{d['requests_first']:>5} {d['requests_avg']:>9.1f} | {d['fields_fast']:>9}"
        )
    for d in planning["devices"]:
        blocks = ", ".join(f"{a}+{c}" for a, c in d["blocks_fast"])
        helpers = f"; {d['helpers_fast']} of its fields are scale factors" * bool(d["helpers_fast"])
        lines.append(f"   {d['type']}: fast poll reads {blocks} ({d['registers_fast']} "
                     f"registers){helpers}")  # fmt: skip
    site = planning["site"]
    saved = 1 - site["requests_per_cycle_fast"] / site["fields_per_cycle_fast"]
    lines += [
        "",
        f"   site, {site['devices']} devices, per 1 s cycle:",
        f"     fast polls:    {site['requests_per_cycle_fast']:>6} requests/s planned, "
        f"{site['fields_per_cycle_fast']:>6} requests/s unplanned ({saved:.1%} fewer)",
        f"     avg 10 polls:  {site['requests_per_cycle_avg']:>6.1f} requests/s planned, "
        f"{site['fields_per_cycle_avg']:>6.1f} requests/s unplanned",
    ]
    c = planning.get("confirmation")
    if c:
        counts = c["requests_last_cycle"] or [0]
        lines += [
            f"   confirmed: real BusWorker + CycleLoop, {c['connectors']} simulated connectors",
            f"   behind one loopback TCP gateway (SharedLine) for {c['seconds']:g} s:",
            f"     requests_last_cycle mean {c['requests_per_cycle_mean']:.1f} per 1 s cycle "
            f"(min {min(counts)}, max {max(counts)}, {c['cycles']} cycles),",
            f"     requests_total / polls_total = {c['requests_per_poll']:.2f} per poll, "
            f"{c['errors']} errors",
            f"     = {c['requests_per_poll']:.2f} request per connector per s -> "
            f"{182 * c['requests_per_poll']:.0f} requests/s for 182 connectors",
        ]
    return lines


def cpu_lines(cpu: dict[str, Any]) -> list[str]:
    lines = ["2. Agent CPU per 1,000 Modbus transactions (simulator in its own process)",
             f"   {cpu['device']}, back-to-back polls through one BusWorker"]  # fmt: skip
    for r in cpu["runs"]:
        lines.append(
            f"   {r['transport']:<20} {r['cpu_s_per_1000']:.3f} CPU s per 1,000 transactions "
            f"({r['transactions']} in {r['wall_s']:.2f} s wall = "
            f"{r['transactions_per_s']:.0f} transactions/s, CPU {r['cpu_s']:.2f} s, "
            f"{r['errors']} errors)"
        )
    lines.append(f"   the reference station over TCP (planned, avg): about "
                 f"{cpu['reference_station_core_fraction_tcp']:.1%} of one core")  # fmt: skip
    return lines


def rate_lines(rate: dict[str, Any]) -> list[str]:
    lines = [
        "3. Sustained request rate of one RTU worker on a pty",
        f"   {rate['device']}, 8N1, back-to-back polls",
        f"   {'baud':>7} | {'measured':>12} | {'theoretical':>12} | {'frames':>7} | "
        f"{'3.5-char gap':>12} | {'sw per req':>10} | {'est. real line':>14}",
    ]
    for r in rate["runs"]:
        lines.append(
            f"   {r['baudrate']:>7} | {r['measured_per_s']:>6.0f} req/s | "
            f"{r['max_per_s']:>6.1f} req/s | {r['frame_bytes']:>5} B | "
            f"{1000 * r['gap_s']:>9.2f} ms | {r['software_ms_per_request']:>7.2f} ms | "
            f"{r['estimate_real_line_per_s']:>8.1f} req/s"
        )
    lines += [
        "   theoretical = 1 / (request + reply frames on the wire + two 3.5-character gaps), "
        "no device turnaround",
        "   a pty moves bytes at memory speed whatever baud rate is set, so 'measured' is the "
        "software ceiling",
        "   (agent + simulator + the worker's own inter-frame gap); 'est. real line' adds that "
        "software time to the wire time",
    ]
    return lines


def jitter_lines(jitter: dict[str, Any]) -> list[str]:
    h, d = jitter["healthy"], jitter["dead_unit"]
    lines = [
        f"4. Poll-period jitter: {h['units']} x SDM630 on one RTU pty at {h['baudrate']} baud",
        f"   poll interval {h['interval_s']:g} s, bus timeout {h['timeout_s']:g} s, "
        f"{h['seconds']:g} s per run; periods of units 1-3 and 5-8 in both runs",
        f"   {'run':<16} | {'healthy devs':>12} | {'periods':>7} | {'min':>8} | {'p50':>8} | "
        f"{'p99':>8} | {'max':>8}",
    ]
    for name, r in (("all healthy", h), ("unit 4 SILENT", d)):
        lines.append(
            f"   {name:<16} | {r['healthy_devices']:>12} | {r['periods']:>7} | "
            f"{r['min_s']:>6.3f} s | {r['p50_s']:>6.3f} s | {r['p99_s']:>6.3f} s | "
            f"{r['max_s']:>6.3f} s"
        )
    lines += [
        f"   the dead unit cost {d['dead_requests']} requests ({d['dead_timeouts']} timeouts = "
        f"{d['dead_bus_time_s']:.1f} s of bus time, {d['dead_bus_time_s'] / d['seconds']:.1%} "
        "of the run);",
        f"   without back-off it would have cost {d['dead_requests_without_backoff']} "
        f"({d['dead_requests_without_backoff'] * d['timeout_s']:.1f} s of bus time)",
    ]
    return lines


def report(results: dict[str, Any]) -> str:
    """The whole printed report."""
    return join_sections([header("driver", results), planning_lines(results["planning"]),
                          cpu_lines(results["cpu"]), rate_lines(results["rtu_rate"]),
                          jitter_lines(results["jitter"])])  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark; a dead unit is the point of part 4, so its timeouts are not logged."""
    run_main(argv, name="driver", description=__doc__, default_json="bench-drivers.json",
             quick_help="short runs (under ~40 s)", loadavg=False, quiet=True,
             measure=lambda quick, log: asyncio.run(measure(QUICK if quick else FULL, log)),
             report=report)  # fmt: skip


if __name__ == "__main__":
    main()
