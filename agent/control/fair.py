"""The `fair` strategy: a measured budget, shared max-min fairly, never more than is safe.

Each cycle:

1. **Observe** (`observe.py`): grid power and phase currents if fresh, each connector's draw,
   the battery and PV. An unknown grid means fail-safe: the static caps at once (reason
   FAILSAFE), and a gradual recovery when readings return (`failsafe.py`).
2. **Budget**: the non-controllable load is derived, `N = grid - EV draw + battery discharge`
   (its dips believed only once they last the chargers' delay, its rises from their second
   cycle: the readings are not simultaneous, `margin.py`), so the cars may have
   `limit - margin - N + battery discharge`; per phase the same with currents. The import
   limit is the site's, or a signalled one (a utility's box, an operator) until it expires.
3. **Battery**: peak shaving (discharge when the cars want more than the grid gives), storing
   the PV surplus and, outside the dearest hours, the grid room the cars leave; then the
   planner's time-of-use path; within its power limits and SoC window; an unknown SoC means
   no battery power.
4. **Defer** (`deferral.py`): with a time-of-use tariff, cars the site's history says will
   stay long enough wait for the cheaper hours (reason TARIFF).
5. **Allocate** (`allocation.py`): weighted max-min fair water-filling over the cars' real
   acceptance (`acceptance.py`), under connector, charger, phase and site limits; AC minimum
   currents with rotation of who pauses (`rotation.py`).
6. **Guard** (`ramp_guard.py`): cuts go out at once, raises only from what the cuts have freed
   once the chargers' delay has passed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from zoneinfo import ZoneInfo

from agent.control.acceptance import Acceptance
from agent.control.allocation import ROUND_DC_KW, Allocation, Budget, Demand, allocate
from agent.control.battery_policy import BatteryPolicy
from agent.control.deferral import SITE, Deferral, PvChange, WaitingCar
from agent.control.dwell import DwellTimes
from agent.control.failsafe import FailSafe
from agent.control.margin import AdaptiveMargin, RecentHigh
from agent.control.observe import Observation, observe
from agent.control.phase_room import PhaseRoom
from agent.control.plan import ConnectorLimit, Plan, Reason
from agent.control.planner import Planner
from agent.control.ramp_guard import RampGuard
from agent.control.rotation import Rotation
from agent.control.site_model import ConnectorModel, Phase, SiteModel
from agent.control.static import charging_budget_kw, static_plan
from agent.control.stays import LocalTime, StayLog
from agent.control.tariff import minute_prices
from agent.state import Snapshot


@dataclass(frozen=True, slots=True)
class TemporaryLimit:
    kw: float
    until_s: float


class FairStrategy:
    name = "fair"

    def __init__(self, site: SiteModel, planner: Planner | None = None) -> None:
        self.site = site
        self.battery = BatteryPolicy(site, planner)
        self._static = static_plan(site)
        safe = site.safe_import_kw
        safe_kw = charging_budget_kw(site) if safe is None else safe
        self.failsafe = FailSafe(safe_kw, site.recovery_kw_per_s)
        self.guard = RampGuard(site.charger_delay_s)
        self.acceptance = Acceptance()
        self.rotation = Rotation()
        self.dwell = DwellTimes()
        self.stays = StayLog()
        tariff = site.tariff
        self._zone = ZoneInfo(tariff.timezone if tariff is not None else "UTC")
        self.deferral = (
            Deferral(minute_prices(tariff), self._zone, self.stays)
            if tariff is not None and site.defer_to_cheaper_hours
            else None
        )
        self._site_load = RecentHigh(site.charger_delay_s + 1.0)
        window_s = site.charger_delay_s + 2.0  # the chargers' delay and a cycle either side
        self.margin = AdaptiveMargin(site.safety_margin_kw, site.margin_floor_kw, window_s)
        self._temporary: TemporaryLimit | None = None
        self._connectors = site.connectors  # a property that builds a tuple: keep one
        self._by_device = {c.device: c for c in self._connectors}
        self.phases = PhaseRoom(site)
        self._chargers = {c.id: c.max_kw for c in site.chargers}
        self._active: set[str] = set()
        self._last_limits: dict[str, ConnectorLimit] = {}

    @property
    def planner(self) -> Planner | None:
        return self.battery.planner

    @property
    def wall_now(self) -> datetime | None:
        """The last grid reading's wall-clock time: when the planner's replans are due."""
        return self.battery.wall_now

    def set_temporary_limit(self, kw: float, until_s: float) -> None:
        """A lower (or higher) import limit until `until_s`: a utility curtailment, an operator."""
        self._temporary = TemporaryLimit(kw, until_s)

    def import_limit_kw(self, now: float) -> float:
        temporary = self._temporary
        if temporary is not None and now < temporary.until_s:
            return temporary.kw
        return self.site.import_limit_kw

    def step(self, snapshot: Snapshot, now_s: float) -> Plan:
        obs = observe(snapshot, self.site)
        if obs.signalled_limit_kw is not None:
            # A signalled limit holds a while after its signal falls silent; it never lifts
            # the site's own limit (a misread register must not open the fuse).
            kw = min(max(obs.signalled_limit_kw, 0.0), self.site.import_limit_kw)
            self.set_temporary_limit(kw, now_s + self.site.limit_signal_hold_s)
        if obs.grid_kw is None:
            self.failsafe.cap(now_s, grid_known=False, wanted_kw=0.0)
            return self._failsafe_plan(now_s)
        limit = self.import_limit_kw(now_s)
        measured = obs.grid_kw - obs.ev_kw() + (obs.battery_kw or 0.0)
        non_controllable = self._site_load.update(now_s, measured)
        demands = self._demands(obs, now_s)
        waiting = self._waiting(demands, obs, now_s, limit, non_controllable)
        held = [d for d in demands if d.connector.device in waiting]
        if waiting:
            demands = [d for d in demands if d.connector.device not in waiting]
        margin_kw = self.margin.update(now_s, non_controllable)
        grid_room = limit - margin_kw - non_controllable
        battery = self.battery
        wanted = self._deliverable_kw(demands)
        battery_kw = battery.first_cut(obs, grid_room, wanted, non_controllable)
        covered_kw = battery.covered_kw(battery_kw)
        budget_kw = self.failsafe.cap(now_s, grid_known=True, wanted_kw=grid_room + covered_kw)
        phase_room = self.phases.room_a(obs, covered_kw, margin_kw)
        budget = Budget(max(budget_kw, 0.0), phase_room, self.site.voltage_v)
        paused = self._paused(demands, budget, now_s)
        allocation = allocate(demands, self._chargers, budget, paused)
        if held:
            spare_pv = -non_controllable - allocation.total_kw + min(battery_kw, 0.0)
            spare_kw = min(spare_pv, budget_kw - allocation.total_kw)
            allocation = self._with_spare_pv(allocation, held, spare_kw, phase_room)
        limits, exposed_kw = self._guarded(
            allocation.limits, allocation.kw, budget_kw, now_s, waiting
        )
        on_spare_pv = sum(allocation.kw.get(d.connector.device, 0.0) for d in held)
        battery_kw = battery.settle(
            obs,
            battery_kw,
            grid_room,
            exposed_kw,
            non_controllable + exposed_kw - on_spare_pv,
            lambda: min(budget_kw - exposed_kw, self.phases.left_kw(phase_room, allocation.kw)),
        )
        pv_limit = self._pv_limit(obs, battery_kw, sum(allocation.kw.values()), measured)
        return Plan(
            MappingProxyType(limits),
            battery_kw=battery.command(battery_kw, now_s) if battery.limits else None,
            pv_limit_kw=pv_limit,
            budget_kw=budget_kw,
            import_limit_kw=limit,
        )

    # --- pieces --------------------------------------------------------------------------

    def _failsafe_plan(self, now: float) -> Plan:
        limits = {
            device: ConnectorLimit(limit.value, limit.unit, Reason.FAILSAFE)
            for device, limit in self._static.connectors.items()
        }
        for device, limit in limits.items():
            self._sent(device, self._kw(device, limit), now)
        return Plan(
            MappingProxyType(limits),
            # The discharge the cars' limits counted on stays until the chargers have followed
            # the cuts (an import spike otherwise), then the battery idles: nothing to shave.
            battery_kw=self.battery.command(0.0, now) if self.battery.limits else None,
            budget_kw=self.failsafe.safe_kw,
            import_limit_kw=self.import_limit_kw(now),
        )

    def _demands(self, obs: Observation, now: float) -> list[Demand]:
        demands = []
        dwell = self.dwell
        stays = self.stays
        local = None if obs.at is None else LocalTime.of(obs.at, self._zone)
        for connector in self._connectors:
            view = obs.connectors[connector.device]
            plugged_in = view.plugged_in
            if plugged_in is not None:
                dwell.update(connector.device, plugged_in, now)
                if local is not None:
                    stays.update(connector.device, plugged_in, view.power_kw or 0.0, now, local)
            if not view.wants_power:
                if connector.device in self._active:
                    self._active.discard(connector.device)
                    self.acceptance.leave(connector.device)
                continue
            self._active.add(connector.device)
            wants = self.acceptance.wants_kw(connector.device, connector.max_kw, view.power_kw, now)
            visit = stays.visit(connector.device)
            similar = None if visit is None else stays.similar(visit, now)
            weight = connector.weight * dwell.weight(connector.device, now, similar)
            demands.append(Demand(connector, wants, weight))
        return demands

    def _waiting(
        self,
        demands: list[Demand],
        obs: Observation,
        now: float,
        limit_kw: float,
        site_load_kw: float,
    ) -> frozenset[str]:
        """The cars that wait for cheaper hours (charging only from PV nothing else takes)."""
        deferral = self.deferral
        if deferral is None or obs.at is None or not demands:
            return frozenset()
        cars = [
            WaitingCar(d.connector.device, d.connector.max_kw, d.connector.phases) for d in demands
        ]
        room = {SITE: limit_kw - site_load_kw}
        if self.site.phase_limit_a is not None:
            volts = self.site.voltage_v
            phase_room = self.phases.room_a(obs, 0.0, 0.0)  # the battery idle, as for SITE
            room.update({phase: amps * volts / 1000 for phase, amps in phase_room.items()})
        return deferral.waiting(cars, now, obs.at, room, self._pv_change(obs))

    def _pv_change(self, obs: Observation) -> PvChange | None:
        """How much more PV than now the planner's forecast expects over a stretch ahead; None
        without a forecast or a PV reading now (the room then stays now's)."""
        planner, at, pv_now = self.battery.planner, obs.at, obs.pv_kw
        if planner is None or at is None or pv_now is None:
            return None

        def change(from_s: float, to_s: float) -> float:
            mean = planner.mean_pv_kw(at, from_s, to_s)
            return 0.0 if mean is None else mean - pv_now

        return change

    def _with_spare_pv(
        self,
        allocation: Allocation,
        held: list[Demand],
        spare_kw: float,
        phase_room: Mapping[Phase, float],
    ) -> Allocation:
        """The cars waiting for cheaper hours share the PV the site, the others and the battery
        leave (it would be exported): all with reason TARIFF."""
        limits = dict(allocation.limits)
        kw = dict(allocation.kw)
        if spare_kw > 0:
            used: dict[str, float] = {}
            for device, power in kw.items():
                charger = self._by_device[device].charger
                used[charger] = used.get(charger, 0.0) + power
            chargers = {c: m - used.get(c, 0.0) for c, m in self._chargers.items()}
            budget = Budget(spare_kw, self.phases.left_a(phase_room, kw), self.site.voltage_v)
            extra = allocate(held, chargers, budget)
            limits.update(extra.limits)
            kw.update(extra.kw)
        for demand in held:
            device = demand.connector.device
            limit = limits.get(device)
            if limit is None:
                limit = ConnectorLimit(
                    0.0, "A" if demand.connector.kind == "ac" else "kW", Reason.TARIFF
                )
            limits[device] = ConnectorLimit(limit.value, limit.unit, Reason.TARIFF)
        return Allocation(limits, kw, sum(kw.values()))

    def _deliverable_kw(self, demands: list[Demand]) -> float:
        """What the cars want, as far as their chargers can deliver it: two cars on one 120 kW
        charger want 120 kW, not 240 (a battery discharging for the 240 would only push the
        grid import down, spending its charge on cheap hours)."""
        by_charger: dict[str, float] = {}
        for demand in demands:
            charger = demand.connector.charger
            by_charger[charger] = by_charger.get(charger, 0.0) + demand.wants_kw
        chargers = self._chargers
        return sum(min(kw, chargers.get(c, math.inf)) for c, kw in by_charger.items())

    def _paused(self, demands: list[Demand], budget: Budget, now: float) -> frozenset[str]:
        ac = [d.connector.device for d in demands if d.connector.kind == "ac"]
        if not ac:
            return frozenset()
        trial = allocate(demands, self._chargers, budget)
        paused_now = [d for d, limit in trial.limits.items() if limit.reason is Reason.ROTATION]
        return self.rotation.choose(now, ac, len(ac) - len(paused_now))

    def _guarded(
        self,
        limits: Mapping[str, ConnectorLimit],
        kw: Mapping[str, float],
        budget_kw: float,
        now: float,
        waiting: frozenset[str],
    ) -> tuple[dict[str, ConnectorLimit], float]:
        """Cuts at once; raises only from the budget the exposures leave, fairly split.

        Also returns what the connectors may draw in the next delay under all they were sent.
        """
        exposure_of = self.guard.exposure
        rows = []
        exposed = 0.0
        wanted = 0.0
        for connector in self._connectors:
            exposure = exposure_of(connector.device, now)
            target = kw.get(connector.device, 0.0)
            rows.append((connector, exposure, target))
            exposed += exposure
            if target > exposure:
                wanted += target - exposure
        spare = max(budget_kw - exposed, 0.0)
        share = 1.0 if wanted <= spare else spare / wanted
        result: dict[str, ConnectorLimit] = {}
        exposed_after = 0.0
        for connector, exposure, target in rows:
            device = connector.device
            limit = limits.get(device)
            if limit is not None:
                reason = limit.reason
            else:
                reason = Reason.TARIFF if device in waiting else Reason.CAR
            granted = target
            if target > exposure and share < 1.0:
                granted = exposure + (target - exposure) * share
                reason = Reason.GRID
            result[device] = self._limit(connector, granted, reason)
            self._sent(device, granted, now)
            exposed_after += max(exposure, granted)
        return result, exposed_after

    def _limit(self, connector: ConnectorModel, kw: float, reason: Reason) -> ConnectorLimit:
        if connector.kind == "dc":
            value = ROUND_DC_KW(kw)
            last = self._last_limits.get(connector.device)
            if last is not None and last.value == value and last.reason is reason:
                return last  # most connectors keep their limit from one second to the next
            limit = ConnectorLimit(value, "kW", reason)
            self._last_limits[connector.device] = limit
            return limit
        amps = kw * 1000 / (self.site.voltage_v * len(connector.phases))
        if connector.min_a is not None and amps < connector.min_a:
            return ConnectorLimit(0.0, "A", reason if reason is not Reason.CAR else Reason.ROTATION)
        return ConnectorLimit(math.floor(amps * 10) / 10, "A", reason)

    def _kw(self, device: str, limit: ConnectorLimit) -> float:
        if limit.unit == "kW":
            return limit.value
        return self._by_device[device].kw_from_amps(limit.value, self.site.voltage_v)

    def _sent(self, device: str, kw: float, now: float) -> None:
        self.guard.send(device, kw, now)
        if device in self._active:
            self.acceptance.sent(device, kw, now)

    def _pv_limit(
        self, obs: Observation, battery_kw: float, ev_kw: float, non_controllable: float
    ) -> float | None:
        """Curtail only what would be exported beyond the export limit."""
        if obs.pv_kw is None:
            return None
        grid = non_controllable + ev_kw - battery_kw
        over = -grid - self.site.export_limit_kw
        return max(obs.pv_kw - over, 0.0) if over > 0 else None
