"""Hardware-in-the-loop over real sockets: the daemon in its own process against the physics.

One run of the AC car park from 09:00 with a meter outage in it: the SDM630 on its RS-485 pty
stops answering for the outage (the agent sees the grid meter down), answers again after, and
what the agent reads from it is the physics' grid power. A utility cut in the same run reaches
the daemon through the simulated control box, and the controller's limit in force follows it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import struct
import urllib.error
from pathlib import Path

from hil.hil_mode import HilSite, run_hil, start_offset_s
from hil.physics import StepResult
from hil.scenario import GridLimitEvent, MeterOutageEvent
from hil.scenario_loader import load_scenario
from tests.test_meter_slice import scrape

OUTAGE_AT_S = 8  # seconds into the run
OUTAGE_S = 6
CUT_AT_S = 3
CUT_KW = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def f32(value: float) -> float:
    return float(struct.unpack(">f", struct.pack(">f", value))[0])


async def test_hil_run_meter_reads_physics_and_outage_silences_it(tmp_path: Path) -> None:
    scenario = load_scenario("ac-car-park")
    first_s = start_offset_s(scenario, "09:00")
    outage = MeterOutageEvent(t_s=first_s + OUTAGE_AT_S, duration_s=OUTAGE_S)
    cut = GridLimitEvent(t_s=first_s + CUT_AT_S, kw=CUT_KW)
    scenario = dataclasses.replace(scenario, events=(cut, outage))
    metrics_port = free_port()
    grid_w: list[float] = []
    meter_state: list[tuple[float, int, int]] = []  # (t_s, answered reads, requests seen)

    def on_second(site: HilSite, row: StepResult) -> None:
        grid_w.append(row.grid_kw * 1000)
        meter_state.append((row.t_s, site.meter.reads, site.meter.faults.requests_seen))

    run = asyncio.create_task(
        run_hil(
            scenario,
            tmp_path,
            start="09:00",
            seconds=24,
            speed=2.0,
            progress=False,
            metrics_port=metrics_port,
            on_second=on_second,
        )
    )
    scrapes: list[tuple[int, dict[tuple[str, frozenset[tuple[str, str]]], float]]] = []
    while not run.done():
        await asyncio.sleep(0.5)
        try:
            samples = await asyncio.to_thread(scrape, metrics_port)
        except (urllib.error.URLError, ConnectionError):
            continue  # the agent is still starting
        scrapes.append((len(grid_w), samples))
    kpis = await run

    assert kpis["mode"] == "hil"
    assert (tmp_path / "agent.log").read_text().count("SIGTERM received") == 1
    site_labels = frozenset({("site", "ac-car-park")})
    meter_up = ("edge_agent_device_up", site_labels | {("device", "grid-meter")})
    # During the outage the meter got requests but answered none, and the agent saw it down.
    during = [s for s in meter_state if first_s + OUTAGE_AT_S + 1 <= s[0] < first_s + 13]
    assert during
    assert during[-1][1] == during[0][1]  # no answered reads
    assert during[-1][2] > during[0][2]  # but requests kept arriving
    assert any(samples.get(meter_up) == 0.0 for _, samples in scrapes)
    # After it, the agent reads the physics' grid power again, to the meter's float32.
    late = [
        (seconds, samples) for seconds, samples in scrapes
        if seconds > OUTAGE_AT_S + OUTAGE_S + 3 and samples.get(meter_up) == 1.0
    ]  # fmt: skip
    assert late
    seconds, samples = late[-1]
    shown = samples[("edge_agent_grid_power_watts", site_labels)]
    recent = {f32(w) for w in grid_w[max(seconds - 4, 0) : seconds + 1]}
    assert any(abs(shown - w) <= 0.5 for w in recent), (shown, sorted(recent))
    # The utility's cut reached the controller through its control box.
    limit = ("edge_agent_import_limit_in_force_watts", site_labels)
    limits = [samples[limit] for _, samples in scrapes if limit in samples]
    assert limits
    assert limits[-1] == CUT_KW * 1000
