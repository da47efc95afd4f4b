"""Shared fixtures: site files on disk and a simulated SDM630 on a free loopback port."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from hil.devices.sdm630 import FixedMeter, SimulatedSdm630
from tests.sites import METER_VALUES, WriteSite


@pytest.fixture
def write_site(tmp_path: Path) -> WriteSite:
    def write(text: str, name: str = "site.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
async def fixed_meter() -> AsyncIterator[tuple[SimulatedSdm630, FixedMeter, int]]:
    source = FixedMeter(METER_VALUES)
    meter = SimulatedSdm630(source, time.monotonic)
    port = await meter.start()
    try:
        yield meter, source, port
    finally:
        await meter.stop()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """`edge-agent` commands install a stderr handler; a test's captured stderr closes after it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
