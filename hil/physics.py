"""The one model of what happens on site, shared by the fast simulator and the HIL mode.

It implements FORMAT.md's "Physics the simulator must follow" (../shared/scenarios/FORMAT.md):
the car rules live in `hil.physics_ev`, the battery in `hil.physics_battery`, how chargers take
limits in `hil.physics_chargers`, timed changes in `hil.physics_timeline`; this module runs a
step and balances the site at the grid connection point.

Time: `step(dt_s)` advances [now_s, now_s + dt_s). What changes at known times (cars, offline
chargers, grid limit events, delayed limits, lapsing watchdogs) is evaluated at the step's start;
base load and PV are read at its midpoint, which for the format's piecewise-linear curves is the
average over the step. The runner steps by 1 s over whole-second scenario times, where this is
exact.
"""

from __future__ import annotations

from dataclasses import dataclass

from hil.physics_battery import Battery
from hil.physics_chargers import ChargerState, ConnectorState, SetpointLink
from hil.physics_ev import ac_offer_kw, car_draw_kw, car_max_kw, share_charger_kw
from hil.physics_timeline import Arrive, ChargerOff, ChargerOn, Depart, GridLimit, Timeline
from hil.scenario import Scenario, SessionSpec


@dataclass(slots=True, frozen=True)
class StepResult:
    """One row of FORMAT.md's `timeseries.csv` (averages over [t_s, t_s + dt), `battery_soc` at
    the end; grid + = import, battery + = discharge) plus the per-phase power and the export."""

    t_s: float
    grid_kw: float
    grid_limit_kw: float
    base_load_kw: float
    pv_available_kw: float
    pv_used_kw: float
    battery_kw: float
    battery_soc: float | None
    ev_kw: float
    i_l1_a: float
    i_l2_a: float
    i_l3_a: float
    p_l1_kw: float
    p_l2_kw: float
    p_l3_kw: float
    grid_export_kw: float


def pv_used_kw(
    available_kw: float, agent_limit_kw: float | None, site_use_kw: float, export_limit_kw: float
) -> float:
    """PV used: the least of what is available, the agent's curtailment limit, and what the site
    uses (base load, charging, battery charging minus discharging) plus the export limit.

    FORMAT.md: "PV that cannot be used or exported within `export_limit_kw` is curtailed".
    """
    used = min(available_kw, max(0.0, site_use_kw + export_limit_kw))
    if agent_limit_kw is not None:
        used = min(used, max(0.0, agent_limit_kw))
    return used


class SitePhysics:
    """The site: chargers with cars, base load, PV and a battery behind one grid connection."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        dc_delay_s: float = 2.0,
        ac_delay_s: float = 5.0,
        setpoint_timeout_s: float = 60.0,
        safe_dc_kw: float = 0.0,
        safe_ac_a: float = 0.0,
    ) -> None:
        self.scenario = scenario
        self.now_s = 0.0
        self._dc_link = SetpointLink(dc_delay_s, setpoint_timeout_s)
        self._ac_link = SetpointLink(ac_delay_s, setpoint_timeout_s)
        self._chargers: dict[str, ChargerState] = {}
        self._connectors: dict[tuple[str, int], ConnectorState] = {}
        for spec in scenario.chargers:
            charger = ChargerState.build(spec, safe_dc_kw, safe_ac_a)
            self._chargers[spec.id] = charger
            for connector in spec.connectors:
                state = ConnectorState(charger, connector, charger.safe_limit, float("-inf"))
                self._connectors[(spec.id, connector.id)] = state
        # Chargers with at least one car plugged in, in a fixed order (an insertion-ordered dict
        # used as a set), so a step only visits the chargers that can deliver anything.
        self._busy: dict[str, ChargerState] = {}
        self._powered: list[ConnectorState] = []  # connectors with power_kw > 0 after last step
        self._delivered: dict[str, float] = {session.id: 0.0 for session in scenario.sessions}
        self._battery = Battery(scenario.battery) if scenario.battery is not None else None
        self._battery_command_kw = 0.0
        self._battery_kw = 0.0
        self._pv_limit_kw: float | None = None
        self._grid_limit_kw = scenario.site.grid_limit_kw
        self._timeline = Timeline(scenario)
        self._catch_up()

    # -- the agent's commands ------------------------------------------------------------------

    def set_connector_limit(self, charger: str, connector: int, value: float) -> None:
        """kW for a DC connector, A per phase for an AC one; takes effect after the link's delay
        (2 s DC, 5 s AC by default). "charger_offline: it stops answering": an offline charger
        does not receive the limit (and its watchdog keeps running)."""
        state = self._connector(charger, connector)
        if state.charger.offline:
            return
        link = self._dc_link if state.charger.is_dc else self._ac_link
        link.send(state, value, self.now_s)

    def set_battery_kw(self, kw: float) -> None:
        """The battery's power command (+ discharge), held until changed; the physics clips it.
        On a site without a battery there is nothing to command and it is ignored."""
        self._battery_command_kw = kw

    def set_pv_limit_kw(self, kw: float | None) -> None:
        """The agent's PV curtailment limit; None = no limit."""
        self._pv_limit_kw = kw

    # -- one step ------------------------------------------------------------------------------

    def step(self, dt_s: float = 1.0) -> StepResult:
        """Advance [now_s, now_s + dt_s) and return that interval's timeseries row."""
        if dt_s <= 0.0:
            raise ValueError(f"dt_s must be > 0, not {dt_s}")
        t_s = self.now_s  # the discrete state is already at t_s: see _catch_up's callers
        site = self.scenario.site
        mid_s = t_s + dt_s / 2.0
        grid_limit_kw = self._grid_limit_kw

        ev_kw, ev_1ph_kw = self._charge(dt_s)
        # Battery: + discharge / - charge, clipped to its power limits and SoC window.
        battery_kw = 0.0
        if self._battery is not None:
            battery_kw = self._battery.run(self._battery_command_kw, dt_s)
        self._battery_kw = battery_kw
        base_kw = site.base_load_kw.at(mid_s)
        pv = self.scenario.pv
        pv_available_kw = pv.available_kw(mid_s) if pv is not None else 0.0
        pv_kw = pv_used_kw(
            pv_available_kw, self._pv_limit_kw, base_kw + ev_kw - battery_kw, site.export_limit_kw
        )

        # "Grid power = base load + charging power + battery charging - battery discharging - PV
        # used" (+ = import).
        grid_kw = base_kw + ev_kw - battery_kw - pv_kw
        # Per phase: base load, PV, battery and 3-phase chargers spread evenly over the three
        # phases; a 1-phase charger's power all sits on its phase.
        symmetric_kw = (grid_kw - ev_1ph_kw[0] - ev_1ph_kw[1] - ev_1ph_kw[2]) / 3.0
        p_l1_kw = symmetric_kw + ev_1ph_kw[0]
        p_l2_kw = symmetric_kw + ev_1ph_kw[1]
        p_l3_kw = symmetric_kw + ev_1ph_kw[2]
        amps_per_kw = 1000.0 / site.voltage_v  # "AC current = power / voltage per phase"

        self.now_s = t_s + dt_s
        self._catch_up()
        return StepResult(
            t_s=t_s,
            grid_kw=grid_kw,
            grid_limit_kw=grid_limit_kw,
            base_load_kw=base_kw,
            pv_available_kw=pv_available_kw,
            pv_used_kw=pv_kw,
            battery_kw=battery_kw,
            battery_soc=self._battery.soc if self._battery is not None else None,
            ev_kw=ev_kw,
            i_l1_a=p_l1_kw * amps_per_kw,
            i_l2_a=p_l2_kw * amps_per_kw,
            i_l3_a=p_l3_kw * amps_per_kw,
            p_l1_kw=p_l1_kw,
            p_l2_kw=p_l2_kw,
            p_l3_kw=p_l3_kw,
            grid_export_kw=max(0.0, -grid_kw),
        )

    def _charge(self, dt_s: float) -> tuple[float, tuple[float, float, float]]:
        """Run every plugged-in car for dt_s; return all charging power and, per phase, the part
        drawn by 1-phase chargers."""
        for connector in self._powered:
            connector.power_kw = 0.0
        self._powered.clear()
        now_s = self.now_s
        dt_h = dt_s / 3600.0
        voltage_v = self.scenario.site.voltage_v
        ev_kw = 0.0
        one_phase_kw = [0.0, 0.0, 0.0]
        for charger in self._busy.values():
            if charger.offline:  # "it stops answering and delivers nothing"
                continue
            spec = charger.spec
            wanted_kw: list[float] = []
            for connector in charger.plugged:
                session = connector.session
                assert session is not None
                limit = connector.limit_in_force(now_s)
                if charger.is_dc:  # "A DC connector has no minimum"
                    offer_kw = limit
                else:
                    assert spec.min_a is not None
                    assert spec.max_a is not None
                    offer_kw = ac_offer_kw(limit, spec.min_a, spec.max_a, voltage_v, spec.phases)
                wanted_kw.append(
                    car_draw_kw(
                        offer_kw,
                        connector.spec.max_kw,
                        car_max_kw(session.max_kw, session.energy_kwh, connector.session_kwh),
                        session.energy_kwh - connector.session_kwh,
                        dt_s,
                    )
                )
            charger_kw = 0.0
            for connector, kw in zip(
                charger.plugged, share_charger_kw(wanted_kw, spec.max_kw), strict=True
            ):
                if kw > 0.0:
                    connector.power_kw = kw
                    connector.session_kwh += kw * dt_h
                    connector.lifetime_kwh += kw * dt_h
                    self._powered.append(connector)
                    charger_kw += kw
            ev_kw += charger_kw
            if charger.phase_index is not None:
                one_phase_kw[charger.phase_index] += charger_kw
        return ev_kw, (one_phase_kw[0], one_phase_kw[1], one_phase_kw[2])

    def _catch_up(self) -> None:
        """Bring the discrete state to now_s: timed changes, then limits whose delay has passed.

        Runs whenever now_s moves (at construction and at the end of each step), so that between
        steps the agent's commands and the read-only views see the site as it is at now_s.
        """
        for change in self._timeline.due(self.now_s):
            if isinstance(change, Depart):
                self._depart(change.session)
            elif isinstance(change, Arrive):
                self._arrive(change.session)
            elif isinstance(change, ChargerOff):
                self._chargers[change.charger].offline_events += 1
            elif isinstance(change, ChargerOn):
                self._chargers[change.charger].offline_events -= 1
            elif isinstance(change, GridLimit):
                self._grid_limit_kw = change.kw
        self._dc_link.apply_due(self.now_s)
        self._ac_link.apply_due(self.now_s)

    def _arrive(self, session: SessionSpec) -> None:
        connector = self._connector(session.charger, session.connector)
        if connector.session is not None:
            raise ValueError(
                f"session {session.id} arrives on {session.charger}/{session.connector} while "
                f"{connector.session.id} is still plugged in"
            )
        connector.session = session
        connector.session_kwh = 0.0
        charger = connector.charger
        charger.plugged.append(connector)
        self._busy[charger.spec.id] = charger

    def _depart(self, session: SessionSpec) -> None:
        connector = self._connector(session.charger, session.connector)
        if connector.session is not session:
            return  # not plugged in: nothing to record
        self._delivered[session.id] = connector.session_kwh
        connector.session = None
        connector.session_kwh = 0.0
        charger = connector.charger
        charger.plugged.remove(connector)
        if not charger.plugged:
            del self._busy[charger.spec.id]

    # -- read-only views for the HIL device facades and the runner -----------------------------

    def connector_ids(self) -> list[tuple[str, int]]:
        return list(self._connectors)

    def connector_power_kw(self, charger: str, connector: int) -> float:
        """Average power over the last step."""
        return self._connector(charger, connector).power_kw

    def connector_limit(self, charger: str, connector: int) -> float:
        """The limit in force now (kW DC, A per phase AC); the safe value if lapsed or never set."""
        return self._connector(charger, connector).limit_in_force(self.now_s)

    def connector_session(self, charger: str, connector: int) -> SessionSpec | None:
        """The car plugged in now, if any."""
        return self._connector(charger, connector).session

    def connector_session_kwh(self, charger: str, connector: int) -> float:
        """Energy delivered to the car plugged in now (0 without one)."""
        state = self._connector(charger, connector)
        return state.session_kwh if state.session is not None else 0.0

    def connector_energy_kwh(self, charger: str, connector: int) -> float:
        """The connector's lifetime energy counter."""
        return self._connector(charger, connector).lifetime_kwh

    def charger_offline(self, charger: str) -> bool:
        if charger not in self._chargers:
            raise KeyError(f"no charger {charger!r} in scenario {self.scenario.name!r}")
        return self._chargers[charger].offline

    def grid_limit_kw(self) -> float:
        """The import limit in force now."""
        return self._grid_limit_kw

    def battery_soc(self) -> float | None:
        return self._battery.soc if self._battery is not None else None

    def battery_kw(self) -> float:
        """The battery's average power over the last step (+ discharge)."""
        return self._battery_kw

    def delivered_kwh(self) -> dict[str, float]:
        """Energy delivered per session id so far (0 for sessions yet to come)."""
        delivered = dict(self._delivered)
        for charger in self._busy.values():
            for connector in charger.plugged:
                assert connector.session is not None
                delivered[connector.session.id] = connector.session_kwh
        return delivered

    def _connector(self, charger: str, connector: int) -> ConnectorState:
        try:
            return self._connectors[(charger, connector)]
        except KeyError:
            raise KeyError(
                f"no connector {charger}/{connector} in scenario {self.scenario.name!r}"
            ) from None
