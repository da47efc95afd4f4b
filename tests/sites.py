"""Site files and meter values shared by the tests."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from hil.devices.sdm630 import MeterValues


class WriteSite(Protocol):
    """The `write_site` fixture: writes a site file into the test's tmp dir."""

    def __call__(self, text: str, name: str = "site.toml") -> Path: ...


# Values chosen so that swapping the two words of a float32 gives a different, wrong number
# (e.g. 231.25 is 0x43674000; swapped it is 0x40004367, about 2.0).
METER_VALUES = MeterValues(
    voltage=(231.25, 229.5, 233.75),
    current=(101.5, 87.25, 64.125),
    power=(22_500.0, -1_250.5, 14_020.25),
    power_factor=0.965,
    frequency=49.98,
    import_kwh=123_456.5,
    export_kwh=789.25,
)


def site_toml(meter_port: int = 5020, metrics_port: int = 0, extra: str = "") -> str:
    return f"""
[site]
name = "test-site"
grid_import_limit_kw = 1200
grid_meter = "grid-meter"

[[buses]]
name = "lan"
type = "tcp"
host = "127.0.0.1"
port = {meter_port}
timeout_s = 0.5

[[devices]]
id = "grid-meter"
kind = "meter"
profile = "eastron-sdm630"
bus = "lan"
unit_id = 1
poll_interval_s = 0.2

[control]
cycle_s = 0.2

[prometheus]
bind = "127.0.0.1"
port = {metrics_port}
{extra}
"""
