"""What the controller learns survives a restart: the stays and the planner's load history are
saved atomically as they change and restored at start, and a missing, broken or unwritable
state file never stops the controller."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.config import TariffPeriod, TariffSection
from agent.control.battery_lp import BatteryLimits
from agent.control.dwell import MIN_SAMPLES, DwellTimes
from agent.control.learnt_state import (
    SAVE_S,
    LearntState,
    LearntStateError,
    StateKeeper,
    load_state,
    save_state,
)
from agent.control.planner import Planner
from agent.control.stays import Stay, StayLog, Visit

MONDAY = datetime(2026, 1, 5, tzinfo=UTC)


def learnt(stays: int) -> DwellTimes:
    """A learner that has seen `stays` taxis leave after 20..40 minutes."""
    dwell = DwellTimes()
    for n in range(stays):
        dwell.update(f"c{n}", True, 0.0)
        dwell.update(f"c{n}", False, 1200.0 + 60 * (n % 20))
    return dwell


def planner() -> Planner:
    tariff = TariffSection(
        timezone="UTC", periods=[TariffPeriod(name="flat", start="00:00", end="24:00", price=1)]
    )
    return Planner(BatteryLimits(1000.0, 0.5, 0.1, 0.95, 500.0, 500.0), tariff, 1200.0, 0.0)


def test_state_round_trips_and_a_first_start_has_none(tmp_path: Path) -> None:
    path = tmp_path / "control-state.json"
    assert load_state(path) == LearntState()
    state = LearntState(
        [1200.0, 1800.5], [(1900000, 500.0, 20.0, 5)], [Stay(30_600.0, 28_800.0, 21.5)]
    )
    save_state(path, state)
    assert load_state(path) == state
    assert not (tmp_path / "control-state.json.tmp").exists()  # written, then renamed
    assert json.loads(path.read_text())["version"] == 1


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "not JSON"),
        ('{"version": 9, "stays_s": []}', "not a version 1"),
        ('{"version": 1, "stays_s": [1200, -5]}', "stays_s must be"),
        ('{"version": 1, "stays_s": [1200, true]}', "stays_s must be"),
        ('{"version": 1, "stays_s": "1200"}', "stays_s must be"),
        ('{"version": 1, "load_bins": [[1, 2.0, 3.0]]}', "load_bins must be"),
        ('{"version": 1, "load_bins": [[1, 2.0, 3.0, 0]]}', "load_bins must be"),
        ('{"version": 1, "arrivals": [[30600, 28800]]}', "arrivals must be"),
        ('{"version": 1, "arrivals": [[86400, 28800, 20.0]]}', "arrivals must be"),
        ('{"version": 1, "arrivals": [[30600, 28800, -1.0]]}', "arrivals must be"),
        ('{"version": 1, "arrivals": [[30600, 28800, 20.0, 2]]}', "weekend 0/1"),
    ],
)
def test_a_broken_state_file_is_refused_with_a_reason(
    tmp_path: Path, text: str, reason: str
) -> None:
    path = tmp_path / "control-state.json"
    path.write_text(text)
    with pytest.raises(LearntStateError, match=reason):
        load_state(path)


def test_a_restart_starts_with_what_was_learnt_before(tmp_path: Path) -> None:
    path = tmp_path / "control-state.json"
    before_dwell, before_planner = learnt(MIN_SAMPLES + 5), planner()
    for minute in range(7 * 24 * 60):  # a week of a site drawing 300 kW
        before_planner.record(MONDAY + timedelta(minutes=minute), 300.0, 0.0)
    save_state(path, StateKeeper(path, before_dwell, before_planner).current())

    dwell, restarted = DwellTimes(), planner()
    StateKeeper(path, dwell, restarted).restore()
    assert dwell.stays_s() == before_dwell.stays_s()
    assert restarted.history_bins() == before_planner.history_bins()
    # A car 35 minutes in is a priority at once, as it was before the restart ...
    for each in (before_dwell, dwell):
        each.update("c1", True, 0.0)
    assert dwell.weight("c1", 2100.0) == before_dwell.weight("c1", 2100.0) > 1.0
    # ... and the planner forecasts from the week, not from nothing.
    forecast = restarted.history.forecast(MONDAY + timedelta(days=7), steps=4)
    assert forecast.load_kw == pytest.approx((300.0,) * 4)


def test_a_broken_file_is_logged_and_learning_starts_afresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "control-state.json"
    path.write_text("{not json")
    dwell = DwellTimes()
    with caplog.at_level(logging.WARNING):
        StateKeeper(path, dwell, None).restore()
    assert dwell.samples == 0
    assert "learning afresh" in caplog.text


async def test_changes_are_saved_every_period_off_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "control-state.json"
    dwell = learnt(3)
    keeper = StateKeeper(path, dwell, None)
    keeper.restore()
    keeper.tick(0.0)
    keeper.tick(SAVE_S - 1)
    assert not path.exists()  # not due yet
    keeper.tick(SAVE_S)
    await asyncio.sleep(0.2)  # the worker thread writes
    assert load_state(path).stays_s == dwell.stays_s()
    keeper.tick(2 * SAVE_S)  # nothing new: no write
    await asyncio.sleep(0.1)
    assert keeper.saves == 1


async def test_an_unwritable_state_file_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keeper = StateKeeper(tmp_path / "missing-dir" / "control-state.json", learnt(3), None)
    keeper.tick(0.0)
    with caplog.at_level(logging.WARNING):
        keeper.tick(SAVE_S)
        await asyncio.sleep(0.2)
    assert keeper.saves == 0
    assert "could not save the learnt state" in caplog.text


def test_the_stays_by_time_of_day_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "control-state.json"
    before = StayLog()
    before.restore([Stay(30_600.0, 28_800.0, 21.5, False), Stay(68_400.0, 41_000.0, 18.25, True)])
    save_state(path, StateKeeper(path, None, None, before).current())
    restarted = StayLog()
    StateKeeper(path, None, None, restarted).restore()
    assert restarted.stays() == before.stays()
    similar = restarted.similar(Visit(0.0, 30_000.0, 0.0, weekend=False), 0.0)
    assert similar is not None
    assert similar.durations == (28_800.0,)


def test_a_file_from_before_the_stays_by_time_of_day_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "control-state.json"
    path.write_text('{"version": 1, "stays_s": [1200, 1500], "load_bins": []}')
    assert load_state(path) == LearntState([1200.0, 1500.0], [], [])


def test_stays_saved_before_weekends_were_told_apart_count_for_both(tmp_path: Path) -> None:
    path = tmp_path / "control-state.json"
    path.write_text('{"version": 1, "arrivals": [[30600, 28800, 20.0], [66000, 40000, 9.5, 1]]}')
    assert load_state(path).arrivals == [
        Stay(30_600.0, 28_800.0, 20.0, weekend=None),
        Stay(66_000.0, 40_000.0, 9.5, weekend=True),
    ]
