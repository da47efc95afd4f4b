"""Assembling the control path from the config: strategy, actuator targets, the cycle hook.

Kept out of `agent.app` so the daemon's assembly stays readable and the simulator can build the
same controller for a scenario's generated config.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime

from agent.config import AgentConfig
from agent.control.actuator import Actuator, SetpointTarget
from agent.control.battery_actuator import BatteryActuator
from agent.control.battery_lp import PlannerError
from agent.control.learnt_state import StateKeeper, state_keeper
from agent.control.plan import Plan
from agent.control.planner import Planner, planner_for
from agent.control.pv_actuator import PvActuator
from agent.control.site_model import SiteModel
from agent.control.strategy import Strategy, make_strategy
from agent.drivers.bus_worker import BusWorker
from agent.drivers.modbus_device import ModbusDevice
from agent.state import Snapshot

log = logging.getLogger(__name__)

SETPOINTS = {"dc": ("power_limit", 1000.0), "ac": ("current_limit", 1.0)}  # name, plan->device


class Controller:
    """Strategy + actuator: the loop's per-cycle hook; the planner runs beside it."""

    def __init__(
        self,
        strategy: Strategy,
        actuator: Actuator,
        battery: BatteryActuator | None = None,
        pv: PvActuator | None = None,
        learnt: StateKeeper | None = None,
    ) -> None:
        self.strategy = strategy
        self.actuator = actuator
        self.battery = battery
        self.pv = pv
        self.learnt = learnt
        self._inverters: tuple[str, ...] = getattr(getattr(strategy, "site", None), "inverters", ())
        self.last_plan: Plan | None = None
        self._replanning: asyncio.Future[object] | None = None

    def on_cycle(self, snapshot: Snapshot) -> None:
        plan = self.strategy.step(snapshot, snapshot.taken_at)
        self.actuator.apply(plan, snapshot.taken_at)
        if self.battery is not None:
            rating = snapshot.value(self.battery.device, "max_charge_power")
            self.battery.apply(plan.battery_kw, rating, snapshot.taken_at)
        if self.pv is not None:
            rated = {d: snapshot.value(d, "rated_power") for d in self._inverters}
            self.pv.apply(plan.pv_limit_kw, rated, snapshot.taken_at)
        self.last_plan = plan
        self._replan_off_the_loop(snapshot)
        if self.learnt is not None:
            self.learnt.tick(snapshot.taken_at)

    def _replan_off_the_loop(self, snapshot: Snapshot) -> None:
        """Start the battery planner's solve in a worker thread when it is due.

        The cycle never waits for it: the strategy keeps following the last plan until the new
        one is published, so a slow solve can never delay a cycle.
        """
        planner = getattr(self.strategy, "planner", None)
        now = getattr(self.strategy, "wall_now", None)
        if planner is None or now is None or not planner.due(now):
            return
        if self._replanning is not None and not self._replanning.done():
            return
        battery = getattr(self.strategy, "site", None)
        device = getattr(battery, "battery", None)
        soc = snapshot.value(device, "soc") if device else None
        if soc is None:
            return
        loop = asyncio.get_running_loop()
        self._replanning = loop.run_in_executor(None, _replan, planner, now, soc / 100)


def _replan(planner: Planner, now: datetime, soc: float) -> object:
    try:
        return planner.replan(now, soc)
    except PlannerError as exc:  # keep following the last plan; try again next quarter
        log.warning("battery planner failed: %s", exc)
        return None


def build_controller(config: AgentConfig, workers: Sequence[BusWorker]) -> Controller | None:
    """The controller for a site with chargers; None where there is nothing to control."""
    if not config.chargers:
        return None
    site = SiteModel.from_config(config)
    by_device = {device.id: (worker, device) for worker in workers for device in worker.devices}
    targets: dict[str, SetpointTarget] = {}
    for connector in site.connectors:
        worker, device = by_device[connector.device]
        if not isinstance(device, ModbusDevice):
            continue
        name, factor = SETPOINTS[connector.kind]
        setpoint = device.profile.setpoint(name)  # checked at start-up by charger_checks
        targets[connector.device] = SetpointTarget(
            device=connector.device,
            setpoint=name,
            factor=factor,
            minimum=setpoint.minimum,
            maximum=setpoint.maximum,
            renew_s=setpoint.renew_s,
            submit=worker.submit_write,
        )
    strategy = make_strategy(config.control.strategy, site, planner_for(config))
    log.info(
        "controller: %s strategy, %d connectors on %d chargers",
        strategy.name,
        len(site.connectors),
        len(site.chargers),
    )
    return Controller(
        strategy,
        Actuator(targets),
        _battery_actuator(site, by_device),
        _pv_actuator(site, by_device),
        state_keeper(strategy, config.control.state_file),
    )


def _pv_actuator(
    site: SiteModel, by_device: Mapping[str, tuple[BusWorker, object]]
) -> PvActuator | None:
    """PV curtailment goes out to the inverters whose profile has an active-power limit."""
    submits = {}
    for inverter in site.inverters:
        worker, device = by_device.get(inverter, (None, None))
        if worker is None or not isinstance(device, ModbusDevice):
            continue
        if any(s.name == "power_limit_pct" for s in device.profile.setpoints):
            submits[inverter] = worker.submit_write
    return PvActuator(submits) if submits else None


def _battery_actuator(
    site: SiteModel, by_device: Mapping[str, tuple[BusWorker, object]]
) -> BatteryActuator | None:
    """Battery commands go out only to a battery whose profile has the model 124 rates."""
    if site.battery is None or site.battery_limits is None or site.battery not in by_device:
        return None
    worker, device = by_device[site.battery]
    if not isinstance(device, ModbusDevice):
        return None
    names = {s.name for s in device.profile.setpoints}
    if not {"charge_rate_pct", "discharge_rate_pct"} <= names:
        return None
    renew = device.profile.setpoint("charge_rate_pct").renew_s or 60.0
    return BatteryActuator(site.battery, worker.submit_write, renew)
