"""`edge-agent demo`: the reference station in hardware-in-the-loop mode, no hardware needed.

The simulated taxi hub (91 DC chargers, 182 connectors, 1.1 MWp PV, 2 MWh battery, 1.2 MW
grid limit) is served over real sockets: its grid meter on an RS-485 pty, its PV inverters,
battery and charger gateways on Modbus TCP. The real daemon (`edge-agent run`) runs against it
in its own process, with its metrics endpoint, while a status line shows the site every 5 s.
The day starts at 10:00 local, when cars and sun are both about.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from pathlib import Path

from hil.hil_mode import HilSite, run_hil
from hil.physics import StepResult
from hil.scenario_loader import load_scenario

DEMO_METRICS_PORT = 9108
DEMO_SCENARIO = "reference-station"
DEMO_START = "10:00"
STATUS_EVERY_S = 5


def free_or_any(port: int) -> int:
    """`port` if it can be bound on loopback, else a free one."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            probe.bind(("127.0.0.1", 0))
            return int(probe.getsockname()[1])
    return port


def status_line(site: HilSite, row: StepResult) -> str:
    physics = site.physics
    clock = site.scenario.local_minute(row.t_s)
    charging = sum(
        1 for charger, connector in physics.connector_ids()
        if physics.connector_power_kw(charger, connector) > 0
    )  # fmt: skip
    delivered = sum(physics.delivered_kwh().values())
    soc = "-" if row.battery_soc is None else f"{row.battery_soc * 100:.1f} %"
    return (
        f"{int(clock // 60):02d}:{int(clock % 60):02d}:{int(row.t_s % 60):02d}  "
        f"grid {row.grid_kw:7.1f} kW of {row.grid_limit_kw:.0f} kW  "
        f"PV {row.pv_used_kw:6.1f} kW  battery SoC {soc}  "
        f"cars charging {charging:3d}  delivered {delivered:8.1f} kWh"
    )


async def run_demo(seconds: float | None) -> None:
    scenario = load_scenario(DEMO_SCENARIO)
    metrics_port = free_or_any(DEMO_METRICS_PORT)
    out_dir = Path("out") / "demo"
    print(
        f"{scenario.name}: {scenario.description}\n"
        f"the real daemon runs against it; metrics at http://127.0.0.1:{metrics_port}/metrics\n"
        f"its log: {out_dir / 'agent.log'}; Ctrl-C to stop",
        flush=True,
    )

    def on_second(site: HilSite, row: StepResult) -> None:
        if int(row.t_s) % STATUS_EVERY_S == 0:
            print(status_line(site, row), flush=True)

    await run_hil(
        scenario,
        out_dir,
        start=DEMO_START,
        seconds=seconds,
        progress=False,
        metrics_port=metrics_port,
        on_second=on_second,
    )
    print(f"results of the run in {out_dir}/", flush=True)


def main(seconds: float | None = None) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_demo(seconds))
    print("demo stopped", file=sys.stderr)
    return 0
