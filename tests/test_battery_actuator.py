"""Battery commands as SunSpec model 124 rates: the right pair, on change and renewal only."""

from __future__ import annotations

from agent.control.battery_actuator import BatteryActuator


def test_rates_force_the_planned_power_and_are_renewed() -> None:
    sent: list[tuple[float, str, float]] = []
    now = [0.0]
    actuator = BatteryActuator(
        "battery", lambda device, name, value: sent.append((now[0], name, value)), renew_s=60
    )
    actuator.apply(5.0, 20_000.0, 0.0)  # discharge 5 kW of a 20 kW rating: 25 %
    assert sent == [(0.0, "charge_rate_pct", -25.0), (0.0, "discharge_rate_pct", 25.0)]
    sent.clear()
    now[0] = 10.0
    actuator.apply(5.1, 20_000.0, 10.0)  # 25.5 %: less than a 1 % step, not yet due
    assert sent == []
    now[0] = 31.0
    actuator.apply(-3.0, 20_000.0, 31.0)  # charge 3 kW: 15 % each way
    assert sent == [(31.0, "charge_rate_pct", 15.0), (31.0, "discharge_rate_pct", -15.0)]
    sent.clear()
    now[0] = 62.0
    actuator.apply(-3.0, 20_000.0, 62.0)  # unchanged, but half the revert time has passed
    assert [name for _, name, _ in sent] == ["charge_rate_pct", "discharge_rate_pct"]
    sent.clear()
    actuator.apply(50.0, 20_000.0, 63.0)  # beyond the rating: clamped to 100 %
    assert sent[-1] == (62.0, "discharge_rate_pct", 100.0)
    sent.clear()
    actuator.apply(1.0, None, 64.0)  # rating unknown: nothing written
    actuator.apply(None, 20_000.0, 65.0)  # no command: nothing written
    assert sent == []


def test_pv_limit_is_shared_by_rating_and_released_at_100_percent() -> None:
    from agent.control.pv_actuator import PvActuator

    sent: list[tuple[str, float]] = []

    def submit(device: str, name: str, value: float) -> None:
        assert name == "power_limit_pct"
        sent.append((device, value))

    actuator = PvActuator({"pv-01": submit, "pv-02": submit})
    rated = {"pv-01": 100_000.0, "pv-02": 50_000.0, "pv-03": None}
    actuator.apply(60.0, rated, 0.0)  # 60 kW of 150 kW: 40 % on each
    assert sent == [("pv-01", 40.0), ("pv-02", 40.0)]
    sent.clear()
    actuator.apply(None, rated, 1.0)  # no curtailment any more: back to 100 % at once
    assert sent == [("pv-01", 100.0), ("pv-02", 100.0)]
    sent.clear()
    actuator.apply(None, {"pv-01": None}, 2.0)  # ratings unknown: nothing to compute
    assert sent == []
