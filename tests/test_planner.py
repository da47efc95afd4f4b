"""The time-of-use planner: its LP (agent.control.planner) and its forecasts (.forecast).

The LP is checked on shaped days (flat tariff: nothing to do; valley and peaks: charge low,
discharge high; PV above the export limit: store it rather than curtail; a peak above the
import limit: shave it, and stay solvable when it cannot) and, with hypothesis, on random
days: bounds hold and the plan never costs more than leaving the battery alone.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config import TariffPeriod, TariffSection
from agent.config_loader import load_config
from agent.control.battery_lp import STEP_S, BatteryLimits, BatteryPlan, plan_battery
from agent.control.forecast import Forecast, LoadHistory, LoadSource
from agent.control.planner import Planner
from agent.control.tariff import tariff_prices
from tests.sites import WriteSite, site_toml

MONDAY = datetime(2025, 3, 3, tzinfo=UTC)  # 00:00 UTC, a Monday
STEPS = 96
DT_H = 0.25
TOL = 1e-6


def period(name: str, start: str, end: str, price: float) -> TariffPeriod:
    return TariffPeriod(name=name, start=start, end=end, price=price)


# Valley at night, two peaks, flat in between (UTC, so step i starts at i / 4 h).
TOU = TariffSection(
    timezone="UTC",
    periods=[
        period("valley", "00:00", "07:00", 0.3),
        period("flat-morning", "07:00", "08:00", 0.65),
        period("peak-morning", "08:00", "11:00", 1.05),
        period("flat-day", "11:00", "18:00", 0.65),
        period("peak-evening", "18:00", "21:00", 1.05),
        period("flat-night", "21:00", "24:00", 0.65),
    ],
)


def battery(soc_now: float = 0.2, capacity_kwh: float = 400.0, kw: float = 100.0) -> BatteryLimits:
    return BatteryLimits(
        capacity_kwh=capacity_kwh,
        soc_now=soc_now,
        soc_min=0.1,
        soc_max=0.9,
        max_charge_kw=kw,
        max_discharge_kw=kw,
        charge_efficiency=0.95,
        discharge_efficiency=0.95,
    )


def forecast(load: list[float], pv: list[float] | None = None) -> Forecast:
    return Forecast(MONDAY, 900, tuple(load), tuple(pv or [0.0] * len(load)))


def hour(step: int) -> float:
    return step * DT_H


def idle_cost(fc: Forecast, prices: list[float], export_limit: float, export_price: float) -> float:
    """The energy cost with the battery left alone (PV above the export limit curtailed)."""
    total = 0.0
    for load, pv, price in zip(fc.load_kw, fc.pv_kw, prices, strict=True):
        net = load - pv
        total += (price * net if net > 0 else -export_price * min(-net, export_limit)) * DT_H
    return total


def check_bounds(plan: BatteryPlan, limits: BatteryLimits, fc: Forecast, export: float) -> None:
    assert plan.steps == fc.steps
    for kw, soc, grid, cut, pv in zip(
        plan.battery_kw, plan.soc, plan.grid_kw, plan.curtail_kw, fc.pv_kw, strict=True
    ):
        assert -limits.max_charge_kw - TOL <= kw <= limits.max_discharge_kw + TOL
        assert limits.soc_min - TOL <= soc <= limits.soc_max + TOL
        assert grid >= -export - TOL
        assert -TOL <= cut <= pv + TOL
    assert plan.soc[-1] >= min(max(limits.soc_now, limits.soc_min), limits.soc_max) - TOL


def test_flat_tariff_and_no_pv_leave_the_battery_alone() -> None:
    fc = forecast([300.0 + 100.0 * math.sin(i / 10) for i in range(STEPS)])
    limits = battery(soc_now=0.5)
    plan = plan_battery(fc, [0.65] * STEPS, limits, 1200.0, 0.0, 0.0)

    assert max(abs(kw) for kw in plan.battery_kw) < TOL
    assert all(abs(soc - 0.5) < TOL for soc in plan.soc)
    assert plan.excess_kwh == pytest.approx(0.0, abs=TOL)
    assert plan.cost == pytest.approx(idle_cost(fc, [0.65] * STEPS, 0.0, 0.0))


def test_valley_and_peaks_charge_low_and_discharge_high() -> None:
    load = [120.0 if hour(i) < 7 else 260.0 for i in range(STEPS)]
    fc = forecast(load)
    prices = tariff_prices(TOU, MONDAY, STEPS, STEP_S)
    limits = battery(soc_now=0.2)
    plan = plan_battery(fc, prices, limits, 400.0, 0.0, 0.0)
    print(f"\n96-step plan solved in {plan.solve_s * 1000:.1f} ms")

    check_bounds(plan, limits, fc, 0.0)
    assert all(g <= 400.0 + TOL for g in plan.grid_kw)
    valley = [i for i in range(STEPS) if prices[i] == 0.3]
    peaks = [i for i in range(STEPS) if prices[i] == 1.05]
    assert sum(-plan.battery_kw[i] for i in valley) * DT_H > 100.0  # charged in the valley
    assert all(plan.battery_kw[i] >= -TOL for i in peaks)  # never charges in a peak
    assert sum(plan.battery_kw[i] for i in peaks) * DT_H > 200.0  # discharges in the peaks
    assert all(kw <= TOL for i, kw in enumerate(plan.battery_kw) if i not in peaks)
    assert plan.soc[valley[-1]] == pytest.approx(limits.soc_max)  # full for the morning peak
    assert plan.cost < idle_cost(fc, prices, 0.0, 0.0) - 50.0


def test_pv_above_the_export_limit_charges_the_battery_instead_of_curtailing() -> None:
    pv = [max(0.0, 100.0 * math.sin(math.pi * (hour(i) - 7) / 10)) for i in range(STEPS)]
    fc = forecast([30.0] * STEPS, pv)
    limits = battery(soc_now=0.2, capacity_kwh=400.0, kw=100.0)
    spill_kwh = sum(max(0.0, p - 30.0 - 20.0) for p in pv) * DT_H
    room_kwh = (limits.soc_max - limits.soc_now) * limits.capacity_kwh
    assert 0.0 < spill_kwh < room_kwh * limits.charge_efficiency  # the battery can take it all

    plan = plan_battery(fc, [0.65] * STEPS, limits, 400.0, 20.0, 0.0)

    check_bounds(plan, limits, fc, 20.0)
    assert sum(plan.curtail_kw) * DT_H < 1e-6
    surplus = [i for i in range(STEPS) if pv[i] - 30.0 > 20.0]
    assert all(plan.battery_kw[i] < 0.0 for i in surplus)
    assert plan.cost < idle_cost(fc, [0.65] * STEPS, 20.0, 0.0)


def test_a_peak_above_the_limit_is_shaved_and_an_impossible_one_still_plans() -> None:
    load = [300.0] * STEPS
    for i in range(40, 48):  # 10:00-12:00: 150 kW above a 400 kW limit
        load[i] = 550.0
    limits = battery(soc_now=0.5, capacity_kwh=2000.0, kw=200.0)
    plan = plan_battery(forecast(load), [0.65] * STEPS, limits, 400.0, 0.0, 0.0)
    assert plan.excess_kwh == pytest.approx(0.0, abs=TOL)
    assert all(g <= 400.0 + TOL for g in plan.grid_kw)

    for i in range(40, 48):
        load[i] = 900.0  # 500 kW over: more than the battery's 200 kW
    plan = plan_battery(forecast(load), [0.65] * STEPS, limits, 400.0, 0.0, 0.0)
    assert plan.excess_kwh == pytest.approx(8 * (500.0 - 200.0) * DT_H, rel=1e-6)
    assert all(plan.battery_kw[i] == pytest.approx(200.0) for i in range(40, 48))


def test_a_start_below_the_window_climbs_back_and_the_reserve_holds() -> None:
    limits = battery(soc_now=0.02, capacity_kwh=400.0, kw=20.0)
    plan = plan_battery(
        forecast([50.0] * STEPS),
        tariff_prices(TOU, MONDAY, STEPS, STEP_S),
        limits,
        400.0,
        0.0,
        0.0,
        terminal_soc=0.5,
    )
    path = [limits.soc_now, *plan.soc[:8]]
    assert all(later >= earlier - TOL for earlier, later in itertools.pairwise(path))
    assert min(plan.soc[8:]) >= limits.soc_min - TOL
    assert plan.soc[-1] >= 0.5 - TOL


@settings(max_examples=25, deadline=None)
@given(
    prices=st.lists(st.floats(0.0, 2.0), min_size=STEPS, max_size=STEPS),
    load=st.lists(st.floats(0.0, 300.0), min_size=STEPS, max_size=STEPS),
    pv=st.lists(st.floats(0.0, 200.0), min_size=STEPS, max_size=STEPS),
    soc=st.floats(0.1, 0.9),
)
def test_random_days_keep_bounds_and_never_cost_more_than_idle(
    prices: list[float], load: list[float], pv: list[float], soc: float
) -> None:
    fc = forecast(load, pv)
    limits = battery(soc_now=soc)
    plan = plan_battery(fc, prices, limits, 1e4, 50.0, 0.05)
    check_bounds(plan, limits, fc, 50.0)
    # Leaving the battery alone is feasible; the plan beats it up to the tiny penalties.
    spill = sum(max(0.0, p - ld - 50.0) for p, ld in zip(pv, load, strict=True)) * DT_H
    scale = max([*prices, 0.05])
    assert plan.cost <= idle_cost(fc, prices, 50.0, 0.05) + 2e-4 * scale * spill + 1e-6


def test_tariff_prices_use_local_time_wrap_midnight_and_average_split_steps() -> None:
    tariff = TariffSection(
        timezone="Europe/Berlin",  # UTC+1 in March before the switch
        periods=[
            period("valley", "22:00", "06:00", 0.3),
            period("flat", "06:00", "17:00", 0.65),
            period("peak", "17:00", "22:00", 1.05),
        ],
    )
    prices = tariff_prices(tariff, MONDAY, STEPS, STEP_S)  # 01:00 local
    assert len(prices) == STEPS
    assert prices[0] == 0.3
    assert prices[20] == 0.65  # 05:00 UTC = 06:00 local
    assert prices[64] == 1.05  # 16:00 UTC = 17:00 local
    assert prices[84] == 0.3  # 21:00 UTC = 22:00 local, wrapped valley
    split = tariff_prices(tariff, MONDAY + timedelta(hours=4, minutes=50), 1, STEP_S)
    assert split[0] == pytest.approx((10 * 0.3 + 5 * 0.65) / 15)
    assert tariff_prices(TariffSection(), MONDAY, 3, STEP_S) == [0.0, 0.0, 0.0]
    gap = TariffSection(periods=[period("day", "06:00", "22:00", 0.5)])
    with pytest.raises(ValueError, match="no tariff period covers 00:00"):
        tariff_prices(gap, MONDAY, 1, STEP_S)


# Forecasts


def fill(
    history: LoadHistory, start: datetime, end: datetime, load: float, pv: float = 0.0
) -> None:
    t = start
    while t < end:
        history.record(t, load, pv)
        t += timedelta(minutes=1)


def test_same_weekday_bins_win_when_present() -> None:
    history = LoadHistory()
    for day in range(8, 0, -1):  # Sunday a week ago .. yesterday
        start = MONDAY - timedelta(days=day)
        fill(history, start, start + timedelta(days=1), 100.0 if start.weekday() == 0 else 40.0)
    fc = history.forecast(MONDAY)
    assert set(fc.load_source) == {LoadSource.WEEKDAY}
    assert fc.load_kw == pytest.approx([100.0] * STEPS)


def test_without_last_week_the_same_time_of_day_is_averaged() -> None:
    zone = ZoneInfo("Europe/Berlin")
    history = LoadHistory(tz=zone)
    for day, base in ((2, 10.0), (1, 30.0)):
        start = MONDAY - timedelta(days=day)
        t = start
        while t < start + timedelta(days=1):
            busy = 8 <= t.astimezone(zone).hour < 18  # local working hours
            history.record(t, base + (100.0 if busy else 0.0), 0.0)
            t += timedelta(minutes=5)
    fc = history.forecast(MONDAY)
    assert set(fc.load_source) == {LoadSource.TIME_OF_DAY}
    # Hours ahead, where the last hour's 30 kW (10 kW over the mean) has faded out:
    assert fc.load_kw[22 * 4] == pytest.approx(20.0, abs=0.01)  # 22:00 UTC = 23:00 local
    assert fc.load_kw[12 * 4] == pytest.approx(120.0, abs=0.01)  # 12:00 UTC = 13:00 local


def test_the_last_hours_departure_from_the_history_carries_on_and_fades() -> None:
    # Last Monday the site drew 10 kW all evening; tonight, from 17:00, cars draw 25 kW more.
    history = LoadHistory()
    now = MONDAY + timedelta(hours=18)
    fill(history, now - timedelta(days=7), now - timedelta(days=6), 10.0)
    fill(history, now - timedelta(hours=1), now, 35.0)
    fc = history.forecast(now, steps=16)
    assert set(fc.load_source) == {LoadSource.WEEKDAY}
    lead_h = [(k + 0.5) / 4 for k in range(16)]
    assert fc.load_kw == pytest.approx([10.0 + 25.0 * math.exp(-h) for h in lead_h])
    # A history that was right leaves the forecast as it was.
    same = LoadHistory()
    fill(same, now - timedelta(days=7), now - timedelta(days=6), 10.0)
    fill(same, now - timedelta(hours=1), now, 10.0)
    assert same.forecast(now, steps=16).load_kw == pytest.approx([10.0] * 16)


def test_a_new_install_uses_the_recent_mean_then_nothing() -> None:
    assert LoadHistory().forecast(MONDAY, steps=4).load_kw == (0.0,) * 4
    assert set(LoadHistory().forecast(MONDAY).load_source) == {LoadSource.NONE}
    history = LoadHistory()
    fill(history, MONDAY - timedelta(minutes=30), MONDAY, 77.0)
    fc = history.forecast(MONDAY)
    assert fc.load_source[0] is LoadSource.RECENT
    assert fc.load_kw[0] == pytest.approx(77.0)
    # The horizon's last half hour is the same time of day as the samples, a day later.
    assert fc.load_source[-1] is LoadSource.TIME_OF_DAY


def test_a_new_install_forecasts_the_load_net_of_the_pv_it_cannot_forecast() -> None:
    # At noon on the first day the site draws 1,700 kW, 800 of it from PV. With no PV history
    # the PV forecast is 0, so counting 1,700 kW as grid load would invent a peak to shave.
    history = LoadHistory()
    fill(history, MONDAY - timedelta(minutes=30), MONDAY, 1700.0, 800.0)
    fc = history.forecast(MONDAY, steps=4)
    assert fc.load_kw[0] == pytest.approx(900.0)
    assert fc.pv_kw[0] == 0.0
    assert fc.pv_known == (False,) * 4  # 0 for unknown, not for dark


def test_history_memory_is_bounded_and_bad_samples_are_refused() -> None:
    history = LoadHistory(days=8)
    fill(history, MONDAY - timedelta(days=20), MONDAY, 50.0)
    assert len(history) == 8 * 96
    history.record(MONDAY - timedelta(days=9), 1e6, 0.0)  # older than the window: dropped
    history.record(MONDAY, float("nan"), 0.0)  # not finite: ignored
    assert len(history) == 8 * 96
    assert max(history.forecast(MONDAY).load_kw) == pytest.approx(50.0)
    with pytest.raises(ValueError, match="aware"):
        history.record(datetime(2025, 3, 3), 1.0, 0.0)  # naive


def bell(t: datetime) -> float:
    h = t.hour + t.minute / 60
    return 100.0 * math.sin(math.pi * (h - 6) / 12) if 6 <= h <= 18 else 0.0


def test_pv_follows_the_clear_sky_shape_scaled_to_the_last_hour() -> None:
    now = MONDAY + timedelta(hours=10)
    history = LoadHistory()
    t = now - timedelta(days=3)
    while t < now:
        cloudy = t >= now - timedelta(hours=2)  # today got cloudy: half the clear-sky PV
        history.record(t, 50.0, bell(t) * (0.5 if cloudy else 1.0))
        t += timedelta(minutes=1)
    fc = history.forecast(now)
    clear = bell(now + timedelta(minutes=7, seconds=30))
    assert fc.pv_kw[0] == pytest.approx(0.5 * clear, rel=0.1)  # the next quarter: cloudy
    assert fc.pv_kw[16] > 0.8 * bell(now + timedelta(hours=4, minutes=7))  # clears up later
    assert all(fc.pv_kw[i] == 0.0 for i in range(9 * 4, 19 * 4))  # 19:00-05:00 is night
    assert all(fc.pv_known)  # ... known to be: every past night was dark
    assert max(fc.pv_kw) <= 100.0 + TOL


# The planner object


def planner(soc_now: float = 0.5) -> Planner:
    return Planner(battery(soc_now), TOU, 400.0, 0.0)


def test_planner_is_due_every_quarter_hour_and_its_plan_expires() -> None:
    p = planner()
    now = MONDAY + timedelta(hours=10, minutes=3)
    assert p.due(now)
    assert p.target_soc(now) is None
    assert p.planned_kw(now) is None
    fill(p.history, MONDAY - timedelta(days=1), now, 200.0)
    started = time.perf_counter()
    plan = p.replan(now, 0.5)
    took = time.perf_counter() - started
    print(f"\nreplan: {took * 1000:.1f} ms in all, {plan.solve_s * 1000:.1f} ms of it the LP")
    assert plan.start == MONDAY + timedelta(hours=10)  # aligned to the quarter hour
    assert plan.steps == STEPS
    assert not p.due(now + timedelta(minutes=11))
    assert p.due(now + timedelta(minutes=12))  # 10:15: the next slot
    assert p.target_soc(now) == plan.soc[0]
    assert p.planned_kw(now + timedelta(minutes=20)) == plan.battery_kw[1]
    assert p.target_soc(now + timedelta(minutes=59)) is not None
    assert p.target_soc(now + timedelta(hours=1, minutes=1)) is None  # older than an hour
    assert p.planned_kw(now + timedelta(hours=2)) is None


async def test_replan_runs_in_a_worker_thread_while_the_loop_records() -> None:
    p = planner()
    now = MONDAY + timedelta(hours=6)
    fill(p.history, MONDAY - timedelta(days=8), now, 200.0)
    job = asyncio.create_task(asyncio.to_thread(p.replan, now, 0.3))
    t = now
    while not job.done():
        p.record(t, 210.0, 0.0)  # the control loop keeps feeding samples meanwhile
        t += timedelta(seconds=1)
        await asyncio.sleep(0)
    plan = await job
    assert p.latest is plan
    assert p.target_soc(now) == plan.soc[0]


def test_planner_from_config(write_site: WriteSite) -> None:
    extra = """
[battery]
max_charge_kw = 500
max_discharge_kw = 500

[tariff]
timezone = "Asia/Shanghai"
periods = [
  { name = "valley", start = "23:00", end = "07:00", price = 0.31 },
  { name = "day", start = "07:00", end = "23:00", price = 0.9 },
]
"""
    config = load_config(write_site(site_toml(extra=extra)))
    p = Planner.from_config(config, capacity_kwh=2000.0)
    assert p.import_limit_kw == 1200.0
    assert p.battery.capacity_kwh == 2000.0
    plan = p.replan(MONDAY + timedelta(hours=12), 0.5)  # 20:00 in Shanghai
    assert plan.steps == STEPS


def test_storing_pays_in_valley_and_flat_hours_never_in_the_peak_or_on_a_flat_tariff() -> None:
    p = planner()
    assert p.storing_pays(MONDAY + timedelta(hours=3))  # 0.30 / round trip < 1.05
    assert p.storing_pays(MONDAY + timedelta(hours=12))  # 0.65 / 0.9025 = 0.72 < 1.05
    assert not p.storing_pays(MONDAY + timedelta(hours=9))  # the peak itself
    flat = Planner(battery(), TariffSection(timezone="UTC", periods=[
        period("all", "00:00", "24:00", 0.4)]), 400.0, 0.0)  # fmt: skip
    assert not flat.storing_pays(MONDAY + timedelta(hours=3))
    # A spread the round trip eats is no reason to store either.
    thin = Planner(battery(), TariffSection(timezone="UTC", periods=[
        period("low", "00:00", "12:00", 1.0), period("high", "12:00", "24:00", 1.05)]),
        400.0, 0.0)  # fmt: skip
    assert not thin.storing_pays(MONDAY + timedelta(hours=3))


def test_filling_beyond_the_plan_pays_only_where_the_dear_hours_may_leave_cars_short() -> None:
    now = MONDAY + timedelta(hours=12)  # flat, with the 18:00-21:00 peak ahead
    first_day = planner()
    first_day.replan(now, 0.5)
    assert first_day.storing_pays(now)  # no history: nothing says the cars will not be short
    quiet, busy, catching_up = planner(), planner(), planner()
    t = now - timedelta(days=3)
    while t < now:
        evening = 18 <= t.hour < 21
        quiet.record(t, 50.0, 0.0)
        busy.record(t, 390.0 if evening else 50.0, 0.0)  # 0.95 x 400 kW = 380
        catching_up.record(t, 390.0 if t.hour == 18 and t.minute < 30 else 50.0, 0.0)
        t += timedelta(minutes=1)
    for each in (quiet, busy, catching_up):
        each.replan(now, 0.5)
    assert busy.storing_pays(now)
    assert not quiet.storing_pays(now)  # 50 kW of 400: the plan's charge is enough
    assert not catching_up.storing_pays(now)  # half an hour near the limit is not a shortfall
    night = MONDAY + timedelta(hours=3)
    quiet.replan(night, 0.5)
    assert not quiet.storing_pays(night)  # nor in the valley


def test_a_plan_that_cannot_use_all_the_pv_ahead_says_so() -> None:
    now = MONDAY + timedelta(hours=3)
    sunny, dull = planner(), planner()
    assert not sunny.expects_unused_pv(now)  # no plan yet
    t = now - timedelta(days=3)
    while t < now:  # 20 kW of load, up to 100 kW of PV at noon, no export allowed
        sunny.record(t, 20.0, bell(t))
        dull.record(t, 20.0, 0.0)
        t += timedelta(minutes=1)
    sunny.replan(now, 0.5)
    dull.replan(now, 0.5)
    assert sunny.expects_unused_pv(now)  # more than the 400 kWh battery takes: curtailed
    assert not dull.expects_unused_pv(now)


def test_a_plan_averages_its_pv_forecast_over_a_stretch() -> None:
    zeros = (0.0,) * 4
    forecast = Forecast(MONDAY, 900, zeros, (0.0, 4.0, 8.0, 12.0), pv_known=(True,) * 4)
    plan = BatteryPlan(MONDAY, 900, (0.5,) * 4, zeros, zeros, zeros, forecast, zeros, 0.0, 0.0, 0.0)
    # A step no past day had PV for forecasts 0 for "unknown": no average over it.
    unseen = replace(plan, forecast=replace(forecast, pv_known=(True, True, False, True)))
    assert unseen.mean_pv_kw(MONDAY, MONDAY + timedelta(minutes=30)) == pytest.approx(2.0)
    assert unseen.mean_pv_kw(MONDAY, MONDAY + timedelta(minutes=31)) is None
    hour = timedelta(hours=1)
    assert plan.mean_pv_kw(MONDAY, MONDAY + hour) == pytest.approx(6.0)
    half_steps = plan.mean_pv_kw(MONDAY + timedelta(seconds=450), MONDAY + timedelta(seconds=1350))
    assert half_steps == pytest.approx(2.0)
    # Cut at the plan's end; nothing before its start or past its end.
    assert plan.mean_pv_kw(MONDAY + timedelta(minutes=45), MONDAY + 2 * hour) == pytest.approx(12.0)
    assert plan.mean_pv_kw(MONDAY - hour, MONDAY + hour) is None
    assert plan.mean_pv_kw(MONDAY + hour, MONDAY + 2 * hour) is None
