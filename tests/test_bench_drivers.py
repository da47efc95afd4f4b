"""The benchmark's planning count: read planning must save requests on the reference station.

Only part 1 without sockets to other processes runs here (the SunSpec battery is bound against
a simulator on loopback, in-process); the timed parts are for `python -m hil.bench_drivers`.
"""

from __future__ import annotations

from hil.bench.planning import REFERENCE_STATION, plan_reference_station
from hil.bench_drivers import planning_lines


async def test_planning_needs_fewer_requests_than_fields() -> None:
    planning = await plan_reference_station()

    devices = {d["profile"]: d for d in planning["devices"]}
    assert [d["profile"] for d in planning["devices"]] == [p for _, p, _, _ in REFERENCE_STATION]
    assert {p: d["count"] for p, d in devices.items()} == {
        "eastron-sdm630": 1,
        "huawei-sun2000": 11,
        "sunspec-battery": 1,
        "generic-charger": 182,
    }
    for profile, d in devices.items():
        # Merging neighbouring fields: fewer requests than fields on every kind of poll.
        assert 1 <= d["requests_fast"] < d["fields_fast"], profile
        assert 1 <= d["requests_slow"] < d["fields_slow"], profile
        assert d["fields_fast"] <= d["fields_slow"] <= d["fields_first"], profile
        assert d["requests_fast"] <= d["requests_avg"] <= d["requests_slow"], profile
    # A connector's fast poll is one request over its state, power and setpoint registers.
    assert devices["generic-charger"]["blocks_fast"] == [(100, 9)]
    # The battery was really bound by discovery: SunSpec addresses, scale factors read along.
    battery = devices["sunspec-battery"]
    assert all(address >= 40000 for address, _ in battery["blocks_fast"])
    assert battery["helpers_fast"] > 0
    assert battery["requests_first"] > battery["requests_fast"]  # discovery counts

    site = planning["site"]
    assert site["devices"] == 195
    assert site["requests_per_cycle_fast"] == sum(
        d["count"] * d["requests_fast"] for d in devices.values()
    )
    assert site["fields_per_cycle_fast"] == sum(
        d["count"] * d["fields_fast"] for d in devices.values()
    )
    assert site["requests_per_cycle_fast"] < site["fields_per_cycle_fast"] / 2
    assert site["requests_per_cycle_avg"] < site["fields_per_cycle_avg"] / 2
    report = "\n".join(planning_lines(planning))
    assert f"{site['requests_per_cycle_fast']} requests/s planned" in report
