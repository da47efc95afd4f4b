"""Time-of-use battery planner: every 15 minutes, a plan for the next 24 h that gives the
real-time layer an SoC target path (charge when cheap, keep a reserve for the peak, discharge
when dear). The LP itself is in `battery_lp.py`, the prices in `tariff.py`.

The planner is advice, not control: the real-time layer follows `target_soc` / `planned_kw`
where the grid limit allows, and the limit always wins. It runs every 15 minutes in a worker
thread (`asyncio.to_thread(planner.replan, now, soc)`), never inside a control cycle.
"""

from __future__ import annotations

import math
import threading
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from agent.config import AgentConfig, TariffSection
from agent.control.battery_lp import HORIZON_STEPS, STEP_S, BatteryLimits, BatteryPlan, plan_battery
from agent.control.forecast import LoadHistory
from agent.control.tariff import minute_prices, tariff_prices

UNUSED_PV_KW = 0.1  # exported or curtailed PV in a plan step that counts as unused
SHORT_SHARE = 0.95  # forecast load net of PV at this share of the import limit: cars may be short
SHORT_STEPS = 4  # ... for this many plan steps (an hour): not just commuters catching up at 17:00
PRICE_EPS = 1e-9
MAX_PLAN_AGE_S = 3600.0


class Planner:
    """Owns the load history and the latest plan; `replan` runs in a worker thread.

    Thread use: the control loop calls `record`, `due`, `target_soc` and `planned_kw`; a worker
    runs `replan`. The history is copied under a lock (under a millisecond for 768 bins, once
    per replan), so `record` never waits on the forecast or the LP; the new plan replaces the
    old one in a single assignment. The caller keeps one replan task at a time (`due` stays
    true until the worker has started); a replan that fails is retried in the next slot.
    """

    def __init__(
        self,
        battery: BatteryLimits,
        tariff: TariffSection,
        import_limit_kw: float,
        export_limit_kw: float,
        *,
        history: LoadHistory | None = None,
        steps: int = HORIZON_STEPS,
        step_s: int = STEP_S,
        max_age_s: float = MAX_PLAN_AGE_S,
        terminal_soc: float | None = None,
    ) -> None:
        self.battery = battery  # soc_now is replaced by each replan's measurement
        self.tariff = tariff
        self.import_limit_kw = import_limit_kw
        self.export_limit_kw = export_limit_kw
        self.history = history if history is not None else LoadHistory(ZoneInfo(tariff.timezone))
        self.steps = steps
        self.step_s = step_s
        self.max_age_s = max_age_s
        self.terminal_soc = terminal_soc
        self._lock = threading.Lock()
        self._zone = ZoneInfo(tariff.timezone)
        self._minute_price = minute_prices(tariff)
        self._dearest = max((p for p in self._minute_price if p is not None), default=0.0)
        self._attempted: int | None = None  # the step slot of the last replan started
        self._latest: tuple[BatteryPlan, datetime] | None = None
        # the last answer of `_dear_hours_may_be_short`, by (plan, step, price): asked each cycle
        self._short: tuple[BatteryPlan, int, float, bool] | None = None

    @classmethod
    def from_config(
        cls, config: AgentConfig, capacity_kwh: float, history: LoadHistory | None = None
    ) -> Planner:
        """A planner for the configured site (which must have a battery section)."""
        if config.battery is None:
            raise ValueError("the planner needs a [battery] section")
        limits = BatteryLimits.from_section(
            config.battery,
            capacity_kwh,
            config.battery.soc_min,
            config.battery.charge_efficiency,
            config.battery.discharge_efficiency,
        )
        import_kw = max(config.site.grid_import_limit_kw - config.control.safety_margin_kw, 0.0)
        return cls(
            limits, config.tariff, import_kw, config.site.grid_export_limit_kw, history=history
        )

    def record(self, ts: datetime, load_kw: float, pv_kw: float) -> None:
        """Feed one sample (site load without the battery, PV), from the control loop."""
        with self._lock:
            self.history.record(ts, load_kw, pv_kw)

    def history_bins(self) -> list[tuple[int, float, float, int]]:
        with self._lock:
            return self.history.bins()

    def restore_history(self, bins: list[tuple[int, float, float, int]]) -> None:
        with self._lock:
            self.history.restore(bins)

    def due(self, now: datetime) -> bool:
        """True once per step slot (every 15 minutes), and when no replan has run yet."""
        return self._attempted != self._slot(now)

    def replan(self, now: datetime, soc: float) -> BatteryPlan:
        """Forecast, solve and publish a new plan from `now` with the battery at `soc`."""
        if now.utcoffset() is None:
            raise ValueError(f"need an aware datetime, got naive {now.isoformat()}")
        self._attempted = self._slot(now)
        with self._lock:
            history = self.history.copy()
        start = now - timedelta(seconds=now.timestamp() % self.step_s)
        forecast = history.forecast(start, self.steps, self.step_s)
        prices = tariff_prices(self.tariff, start, self.steps, self.step_s)
        plan = plan_battery(
            forecast,
            prices,
            replace(self.battery, soc_now=min(max(soc, 0.0), 1.0)),
            self.import_limit_kw,
            self.export_limit_kw,
            self.tariff.export_price,
            self.step_s,
            terminal_soc=self.terminal_soc,
            first_step_s=self.step_s - (now - start).total_seconds(),
        )
        self._latest = (plan, now)
        return plan

    @property
    def latest(self) -> BatteryPlan | None:
        return None if self._latest is None else self._latest[0]

    def current(self, now: datetime) -> BatteryPlan | None:
        """The latest plan if it was made within `max_age_s` of `now`."""
        latest = self._latest
        if latest is None:
            return None
        plan, made = latest
        return plan if abs((now - made).total_seconds()) <= self.max_age_s else None

    def target_soc(self, now: datetime) -> float | None:
        plan = self.current(now)
        return None if plan is None else plan.target_soc(now)

    def planned_kw(self, now: datetime) -> float | None:
        plan = self.current(now)
        return None if plan is None else plan.planned_kw(now)

    def mean_pv_kw(self, now: datetime, from_s: float, to_s: float) -> float | None:
        """The PV the plan in force expects, on average, from `from_s` to `to_s` after `now`."""
        plan = self.current(now)
        if plan is None:
            return None
        return plan.mean_pv_kw(now + timedelta(seconds=from_s), now + timedelta(seconds=to_s))

    def expects_unused_pv(self, now: datetime) -> bool:
        """Whether the plan in force sees PV it cannot use (exported or curtailed) ahead: then
        filling the battery from the grid would only push that PV out."""
        plan = self.current(now)
        index = None if plan is None else plan.step_at(now)
        if plan is None or index is None:
            return False
        ahead = zip(plan.grid_kw[index:], plan.curtail_kw[index:], strict=True)
        return any(grid < -UNUSED_PV_KW or curtail > UNUSED_PV_KW for grid, curtail in ahead)

    def storing_pays(self, now: datetime) -> bool:
        """Whether to fill the battery from the grid room the cars leave, beyond the plan.

        The price: now's, grossed up by the round trip's losses, is below the tariff's dearest
        (the tariff repeats daily, so the dearest hour is within the next 24 h; a flat tariff:
        never). The need: energy first, so the battery fills up whenever the dear hours ahead
        may leave cars short (`_dear_hours_may_be_short`); where the site's history says they
        will not (a car park's evening draws only its own load), the plan's charge is enough
        and the rest waits for the night's cheaper price.
        """
        local = now.astimezone(self._zone)
        price = self._minute_price[local.hour * 60 + local.minute]
        if price is None:
            return False
        round_trip = self.battery.charge_efficiency * self.battery.discharge_efficiency
        if price / round_trip >= self._dearest - PRICE_EPS:
            return False
        return self._dear_hours_may_be_short(now, price)

    def _dear_hours_may_be_short(self, now: datetime, price_now: float) -> bool:
        """Whether, in the steps dearer than now before the price is back at now's (or lower),
        the plan's forecast reaches SHORT_SHARE of the import limit for SHORT_STEPS steps, or
        is not from the site's history there (a first day: nothing says the cars will not be
        short). No plan: yes."""
        plan = self.current(now)
        index = None if plan is None else plan.step_at(now)
        if plan is None or index is None:
            return True
        last = self._short
        if last is not None and last[0] is plan and last[1:3] == (index, price_now):
            return last[3]
        answer = self._short_ahead(plan, index, price_now)
        self._short = (plan, index, price_now, answer)
        return answer

    def _short_ahead(self, plan: BatteryPlan, index: int, price_now: float) -> bool:
        forecast = plan.forecast
        sources = forecast.load_source
        risen = False
        short = 0
        for step in range(index + 1, plan.steps):
            price = plan.price[step]
            if price < price_now - PRICE_EPS or (risen and price <= price_now + PRICE_EPS):
                return False
            if price <= price_now + PRICE_EPS:
                continue
            risen = True
            if not sources or not sources[step].from_history:
                return True
            net_kw = forecast.load_kw[step] - forecast.pv_kw[step]
            if net_kw >= SHORT_SHARE * self.import_limit_kw:
                short += 1
                if short >= SHORT_STEPS:
                    return True
        return False

    def _slot(self, now: datetime) -> int:
        return math.floor(now.timestamp() / self.step_s)


def planner_for(config: AgentConfig) -> Planner | None:
    """The site's planner, if it has a battery whose capacity the config gives."""
    if config.battery is None or config.battery.capacity_kwh is None:
        return None
    return Planner.from_config(config, config.battery.capacity_kwh)
