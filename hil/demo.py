"""`edge-agent demo`: the agent against simulated devices on loopback, no hardware needed.

For now the simulated site is one grid meter (an Eastron SDM630 with a taxi hub's daily load
curve) served over Modbus TCP; the agent reads it through its real driver and serves the
readings at /metrics, exactly as `edge-agent run` does at a site.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import time

from agent.app import Agent
from agent.config import AgentConfig
from hil.devices.sdm630 import LoadCurveMeter, SimulatedSdm630

DEMO_METRICS_PORT = 9108


def demo_config(meter_port: int, metrics_port: int) -> AgentConfig:
    return AgentConfig.model_validate(
        {
            "site": {
                "name": "demo-hub",
                "grid_import_limit_kw": 1200,
                "grid_meter": "grid-meter",
            },
            "buses": [{"name": "demo-lan", "type": "tcp", "host": "127.0.0.1", "port": meter_port}],
            "devices": [
                {
                    "id": "grid-meter",
                    "kind": "meter",
                    "profile": "eastron-sdm630",
                    "bus": "demo-lan",
                    "unit_id": 1,
                    "poll_interval_s": 1.0,
                }
            ],
            "prometheus": {"bind": "127.0.0.1", "port": metrics_port},
        }
    )


def free_or_any(port: int) -> int:
    """`port` if it can be bound on loopback, else 0 (let the OS pick)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


async def run_demo(seconds: float | None = None) -> None:
    # Start the demo day at 07:00 so the morning rise is visible in the first minutes.
    meter = SimulatedSdm630(LoadCurveMeter(day_offset_s=7 * 3600), time.monotonic)
    meter_port = await meter.start()
    agent = Agent(demo_config(meter_port, free_or_any(DEMO_METRICS_PORT)))
    running = asyncio.create_task(agent.run())
    try:
        serving = asyncio.create_task(agent.serving.wait())
        await asyncio.wait({serving, running}, return_when=asyncio.FIRST_COMPLETED)
        serving.cancel()
        print(
            f"simulated SDM630 grid meter on modbus-tcp://127.0.0.1:{meter_port} (unit 1)\n"
            f"metrics at http://127.0.0.1:{agent.metrics_port}/metrics\n"
            "Ctrl-C to stop",
            flush=True,
        )
        deadline = None if seconds is None else time.monotonic() + seconds
        while not running.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(running), timeout=5.0)
            if not running.done():
                print(f"{time.strftime('%H:%M:%S')} {agent.status_line()}", flush=True)
            if deadline is not None and time.monotonic() >= deadline:
                agent.stop()
        await running
    finally:
        await meter.stop()


def main(seconds: float | None = None) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_demo(seconds))
    print("demo stopped", file=sys.stderr)
    return 0
