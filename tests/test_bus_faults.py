"""Faults stay local: a dead unit on a shared RS-485 line costs the others at most one timeout.

Four simulated SDM630 meters share one RTU line (a socat pty pair); one of them stops
answering. The healthy meters must keep their poll period within one timeout, the dead one is
backed off and probed with one small read, and it is polled normally again once it answers.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from agent.config import Device, DeviceKind, SerialBus, TcpBus
from agent.drivers.bus_worker import BusWorker
from agent.drivers.factory import build_device
from agent.state import Reading, SiteState
from hil.devices.fault_proxy import ProxyFault, RtuFault, RtuFaultRelay, TcpFaultProxy, TcpGarbage
from hil.devices.faults import Fault
from hil.devices.line import SharedLine
from hil.devices.sdm630 import FixedMeter, SimulatedSdm630
from hil.pty import PtyPair
from tests.sites import METER_VALUES

TIMEOUT_S = 0.25
INTERVAL_S = 0.3


class RecordingState(SiteState):
    """Remembers when each device's poll ended, to measure poll periods."""

    def __init__(self) -> None:
        super().__init__(time.monotonic)
        self.polled: dict[str, list[float]] = {}
        self.requests: dict[str, list[int]] = {}

    def record_poll(
        self, device: str, readings: Iterable[Reading], failed_quantities: Iterable[str],
        duration_s: float, requests: int, error: str | None, answered: bool,
        info: object = None,
    ) -> None:  # fmt: skip
        self.polled.setdefault(device, []).append(self.now())
        self.requests.setdefault(device, []).append(requests)
        super().record_poll(
            device, readings, failed_quantities, duration_s, requests, error, answered
        )


def meter_config(unit: int) -> Device:
    return Device(
        id=f"meter-{unit}",
        kind=DeviceKind.METER,
        profile="eastron-sdm630",
        bus="rs485",
        unit_id=unit,
        poll_interval_s=INTERVAL_S,
    )


def periods(times: list[float], after: float) -> list[float]:
    kept = [t for t in times if t >= after]
    return [b - a for a, b in itertools.pairwise(kept)]


async def test_dead_unit_costs_the_others_at_most_one_timeout(tmp_path: Path) -> None:
    meters = [
        SimulatedSdm630(FixedMeter(METER_VALUES), time.monotonic, unit) for unit in (1, 2, 3, 4)
    ]
    with PtyPair(tmp_path) as pty:
        line = SharedLine(meters)
        await line.start_serial(str(pty.device_end), baudrate=38400)
        bus = SerialBus(
            type="serial", name="rs485", port=str(pty.agent_end), baudrate=38400,
            timeout_s=TIMEOUT_S,
        )  # fmt: skip
        state = RecordingState()
        devices = [build_device(meter_config(unit), bus, time.monotonic) for unit in (1, 2, 3, 4)]
        worker = BusWorker(bus, devices, state, max_backoff_s=1.2)
        running = asyncio.create_task(worker.run())
        try:
            await asyncio.sleep(1.0)  # all four healthy
            dead = meters[2]
            dead.faults.set(Fault.SILENT)
            went_silent = time.monotonic()
            seen_before = dead.faults.requests_seen
            await asyncio.sleep(3.0)
            silent_requests = dead.faults.requests_seen - seen_before
            assert not state.snapshot().health["meter-3"].up
            assert state.snapshot().value("meter-3", "power") is None
            dead.faults.clear()
            came_back = time.monotonic()
            await asyncio.sleep(2.0)
        finally:
            running.cancel()
            await asyncio.wait_for(asyncio.gather(running, return_exceptions=True), 5)
            await line.stop()

    # The healthy meters kept their period: at worst one timeout of the dead unit between polls.
    for unit in (1, 2, 4):
        gaps = periods(state.polled[f"meter-{unit}"], after=went_silent)
        assert gaps, unit
        assert max(gaps) <= INTERVAL_S + TIMEOUT_S + 0.1, (unit, max(gaps))
    # Backed off: in 3 s at a 0.3 s interval a dead unit would be asked 10 times; with
    # back-off (0.3, 0.6, 1.2, 1.2 s) and one-register probes it is asked 4-5 times.
    assert 2 <= silent_requests <= 6, silent_requests
    # While backed off, each attempt is a single small request (the probe).
    dead_polls = [
        r for t, r in zip(state.polled["meter-3"], state.requests["meter-3"], strict=True)
        if went_silent + 0.5 < t < came_back
    ]  # fmt: skip
    assert dead_polls
    assert all(r == 1 for r in dead_polls)
    # Recovery: answering again within one back-off period (1.2 s cap) and its values back.
    assert state.snapshot().health["meter-3"].up
    back = [t for t in state.polled["meter-3"] if t > came_back]
    assert back
    assert back[0] - came_back <= 1.2 + TIMEOUT_S + 0.2
    assert state.snapshot().value("meter-3", "power") == METER_VALUES.total_power


async def poll_once_through(bus: SerialBus | TcpBus, devices_unit: int = 1) -> SiteState:
    """One poll of an SDM630 by a real bus worker; the state holds its outcome."""
    state = SiteState(time.monotonic)
    config = meter_config(devices_unit)
    worker = BusWorker(bus, [build_device(config, bus, time.monotonic)], state)
    running = asyncio.create_task(worker.run())
    try:
        deadline = time.monotonic() + 3
        while config.id not in state.snapshot().health or (
            state.snapshot().health[config.id].polls_total == 0
        ):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    return state


@pytest.mark.parametrize(
    ("fault", "garbage", "reason"),
    [
        (ProxyFault.GARBAGE, TcpGarbage.WRONG_TID, "garbage"),
        (ProxyFault.GARBAGE, TcpGarbage.NOISE, "garbage"),
        (ProxyFault.SHORT, TcpGarbage.NOISE, "short_reply"),
        (ProxyFault.DROP, TcpGarbage.NOISE, "timeout"),
    ],
)
async def test_wire_faults_are_classified(
    fixed_meter: tuple[SimulatedSdm630, FixedMeter, int],
    fault: ProxyFault,
    garbage: TcpGarbage,
    reason: str,
) -> None:
    _, _, meter_port = fixed_meter
    proxy = TcpFaultProxy("127.0.0.1", meter_port)
    port = await proxy.start()
    proxy.set(fault, garbage=garbage)
    try:
        bus = TcpBus(type="tcp", name="rs485", host="127.0.0.1", port=port, timeout_s=0.3)
        state = await poll_once_through(bus)
    finally:
        await proxy.stop()
    health = state.snapshot().health["meter-1"]
    assert health.errors_total == {reason: 1}
    assert state.snapshot().value("meter-1", "power") is None


async def test_a_crc_error_on_rtu_is_garbage_not_silence(tmp_path: Path) -> None:
    meter = SimulatedSdm630(FixedMeter(METER_VALUES), time.monotonic, unit_id=1)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with PtyPair(tmp_path / "a") as agent_pair, PtyPair(tmp_path / "b") as device_pair:
        relay = RtuFaultRelay(agent_pair.device_end, device_pair.agent_end)
        await relay.start()
        await meter.start_serial(str(device_pair.device_end), baudrate=19200)
        relay.set(RtuFault.CORRUPT_CRC)
        try:
            bus = SerialBus(
                type="serial", name="rs485", port=str(agent_pair.agent_end), baudrate=19200,
                timeout_s=0.3,
            )  # fmt: skip
            state = await poll_once_through(bus)
        finally:
            await meter.stop()
            await relay.stop()
    assert state.snapshot().health["meter-1"].errors_total == {"garbage": 1}
