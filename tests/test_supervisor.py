"""The supervisor keeps parts running: a crashing part is restarted, the others carry on."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from agent.supervisor import Part, Supervisor


async def test_crashing_part_is_restarted_and_others_keep_running() -> None:
    crashes = 0
    ticks = 0

    async def flaky() -> None:
        nonlocal crashes
        crashes += 1
        raise RuntimeError("bus adapter unplugged")

    async def steady() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    supervisor = Supervisor(
        [Part("flaky", flaky), Part("steady", steady)],
        time.monotonic,
        first_backoff_s=0.02,
        max_backoff_s=0.08,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(supervisor.run_until(stop))
    await asyncio.sleep(0.5)
    ticks_before = ticks
    await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(running, 1.0)

    assert crashes >= 4  # restarted again and again
    assert supervisor.restarts["flaky"] == crashes - 1 or supervisor.restarts["flaky"] == crashes
    assert supervisor.restarts["steady"] == 0
    assert ticks > ticks_before > 10  # the healthy part never stopped


async def test_backoff_grows_to_its_cap() -> None:
    starts: list[float] = []

    async def failing() -> None:
        starts.append(time.monotonic())
        raise ValueError("always")

    supervisor = Supervisor([Part("failing", failing)], time.monotonic, 0.05, 0.2)
    stop = asyncio.Event()
    running = asyncio.create_task(supervisor.run_until(stop))
    await asyncio.sleep(1.2)
    stop.set()
    await running
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps[0] == pytest.approx(0.05, abs=0.03)
    assert gaps[1] == pytest.approx(0.1, abs=0.03)
    assert gaps[2] == pytest.approx(0.2, abs=0.03)
    assert max(gaps) < 0.26  # capped


async def test_stop_cancels_parts_and_runs_their_cleanup() -> None:
    cleaned = asyncio.Event()

    async def worker() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned.set()

    stop = asyncio.Event()
    running = asyncio.create_task(Supervisor([Part("w", worker)], time.monotonic).run_until(stop))
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(running, 1.0)
    assert cleaned.is_set()
