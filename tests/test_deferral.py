"""Deferral: cars the history says will stay wait for the cheaper hours; no other car waits."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

import pytest

from agent.config import TariffPeriod, TariffSection
from agent.control.deferral import SITE, Deferral, WaitingCar
from agent.control.fair import FairStrategy
from agent.control.plan import Reason
from agent.control.site_model import ALL_PHASES, ChargerModel, ConnectorModel, SiteModel
from agent.control.stays import ENOUGH, LocalTime, Stay, StayLog, Visit
from agent.control.tariff import minute_prices
from agent.state import Quality, Reading, Snapshot, SnapshotValue

ZONE = ZoneInfo("Europe/Berlin")
MIDNIGHT = datetime(2025, 7, 15, tzinfo=ZONE)
HOUR = 3600.0
TARIFF = TariffSection(
    timezone="Europe/Berlin",
    periods=[
        TariffPeriod(name="valley", start="00:00", end="08:00", price=0.18),
        TariffPeriod(name="peak", start="08:00", end="11:00", price=0.38),
        TariffPeriod(name="flat", start="11:00", end="17:00", price=0.27),
        TariffPeriod(name="peak", start="17:00", end="22:00", price=0.38),
        TariffPeriod(name="valley", start="22:00", end="24:00", price=0.18),
    ],
)
# a week of commuters: plugged in around 08:30, gone after 8-9 h, 10-28 kWh
COMMUTERS = [
    Stay(8.5 * HOUR + 60 * i, 8 * HOUR + 900 * i, 10.0 + 3 * i) for i in range(7)
] * 5  # fmt: skip


def alike(
    count: int,
    from_h: float,
    every_s: float,
    stay_h: float,
    kwh: float,
    weekend: bool | None = None,
) -> list[Stay]:
    """`count` stays begun `every_s` apart from `from_h` o'clock, each `stay_h` long."""
    return [Stay(from_h * HOUR + every_s * i, stay_h * HOUR, kwh, weekend) for i in range(count)]


def deferral(stays: list[Stay]) -> Deferral:
    found = Deferral(minute_prices(TARIFF), ZONE, StayLog())
    found.stays.restore(stays)
    return found


def plug_in(found: Deferral, device: str, at_h: float, weekend: bool = False) -> None:
    """A car plugged in at `at_h` o'clock (monotonic seconds = seconds since midnight)."""
    now = at_h * HOUR
    found.stays.update(device, True, 0.0, now, LocalTime(now, weekend))


def arriving(at_h: float, weekend: bool = False) -> Visit:
    return Visit(since=0.0, arrived_s=at_h * HOUR, energy_kwh=0.0, weekend=weekend)


def at(hours: float) -> datetime:
    return MIDNIGHT + timedelta(hours=hours)


CAR = [WaitingCar("w1", 7.4)]


def test_the_log_keeps_arrival_time_stay_and_energy() -> None:
    log = StayLog()
    log.update("w1", True, 0.0, 100.0, LocalTime(8 * HOUR, False))
    log.update("w1", True, 7.2, 3700.0, LocalTime(9 * HOUR, False))  # an hour at 7.2 kW
    log.update("w1", False, 0.0, 7300.0, LocalTime(10 * HOUR, False))
    assert log.stays() == [Stay(8 * HOUR, 7200.0, 7.2, weekend=False)]
    similar = log.similar(arriving(8.4), 7300.0)
    assert similar is not None
    assert similar.durations == (7200.0,)
    # none alike: empty
    assert log.similar(arriving(20), 7300.0) == log.similar(arriving(5), 7300.0)
    assert log.visit("w1") is None


def test_stays_of_the_same_kind_of_day_decide_once_there_are_enough() -> None:
    log = StayLog()
    residents = alike(6, 18.3, 60, 12, 20.0, weekend=False)
    shoppers = alike(6, 18.3, 60, 0.7, 5.0, weekend=True)
    log.restore(residents + shoppers)
    weekday = log.similar(arriving(18.4), 0.0)
    saturday = log.similar(arriving(18.4, weekend=True), 0.0)
    assert weekday is not None
    assert saturday is not None
    assert set(weekday.durations) == {12 * HOUR}  # Tuesday's 18:20 car is a resident
    assert set(saturday.durations) == {0.7 * HOUR}  # Saturday's a shopper
    # Too few stays of its own kind: every day's stays decide, and unmarked ones count for both.
    few = StayLog()
    few.restore(residents[: ENOUGH - 1] + shoppers)
    either = few.similar(arriving(18.4), 0.0)
    assert either is not None
    assert len(either) == ENOUGH - 1 + 6
    unmarked = StayLog()
    unmarked.restore([replace(s, weekend=None) for s in residents] + shoppers)
    both = unmarked.similar(arriving(18.4, weekend=True), 0.0)
    assert both is not None
    assert len(both) == 12


def test_thin_history_near_a_time_of_day_is_widened_before_other_days_decide() -> None:
    log = StayLog()
    residents = alike(5, 19.0, 240, 12, 20.0, weekend=False)
    shoppers = alike(5, 18.0, 60, 0.7, 5.0, weekend=True)
    log.restore(residents + shoppers)
    # 18:05 on a Tuesday: no weekday car began within 45 min, five within 90, none of them
    # the Saturday shoppers who came within minutes of it
    found = log.similar(arriving(18.08), 0.0)
    assert found is not None
    assert set(found.durations) == {12 * HOUR}


def test_a_weekday_resident_waits_for_the_valley_though_saturday_shoppers_come_then() -> None:
    residents = alike(8, 18.2, 300, 12, 25.0, weekend=False)
    shoppers = alike(8, 18.2, 300, 0.7, 5.0, weekend=True)
    found = deferral(residents + shoppers)
    plug_in(found, "w1", 18.3)
    assert found.waiting(CAR, 18.4 * HOUR, at(18.4), {SITE: 40.0}) == {"w1"}
    plug_in(found, "w2", 18.3, weekend=True)
    shopper = [WaitingCar("w2", 7.4)]
    assert found.waiting(shopper, 18.4 * HOUR, at(18.4), {SITE: 40.0}) == frozenset()


def test_a_car_that_outstays_the_shoppers_is_taken_for_a_resident() -> None:
    # Saturday 17:30: shoppers gone within the hour and residents staying the night come alike.
    residents = alike(8, 17.5, 300, 13, 20.0, weekend=True)
    shoppers = alike(8, 17.5, 300, 0.7, 5.0, weekend=True)
    found = deferral(residents + shoppers)
    plug_in(found, "w1", 17.5, weekend=True)
    assert found.waiting(CAR, 17.6 * HOUR, at(17.6), {SITE: 40.0}) == frozenset()
    # Still there after every shopper has gone: it waits for the 22:00 valley.
    assert found.waiting(CAR, 18.3 * HOUR, at(18.3), {SITE: 40.0}) == {"w1"}
    # Fewer than MIN_SIMILAR stays ever lasted this long: nothing to go on.
    few = deferral(residents[:4] + shoppers)
    plug_in(few, "w1", 17.5, weekend=True)
    assert few.waiting(CAR, 18.3 * HOUR, at(18.3), {SITE: 40.0}) == frozenset()


def test_the_pv_expected_in_the_cheaper_hours_counts_as_room() -> None:
    # The commuter needs 25 kWh (the 0.75 quantile) between 11:00 and 16:36, when 90 % of
    # such cars are still there: 5.6 kW on average, 80 % of the room must carry it.
    found = deferral(COMMUTERS)
    plug_in(found, "w1", 8.6)
    assert found.waiting(CAR, 8.7 * HOUR, at(8.7), {SITE: 4.0}) == frozenset()
    asked: list[tuple[float, float]] = []

    def more_pv(from_s: float, to_s: float) -> float:
        asked.append((from_s, to_s))
        return 3.0  # the forecast's noon brings 3 kW more PV than 08:42

    assert found.waiting(CAR, 8.7 * HOUR, at(8.7), {SITE: 4.0}, more_pv) == {"w1"}
    assert asked == [pytest.approx((2.3 * HOUR, 7.9 * HOUR))]
    # Less PV then than now (a resident's night): the room shrinks and the car charges now.
    assert found.waiting(CAR, 8.7 * HOUR, at(8.7), {SITE: 7.0}, lambda a, b: -3.0) == frozenset()


def test_a_commuter_in_the_morning_peak_waits_for_the_flat_hours() -> None:
    found = deferral(COMMUTERS)
    plug_in(found, "w1", 8.6)
    assert found.waiting(CAR, 8.7 * HOUR, at(8.7), {SITE: 40.0}) == {"w1"}
    # released when the flat price starts
    assert found.waiting(CAR, 11.01 * HOUR, at(11.01), {SITE: 40.0}) == frozenset()


def test_no_history_or_short_stays_means_no_waiting() -> None:
    assert deferral([]).waiting(CAR, 8.7 * HOUR, at(8.7), {SITE: 40.0}) == frozenset()
    taxis = alike(40, 8.5, 60, 0.5, 30.0)
    found = deferral(taxis)
    plug_in(found, "w1", 8.6)
    assert found.waiting(CAR, 8.7 * HOUR, at(8.7), {SITE: 40.0}) == frozenset()
    found = deferral(COMMUTERS[:4])  # too few alike
    plug_in(found, "w1", 8.6)
    assert found.waiting(CAR, 8.7 * HOUR, at(8.7), {SITE: 40.0}) == frozenset()


def test_a_car_arriving_at_another_time_of_day_is_not_judged_by_commuters() -> None:
    found = deferral(COMMUTERS)
    plug_in(found, "w1", 18.5)  # evening: nobody seen arriving then
    assert found.waiting(CAR, 18.6 * HOUR, at(18.6), {SITE: 40.0}) == frozenset()


def test_a_car_that_could_not_get_its_energy_later_is_not_held() -> None:
    heavy = [Stay(s.arrived_s, s.stay_s, 60.0) for s in COMMUTERS]  # 60 kWh at 5.5 kW: 11 h
    found = deferral(heavy)
    plug_in(found, "w1", 8.6)
    assert found.waiting(CAR, 8.7 * HOUR, at(8.7), {SITE: 40.0}) == frozenset()


def test_nothing_cheaper_ahead_means_no_waiting() -> None:
    found = deferral(alike(10, 7.0, 60, 3, 10.0))
    plug_in(found, "w1", 7.0)  # valley now: the flat and peak hours ahead are dearer
    assert found.waiting(CAR, 7.1 * HOUR, at(7.1), {SITE: 40.0}) == frozenset()


def test_only_as_many_cars_wait_as_the_cheaper_hours_can_serve() -> None:
    found = deferral(COMMUTERS)
    cars = [WaitingCar(f"w{i}", 7.4) for i in range(10)]
    for index, car in enumerate(cars):
        plug_in(found, car.device, 8.5 + index / 100)
    # Such cars took up to 25 kWh three times in four. 6 kW for 5.5 h at 80 % is 26 kWh:
    # room for one, the first one in; 60 kW for all ten.
    assert found.waiting(cars, 8.7 * HOUR, at(8.7), {SITE: 6.0}) == {"w0"}
    assert len(found.waiting(cars, 8.7 * HOUR, at(8.7), {SITE: 60.0})) == 10


def test_a_waiting_car_is_not_released_and_taken_back_as_the_room_wavers() -> None:
    found = deferral(COMMUTERS)
    cars = [WaitingCar("w0", 7.4), WaitingCar("w1", 7.4)]
    plug_in(found, "w0", 8.5)
    plug_in(found, "w1", 8.51)
    # 25 kWh each in the 5.5 flat hours before they leave: 50 kWh fit 80 % of 11.4 kW and
    # 90 % of 10.1 kW.
    assert found.waiting(cars, 8.7 * HOUR, at(8.7), {SITE: 20.0}) == {"w0", "w1"}
    assert found.waiting(cars, 8.7 * HOUR, at(8.7), {SITE: 10.8}) == {"w0", "w1"}  # kept
    assert found.waiting(cars, 8.7 * HOUR, at(8.7), {SITE: 9.0}) == {"w0"}  # w1 released
    assert found.waiting(cars, 8.7 * HOUR, at(8.7), {SITE: 10.8}) == {"w0"}  # and stays so
    assert found.waiting(cars, 8.7 * HOUR, at(8.7), {SITE: 11.5}) == {"w0", "w1"}


def test_the_cheaper_window_runs_until_the_price_is_back() -> None:
    found = deferral([])
    assert found.cheaper_window_s(9 * HOUR, 24 * HOUR) == (2 * HOUR, 8 * HOUR)  # flat 11-17
    assert found.cheaper_window_s(9 * HOUR, 5 * HOUR) == (2 * HOUR, 5 * HOUR)  # gone at 14:00
    assert found.cheaper_window_s(9 * HOUR, HOUR) is None  # nothing cheaper within the hour
    assert found.cheaper_window_s(19 * HOUR + 30, 24 * HOUR) == (3 * HOUR - 30, 13 * HOUR - 30)
    assert found.cheaper_window_s(23 * HOUR, 24 * HOUR) is None  # the valley is the cheapest


def test_a_commuter_is_not_held_into_the_evening_peak() -> None:
    late = [Stay(s.arrived_s, s.stay_s + 2 * HOUR, 28.0) for s in COMMUTERS]  # leave 18-19:30
    found = deferral(late)
    plug_in(found, "w1", 8.6)
    # 28 kWh at 5.5 kW is 5.1 h: the flat hours (11-17) have it, whenever the car leaves
    assert found.waiting(CAR, 8.7 * HOUR, at(8.7), {SITE: 40.0}) == {"w1"}
    plug_in(found, "w2", 8.6)
    # 28 kWh at 4.35 kW is 6.4 h: it would be done by 19:00, before it leaves, but in the peak
    slow = [WaitingCar("w2", 5.8)]
    assert found.waiting(slow, 8.7 * HOUR, at(8.7), {SITE: 40.0}) == frozenset()


def ac_site() -> SiteModel:
    connector = ConnectorModel("w1", "w1", 1, "ac", 11.0, ALL_PHASES, 6.0, 16.0)
    return SiteModel(
        name="t", import_limit_kw=43.0, export_limit_kw=0.0, phase_limit_a=63.0,
        voltage_v=230.0, safety_margin_kw=0.5, reserve_kw=10.0, grid_meter="grid-meter",
        chargers=(ChargerModel("w1", "ac", 11.0, (connector,)),), charger_delay_s=5.0,
        tariff=TARIFF,
    )  # fmt: skip


def snapshot(hours: float, site_load_kw: float, car_kw: float) -> Snapshot:
    now = hours * HOUR
    wall = at(hours)
    values = {}

    def put(device: str, quantity: str, value: float) -> None:
        values[(device, quantity)] = SnapshotValue(
            Reading(device, quantity, value, now, wall), 0.0, Quality.GOOD
        )

    grid_kw = site_load_kw + car_kw
    put("grid-meter", "power", grid_kw * 1000)
    for phase in ("l1", "l2", "l3"):
        put("grid-meter", f"current_{phase}", grid_kw * 1000 / 690)
    put("w1", "power", car_kw * 1000)
    put("w1", "charging_state", 2.0 if car_kw > 0 else 1.0)
    return Snapshot(now, MappingProxyType(values), MappingProxyType({}))


def test_the_strategy_holds_a_commuter_at_zero_with_reason_tariff_then_charges_it() -> None:
    strategy = FairStrategy(ac_site())
    assert strategy.deferral is not None
    strategy.stays.restore(COMMUTERS)
    for second in range(30):
        plan = strategy.step(snapshot(8.6 + second / HOUR, 10.0, 0.0), 8.6 * HOUR + second)
    assert plan.connectors["w1"].value == 0.0
    assert plan.connectors["w1"].reason is Reason.TARIFF
    for second in range(30):
        plan = strategy.step(snapshot(11.0 + second / HOUR, 10.0, 0.0), 11.0 * HOUR + second)
    assert plan.connectors["w1"].value >= 6.0  # offered (a car that draws nothing: its minimum)
    assert plan.connectors["w1"].reason is not Reason.TARIFF


def test_a_waiting_commuter_charges_from_the_pv_the_site_would_export() -> None:
    strategy = FairStrategy(ac_site())
    strategy.stays.restore(COMMUTERS)
    for second in range(30):  # the site exports 5 kW of PV: about 7.2 A on three phases
        plan = strategy.step(snapshot(8.6 + second / HOUR, -5.0, 0.0), 8.6 * HOUR + second)
    assert 6.0 <= plan.connectors["w1"].value <= 7.3
    assert plan.connectors["w1"].reason is Reason.TARIFF


def test_a_site_without_a_tariff_or_with_deferral_off_never_defers() -> None:
    assert FairStrategy(replace(ac_site(), tariff=None)).deferral is None
    assert FairStrategy(replace(ac_site(), defer_to_cheaper_hours=False)).deferral is None


def test_a_phase_with_little_room_defers_only_the_cars_it_can_serve_later() -> None:
    found = deferral(COMMUTERS)
    on_l1 = [WaitingCar(f"l1-{i}", 7.4, ("L1",)) for i in range(3)]
    three_phase = [WaitingCar(f"3p-{i}", 11.0, ALL_PHASES) for i in range(3)]
    for index, car in enumerate([*on_l1, *three_phase]):
        plug_in(found, car.device, 8.5 + index / 100)
    # L1 carries 8 kW more for ~5.5 h: 35 kWh at 80 %; a car is counted at 25 kWh, a third of
    # it on L1 if it is a 3-phase one: room for one 1-phase and one 3-phase car
    room = {SITE: 40.0, "L1": 8.0, "L2": 12.0, "L3": 12.0}
    waiting = found.waiting([*on_l1, *three_phase], 8.7 * HOUR, at(8.7), room)
    assert waiting == {"l1-0", "3p-0"}
    room["L1"] = 25.0
    assert len(found.waiting([*on_l1, *three_phase], 8.7 * HOUR, at(8.7), room)) == 6
