"""A signalled import limit (a utility's control box): in force at once, never above the site's
own limit, held for a while when the signal falls silent, then gone."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from types import MappingProxyType

import pytest

from agent.config_loader import ConfigError, load_config
from agent.control.fair import FairStrategy
from agent.control.site_model import SiteModel
from agent.state import Quality, Reading, Snapshot, SnapshotValue
from hil.scenario_loader import load_scenario
from hil.site_config import site_toml
from tests.sites import WriteSite
from tests.test_fair_battery import MIDNIGHT, site, snapshot

HOLD_S = 60.0


def no_battery() -> SiteModel:
    return replace(site(), battery=None, battery_limits=None)


def signalled(t: float, signal_kw: float | None, draws: dict[str, float]) -> Snapshot:
    """Two chargers' cars and a base load of 50 kW; the box says `signal_kw` (None: silent)."""
    wall = MIDNIGHT + timedelta(hours=12, seconds=t)
    base = snapshot(t, wall, 50.0, 0.0, 0.0, draws)
    values = dict(base.values)
    if signal_kw is not None:
        reading = Reading("utility", "import_limit", signal_kw * 1000, t, wall)
        values[("utility", "import_limit")] = SnapshotValue(reading, 0.0, Quality.GOOD)
    return Snapshot(t, MappingProxyType(values), base.health)


def limits_over(strategy: FairStrategy, signal: list[float | None]) -> list[float | None]:
    """Cars that take 120 kW each follow after 2 s; the plan's import limit each second."""
    draws = {"c01-1": 0.0, "c02-1": 0.0}
    sent: dict[str, list[float]] = {d: [] for d in draws}
    seen = []
    for t, signal_kw in enumerate(signal):
        draws = {d: min(120.0, sent[d][-3]) if len(sent[d]) >= 3 else 0.0 for d in draws}
        plan = strategy.step(signalled(float(t), signal_kw, draws), float(t))
        for d in draws:
            sent[d].append(plan.connectors[d].value)
        seen.append(plan.import_limit_kw)
        budget = plan.budget_kw
        assert budget <= (plan.import_limit_kw or 0.0) - 50.0 + 1e-6
    return seen


def test_a_signalled_cut_holds_through_silence_then_lapses() -> None:
    model = replace(no_battery(), limit_signal="utility", limit_signal_hold_s=HOLD_S)
    strategy = FairStrategy(model)
    signal: list[float | None] = [300.0] * 10 + [150.0] * 20 + [None] * 100
    seen = limits_over(strategy, signal)
    assert seen[5] == 300.0
    assert seen[12] == 150.0  # the cut is in force at once ...
    assert seen[30 + int(HOLD_S) - 2] == 150.0  # ... and holds while the box is silent ...
    assert seen[-1] == 300.0  # ... until the hold lapses: the site's own limit again


def test_a_signal_above_the_site_limit_does_not_raise_it() -> None:
    model = replace(no_battery(), limit_signal="utility")
    assert limits_over(FairStrategy(model), [5000.0] * 5)[-1] == 300.0


def test_the_limit_signal_must_name_a_signal_device(write_site: WriteSite) -> None:
    text = site_toml(load_scenario("reference-fault-day"))
    assert 'limit_signal = "utility"' in text  # the generated site has the utility's box
    load_config(write_site(text))
    wrong = text.replace('limit_signal = "utility"', 'limit_signal = "grid-meter"')
    with pytest.raises(ConfigError) as refused:
        load_config(write_site(wrong))
    assert refused.value.lines()[0].endswith(
        "site.limit_signal = 'grid-meter': is a meter, not a signal"
    )
