"""Learnt stays survive a restart: saved atomically as they change, restored at start, and a
missing, broken or unwritable state file never stops the controller."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from agent.control.dwell import MIN_SAMPLES, DwellTimes
from agent.control.learnt_state import (
    SAVE_S,
    LearntStateError,
    StaysKeeper,
    load_stays,
    save_stays,
)


def learnt(stays: int) -> DwellTimes:
    """A learner that has seen `stays` taxis leave after 20..40 minutes."""
    dwell = DwellTimes()
    for n in range(stays):
        dwell.update(f"c{n}", True, 0.0)
        dwell.update(f"c{n}", False, 1200.0 + 60 * (n % 20))
    return dwell


def test_stays_round_trip_and_a_first_start_has_none(tmp_path: Path) -> None:
    path = tmp_path / "control-state.json"
    assert load_stays(path) == []
    save_stays(path, [1200.0, 1800.5])
    assert load_stays(path) == [1200.0, 1800.5]
    assert not (tmp_path / "control-state.json.tmp").exists()  # written, then renamed


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "not JSON"),
        ('{"version": 9, "stays_s": []}', "not a version 1"),
        ('{"version": 1, "stays_s": [1200, -5]}', "stays_s must be"),
        ('{"version": 1, "stays_s": [1200, true]}', "stays_s must be"),
        ('{"version": 1, "stays_s": "1200"}', "stays_s must be"),
    ],
)
def test_a_broken_state_file_is_refused_with_a_reason(
    tmp_path: Path, text: str, reason: str
) -> None:
    path = tmp_path / "control-state.json"
    path.write_text(text)
    with pytest.raises(LearntStateError, match=reason):
        load_stays(path)


def test_a_restart_starts_with_the_stays_learnt_before(tmp_path: Path) -> None:
    path = tmp_path / "control-state.json"
    before = learnt(MIN_SAMPLES + 5)
    save_stays(path, before.stays_s())
    after = DwellTimes()
    StaysKeeper(path, after).restore()
    assert after.stays_s() == before.stays_s()
    # ... so a car 35 minutes in is already a priority, as it was before the restart.
    for dwell in (before, after):
        dwell.update("c1", True, 0.0)
    assert after.weight("c1", 2100.0) == before.weight("c1", 2100.0) > 1.0
    forgetful = DwellTimes()  # what a restart used to start from
    forgetful.update("c1", True, 0.0)
    assert forgetful.weight("c1", 2100.0) == 1.0


def test_a_broken_file_is_logged_and_learning_starts_afresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "control-state.json"
    path.write_text("{not json")
    dwell = DwellTimes()
    with caplog.at_level(logging.WARNING):
        StaysKeeper(path, dwell).restore()
    assert dwell.samples == 0
    assert "learning afresh" in caplog.text


async def test_changed_stays_are_saved_every_period_off_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "control-state.json"
    dwell = learnt(3)
    keeper = StaysKeeper(path, dwell)
    keeper.restore()
    keeper.tick(0.0)
    keeper.tick(SAVE_S - 1)
    assert not path.exists()  # not due yet
    keeper.tick(SAVE_S)
    await asyncio.sleep(0.2)  # the worker thread writes
    assert load_stays(path) == dwell.stays_s()
    keeper.tick(2 * SAVE_S)  # nothing new: no write
    await asyncio.sleep(0.1)
    assert keeper.saves == 1


async def test_an_unwritable_state_file_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keeper = StaysKeeper(tmp_path / "missing-dir" / "control-state.json", learnt(3))
    keeper.tick(0.0)
    with caplog.at_level(logging.WARNING):
        keeper.tick(SAVE_S)
        await asyncio.sleep(0.2)
    assert keeper.saves == 0
    assert "could not save learnt stays" in caplog.text


def test_the_saved_file_is_plain_json(tmp_path: Path) -> None:
    path = tmp_path / "control-state.json"
    save_stays(path, [1500.0])
    assert json.loads(path.read_text()) == {"version": 1, "stays_s": [1500.0]}
