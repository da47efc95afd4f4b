"""Fast mode: the agent's controller against the site physics, in-process, no sockets.

Each simulated second: the physics' last second becomes a frozen `Snapshot` (the type the
daemon's loop hands its strategy), the strategy returns a `Plan`, the daemon's own `Actuator`
turns it into setpoint writes (only on change or renewal, as on a real bus), and the writes
reach the physics' chargers, which follow them after their delay. A meter outage or an
offline charger simply leaves their values out of the snapshot, as a dead device does.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

from agent.config import AgentConfig
from agent.control.actuator import Actuator, SetpointTarget
from agent.control.battery_lp import PlannerError
from agent.control.learnt_state import save_state, state_keeper
from agent.control.planner import planner_for
from agent.control.site_model import SiteModel
from agent.control.strategy import Strategy, make_strategy
from agent.control.wiring import SETPOINTS
from agent.state import DeviceHealth, Quality, Reading, Snapshot, SnapshotValue
from hil.hil_devices import connector_state
from hil.physics import SitePhysics, StepResult
from hil.plot import start_of_day_s
from hil.progress import Progress
from hil.results import RunRecorder
from hil.scenario import Scenario
from hil.site_config import LIMIT_SIGNAL, connector_device, has_limit_signal, inverter_count

STEP_S = 1.0  # one physics step and one timeseries row per simulated second
RENEW_S = 60.0
LEARNT_STATE = "control-state.json"  # what the controller learnt, to start the next run from
GOOD = Quality.GOOD  # the generated config's charger watchdog


@dataclass(frozen=True, slots=True)
class _ConnectorRef:
    charger: str
    connector: int
    device_factor: float  # device unit -> physics unit (W -> kW: 0.001)


class PhysicsSnapshots:
    """Frozen snapshots of the physics, with the device ids of the generated site config."""

    def __init__(self, scenario: Scenario, physics: SitePhysics) -> None:
        self._scenario = scenario
        self._physics = physics
        self._connectors = [
            (connector_device(charger, c.id), charger.id, c.id)
            for charger in scenario.chargers
            for c in charger.connectors
        ]
        self._epoch = scenario.start.astimezone(UTC)
        self._inverters = [f"pv-{n:02d}" for n in range(1, inverter_count(scenario) + 1)]
        self._unchanged: dict[tuple[str, str], SnapshotValue] = {}
        self._signal = has_limit_signal(scenario)

    def take(self, t_s: float, row: StepResult | None) -> Snapshot:
        wall = self._epoch + timedelta(seconds=t_s)
        values: dict[tuple[str, str], SnapshotValue] = {}

        cache = self._unchanged

        def put(device: str, quantity: str, value: float) -> None:
            key = (device, quantity)
            entry = cache.get(key)
            if entry is None or entry.reading.value != value:
                # A value that did not change keeps its object: 180 connectors mostly idle.
                entry = SnapshotValue(Reading(device, quantity, value, t_s, wall), 0.0, GOOD)
                cache[key] = entry
            values[key] = entry

        if row is not None and not self._scenario.meter_out(t_s):
            put("grid-meter", "power", row.grid_kw * 1000)
            for phase, amps in (("l1", row.i_l1_a), ("l2", row.i_l2_a), ("l3", row.i_l3_a)):
                put("grid-meter", f"current_{phase}", amps)
        physics = self._physics
        for device, charger, connector in self._connectors:
            if physics.charger_offline(charger):
                continue
            put(device, "power", physics.connector_power_kw(charger, connector) * 1000)
            put(device, "charging_state", connector_state(physics, charger, connector))
        if row is not None and self._scenario.battery is not None:
            soc = physics.battery_soc()
            if soc is not None:
                put("battery", "soc", soc * 100)
            put("battery", "power", -physics.battery_kw() * 1000)  # agent: + = charging
        if row is not None and self._inverters:
            share_w = row.pv_used_kw * 1000 / len(self._inverters)
            for inverter in self._inverters:
                put(inverter, "power", share_w)
        if self._signal:
            put(LIMIT_SIGNAL, "import_limit", self._scenario.grid_limit_at(t_s) * 1000)
        health: dict[str, DeviceHealth] = {}
        return Snapshot(t_s, MappingProxyType(values), MappingProxyType(health))


def physics_actuator(
    scenario: Scenario, site: SiteModel, physics: SitePhysics
) -> tuple[Actuator, dict[str, int]]:
    """The daemon's actuator, its writes landing on the physics' chargers."""
    refs: dict[str, _ConnectorRef] = {}
    for charger in scenario.chargers:
        for spec in charger.connectors:
            factor = 0.001 if charger.kind == "dc" else 1.0
            refs[connector_device(charger, spec.id)] = _ConnectorRef(charger.id, spec.id, factor)
    counter = {"writes": 0}

    def submit(device: str, setpoint: str, value: float) -> None:
        ref = refs[device]
        if scenario.charger_offline(ref.charger, physics.now_s):
            return  # the write times out at a charger that does not answer
        counter["writes"] += 1
        physics.set_connector_limit(ref.charger, ref.connector, value * ref.device_factor)

    targets = {}
    for connector in site.connectors:
        setpoint, factor = SETPOINTS[connector.kind]  # the daemon's mapping, not a copy
        maximum = connector.max_kw if connector.kind == "dc" else (connector.max_a or 0.0)
        targets[connector.device] = SetpointTarget(
            device=connector.device,
            setpoint=setpoint,
            factor=factor,
            minimum=0.0,
            maximum=maximum * factor,
            renew_s=RENEW_S,
            submit=submit,
        )
    return Actuator(targets), counter


def replan_if_due(strategy: Strategy, physics: SitePhysics) -> None:
    """The planner's quarter-hourly solve; in simulated time it costs no simulated time."""
    planner = getattr(strategy, "planner", None)
    now = getattr(strategy, "wall_now", None)
    soc = physics.battery_soc()
    if planner is None or now is None or soc is None or not planner.due(now):
        return
    with contextlib.suppress(PlannerError):  # keep the last plan, as the daemon does
        planner.replan(now, soc)


def run_fast(
    scenario: Scenario,
    config: AgentConfig,
    out_dir: Path,
    strategy_name: str = "fair",
    progress: bool = True,
    learnt_from: Path | None = None,
) -> dict[str, object]:
    """Run the whole scenario; writes the run's files into `out_dir` and returns the KPIs.

    `learnt_from`: a learnt-state file to start from, as a daemon restarted at the site would
    (what it learnt by the end is written to `out_dir/control-state.json` either way)."""
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    site = SiteModel.from_config(config)
    planner = planner_for(config)
    strategy: Strategy = make_strategy(strategy_name, site, planner)
    if learnt_from is not None:
        state_keeper(strategy, learnt_from)
    physics = SitePhysics(scenario)
    snapshots = PhysicsSnapshots(scenario, physics)
    actuator, writes = physics_actuator(scenario, site, physics)
    recorder = RunRecorder(out_dir, scenario)
    bar = (
        Progress(scenario.duration_s, start_of_day_s=start_of_day_s(scenario)) if progress else None
    )
    row: StepResult | None = None
    # The physics moves in 1 s steps (one timeseries row each); the controller runs every
    # control.cycle_s, rounded to whole seconds.
    every = max(round(config.control.cycle_s / STEP_S), 1)
    for step in range(int(scenario.duration_s / STEP_S)):
        t_s = step * STEP_S
        if step % every == 0:
            plan = strategy.step(snapshots.take(t_s, row), t_s)
            replan_if_due(strategy, physics)
            actuator.apply(plan, t_s)
            if plan.battery_kw is not None:
                physics.set_battery_kw(plan.battery_kw)
            if plan.pv_limit_kw is not None:
                physics.set_pv_limit_kw(plan.pv_limit_kw)
        row = physics.step(STEP_S)
        recorder.record(row)
        if bar is not None:
            bar.update(t_s + STEP_S)
    if bar is not None:
        bar.close()
    wall_s = time.perf_counter() - started
    learnt = state_keeper(strategy, out_dir / LEARNT_STATE, restore=False)
    if learnt is not None:
        save_state(learnt.path, learnt.current())
    failsafe = getattr(strategy, "failsafe", None)
    extra = {
        "failsafe_entries": None if failsafe is None else failsafe.entries,
        "failsafe_entered_at_s": None if failsafe is None else failsafe.entered_at,
        "strategy": strategy_name,
        "setpoint_writes": writes["writes"],
        "simulated_s_per_wall_s": round(scenario.duration_s / wall_s, 1) if wall_s else 0.0,
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return recorder.finish(physics.delivered_kwh(), wall_s, extra)
