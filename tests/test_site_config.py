"""The site config generated for a scenario is one the agent accepts, and describes the site."""

from __future__ import annotations

import pytest

from agent.config_loader import load_config
from agent.control.site_model import SiteModel
from agent.control.static import static_plan
from hil.scenario_loader import load_scenario, scenario_names
from hil.site_config import Endpoints, site_toml
from tests.sites import WriteSite


@pytest.mark.parametrize("name", scenario_names())
def test_every_scenario_gives_a_valid_site_config(name: str, write_site: WriteSite) -> None:
    scenario = load_scenario(name)
    config = load_config(write_site(site_toml(scenario)))
    connectors = sum(len(c.connectors) for c in scenario.chargers)
    assert len(config.chargers) == len(scenario.chargers)
    assert sum(len(c.connectors) for c in config.chargers) == connectors
    assert config.site.grid_import_limit_kw == scenario.site.grid_limit_kw
    assert len(static_plan(SiteModel.from_config(config)).connectors) == connectors


def test_reference_station_layout(write_site: WriteSite) -> None:
    scenario = load_scenario("reference-station")
    endpoints = Endpoints("/dev/pts/9", pv=2001, battery=2002, chargers=(2003, 2004))
    config = load_config(write_site(site_toml(scenario, endpoints, speed=2.0)))
    buses = {bus.name: bus for bus in config.buses}
    # 182 connectors, 32 per gateway: 6 gateways; 1.1 MWp as eleven 100 kW inverters.
    assert sorted(buses) == [
        "battery", "chargers-1", "chargers-2", "chargers-3", "chargers-4", "chargers-5",
        "chargers-6", "meter", "pv",
    ]  # fmt: skip
    assert len([d for d in config.devices if d.kind.value == "inverter"]) == 11
    assert config.control.cycle_s == 0.5
    assert config.tariff.timezone == "Etc/GMT-8"  # +08:00
    c001 = next(c for c in config.chargers if c.id == "c001")
    assert [(k.device, k.max_kw) for k in c001.connectors] == [("c001-1", 120), ("c001-2", 120)]
    # Static caps: (1200 - 12 margin - 140 peak base load) / 182 = 5.758 kW per connector.
    plan = static_plan(SiteModel.from_config(config))
    assert plan.connectors["c001-1"].value == 5.758
