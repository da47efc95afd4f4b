"""Hardware-in-the-loop: the scenario's devices on real sockets, the real daemon against them.

The HIL loop owns the clock: every 1/speed wall seconds it steps the physics by one simulated
second, records the row, and switches the events' faults (a `meter_outage` silences the
SDM630 on its RS-485 pty, a `charger_offline` silences that charger's units). The daemon is
`python -m agent run` with the generated site file, in its own process: the same code path a
site runs, talking Modbus RTU over a socat pty pair and Modbus TCP over loopback. With
`speed` > 1 its cycle and polls shrink to match the simulated clock (its own clock stays real).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from hil.devices.faults import Fault
from hil.devices.line import SharedLine
from hil.devices.sdm630 import SimulatedSdm630
from hil.devices.sunspec import SimulatedSunSpecInverter
from hil.hil_devices import PhysicsBattery, PhysicsConnectors, PhysicsMeter, pv_share
from hil.physics import SitePhysics, StepResult
from hil.plot import start_of_day_s
from hil.progress import Progress
from hil.pty import PtyPair
from hil.results import RunRecorder
from hil.scenario import Scenario
from hil.site_config import (
    CONNECTORS_PER_GATEWAY,
    INVERTER_KW,
    METER_BAUD,
    Endpoints,
    connector_slots,
    has_limit_signal,
    inverter_count,
    site_toml,
)

AGENT_STARTUP_S = 30.0
MAX_SPEED = 10.0  # the agent's cycle cannot go below 0.1 s


@dataclass
class HilSite:
    """Everything serving the scenario: physics, device faces, their servers, the agent."""

    scenario: Scenario
    physics: SitePhysics
    meter_source: PhysicsMeter
    meter: SimulatedSdm630
    gateways: list[PhysicsConnectors] = field(default_factory=list)
    inverters: list[SimulatedSunSpecInverter] = field(default_factory=list)
    servers: list[SharedLine | SimulatedSdm630 | PhysicsConnectors | PhysicsBattery] = field(
        default_factory=list
    )
    last: StepResult | None = None

    def apply_events(self, t_s: float) -> None:
        """Faults the scenario's events put on the devices at scenario time t_s."""
        silent = self.scenario.meter_out(t_s)
        self.meter.faults.set(Fault.SILENT if silent else Fault.NONE)
        for gateway in self.gateways:
            for charger_id, switch in gateway.faults.items():
                offline = self.scenario.charger_offline(charger_id, t_s)
                switch.set(Fault.SILENT if offline else Fault.NONE)

    def pv_limit_kw(self) -> float | None:
        """What the agent's curtailment writes to the inverters add up to, or None."""
        if not self.inverters or all(not inv.limit_enabled for inv in self.inverters):
            return None
        return sum(inv.limit_w for inv in self.inverters) / 1000


def start_offset_s(scenario: Scenario, hhmm: str | None) -> float:
    """Seconds from the scenario start to the first HH:MM (local) at or after it."""
    if hhmm is None:
        return 0.0
    hours, minutes = (int(part) for part in hhmm.split(":"))
    start = scenario.start
    target = start.replace(hour=hours, minute=minutes, second=0, microsecond=0)
    if target < start:
        target += timedelta(days=1)
    return (target - start).total_seconds()


async def serve_site(
    scenario: Scenario, physics: SitePhysics, meter_port: str
) -> tuple[HilSite, Endpoints]:
    """Start every simulated device; returns the site and where the agent finds each bus."""
    source = PhysicsMeter(physics, scenario.site.voltage_v)
    meter = SimulatedSdm630(source, time.monotonic, unit_id=1)
    await meter.start_serial(meter_port, baudrate=METER_BAUD)
    site = HilSite(scenario, physics, source, meter, servers=[meter])
    count = inverter_count(scenario)
    pv_port = 0
    if count:
        assert scenario.pv is not None
        rated = min(INVERTER_KW, scenario.pv.peak_kw / count) * 1000
        share = pv_share(lambda: site.last, count)
        site.inverters = [
            SimulatedSunSpecInverter(share, time.monotonic, unit_id=n, rated_w=rated)
            for n in range(1, count + 1)
        ]
        line = SharedLine(site.inverters)
        pv_port = await line.start()
        site.servers.append(line)
    battery_port = 0
    if scenario.battery is not None:
        battery = PhysicsBattery(
            physics, scenario.battery.capacity_kwh, scenario.battery.max_discharge_kw
        )
        battery_port = await battery.start()
        site.servers.append(battery)
    ports = []
    slots = connector_slots(scenario)
    for gateway in range(math.ceil(len(slots) / CONNECTORS_PER_GATEWAY)):
        mine = [(c, k, unit) for c, k, g, unit in slots if g == gateway]
        faces = PhysicsConnectors(physics, mine, gateway == 0 and has_limit_signal(scenario))
        ports.append(await faces.start())
        site.gateways.append(faces)
        site.servers.append(faces)
    endpoints = Endpoints(meter_port, pv_port, battery_port, tuple(ports))
    return site, endpoints


@contextlib.asynccontextmanager
async def running_agent(
    config_path: Path, log_path: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python -m agent run --config ...` as a child process; SIGTERM on the way out."""
    log = await asyncio.to_thread(log_path.open, "wb")
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent", "run", "--config", str(config_path),
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        try:
            yield process
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), 10)
                except TimeoutError:
                    process.kill()
                    await process.wait()
    finally:
        log.close()


async def run_hil(
    scenario: Scenario,
    out_dir: Path,
    strategy: str = "fair",
    start: str | None = None,
    seconds: float | None = None,
    speed: float = 1.0,
    progress: bool = True,
    metrics_port: int = 0,
    on_second: Callable[[HilSite, StepResult], None] | None = None,
) -> dict[str, object]:
    """Serve the scenario, run the daemon against it, and return the run's KPIs."""
    if not 0 < speed <= MAX_SPEED:
        raise ValueError(f"speed must be in (0, {MAX_SPEED:g}]")
    wall_started = time.perf_counter()
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    first_s = start_offset_s(scenario, start)
    last_s = min(scenario.duration_s, first_s + seconds) if seconds else scenario.duration_s
    physics = SitePhysics(scenario)
    # Move the physics to the start time without a controller: cars before it are history.
    while physics.now_s < first_s:
        physics.step(1.0)
    # Score the sessions the window saw, not those before or after it.
    seen = tuple(s for s in scenario.sessions if s.arrive_s < last_s and s.depart_s > first_s)
    recorder = RunRecorder(out_dir, dataclasses.replace(scenario, sessions=seen))
    with (
        tempfile.TemporaryDirectory(prefix="edge-agent-hil-") as tty_dir,
        PtyPair(Path(tty_dir)) as pty,
    ):
        site, endpoints = await serve_site(scenario, physics, str(pty.device_end))
        endpoints = Endpoints(
            str(pty.agent_end), endpoints.pv, endpoints.battery, endpoints.chargers, metrics_port
        )
        config_path = out_dir / "site.toml"
        text = site_toml(scenario, endpoints, strategy, speed, out_dir / "control-state.json")
        await asyncio.to_thread(config_path.write_text, text, encoding="utf-8")
        day_s = start_of_day_s(scenario) + first_s
        bar = Progress(last_s - first_s, start_of_day_s=day_s) if progress else None
        try:
            async with running_agent(config_path, out_dir / "agent.log") as agent:
                site.last = physics.step(1.0)
                site.meter_source.record(site.last)
                recorder.record(site.last)
                tick = 1.0 / speed
                next_tick = time.monotonic() + tick
                while physics.now_s < last_s:
                    await asyncio.sleep(max(next_tick - time.monotonic(), 0.0))
                    next_tick += tick
                    if agent.returncode is not None:
                        raise RuntimeError(f"the agent exited ({agent.returncode}); see agent.log")
                    site.apply_events(physics.now_s)
                    for server in site.servers:
                        if isinstance(server, PhysicsBattery):
                            server.update()  # its revert timer runs even when nobody asks
                    pv_limit = site.pv_limit_kw()
                    physics.set_pv_limit_kw(pv_limit)
                    site.last = physics.step(1.0)
                    site.meter_source.record(site.last)
                    recorder.record(site.last)
                    if on_second is not None:
                        on_second(site, site.last)
                    if bar is not None:
                        bar.update(physics.now_s - first_s)
        finally:
            if bar is not None:
                bar.close()
            for server in site.servers:
                await server.stop()
    wall_s = time.perf_counter() - wall_started
    extra = {"strategy": strategy, "mode": "hil", "from_s": first_s, "speed": speed}
    seen_ids = {session.id for session in seen}
    delivered = {k: v for k, v in physics.delivered_kwh().items() if k in seen_ids}
    return recorder.finish(delivered, wall_s, extra)
