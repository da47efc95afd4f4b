"""Staleness: a value is unknown once it has missed three of its own reads, never zero."""

from __future__ import annotations

from agent.config import Device, DeviceKind
from agent.drivers.modbus_device import ModbusDevice
from agent.drivers.profile import load_profile
from agent.state import Quality, Reading, SiteState, utc_now


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sdm630(poll_interval_s: float = 1.0) -> ModbusDevice:
    config = Device(
        id="m",
        kind=DeviceKind.METER,
        profile="eastron-sdm630",
        bus="b",
        poll_interval_s=poll_interval_s,
    )
    return ModbusDevice(config, load_profile("eastron-sdm630"), FakeClock(), utc_now)


def test_slow_fields_are_read_every_tenth_poll() -> None:
    device = sdm630()
    counts = []
    for _ in range(11):
        counts.append([(b.address, b.count) for b in device.plan_for_this_poll()])
        device._polls += 1  # what poll() does after planning
    assert counts[0] == [(0, 0x4C)]  # first poll: everything, energy counters included
    assert counts[1] == [(0, 0x48)] == counts[9]  # fast fields only: up to frequency
    assert counts[10] == [(0, 0x4C)]


def test_each_quantity_ages_at_its_own_pace() -> None:
    clock = FakeClock()
    state = SiteState(clock)
    device = sdm630(poll_interval_s=1.0)
    ages = device.max_age_s()
    assert ages["power"] == 4.0  # 3 missed 1 s polls + 1 s slack
    assert ages["energy_import"] == 31.0  # 3 missed slow reads (every 10th poll) + 1 s
    state.register_device("m", ages)
    readings = [Reading("m", q, 1.0, clock(), utc_now()) for q in ("power", "energy_import")]
    state.record_poll("m", readings, [], 0.01, 1, None, answered=True)

    clock.now += 10
    snap = state.snapshot()
    assert snap.values[("m", "power")].quality is Quality.STALE
    assert snap.value("m", "power") is None  # unknown, not zero
    assert snap.value("m", "energy_import") == 1.0

    clock.now += 30
    assert state.snapshot().value("m", "energy_import") is None


def test_failed_quantity_is_bad_until_read_again() -> None:
    clock = FakeClock()
    state = SiteState(clock)
    state.register_device("m", {"power": 4.0})
    state.record_poll(
        "m", [Reading("m", "power", 5.0, clock(), utc_now())], [], 0.01, 1, None, True
    )
    state.record_poll("m", [], ["power"], 0.5, 1, "timeout", answered=False)
    snap = state.snapshot()
    assert snap.values[("m", "power")].quality is Quality.BAD
    assert snap.value("m", "power") is None
    assert not snap.health["m"].up
    assert snap.health["m"].errors_total == {"timeout": 1}
