"""The site file: good files load, every class of bad input names file, key path and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli import main
from agent.config_loader import ConfigError, load_config
from tests.sites import WriteSite, site_toml

REPO = Path(__file__).resolve().parent.parent


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.lines()


def test_shipped_example_is_valid() -> None:
    config = load_config(REPO / "config" / "site.example.toml")
    assert config.site.name == "taxi-hub"
    assert config.site.grid_import_limit_kw == 1200
    assert [d.id for d in config.devices] == [
        "grid-meter", "carport-meter", "pv-1", "dc-01-1", "battery-bms",
    ]  # fmt: skip
    assert config.grid_meter is not None
    assert config.grid_meter.unit_id == 1
    assert len(config.tariff.periods) == 6


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    assert problems(path) == [f"{path}: (file): file not found"]


def test_syntax_error_gives_line_and_column(write_site: WriteSite) -> None:
    path = write_site('[site]\nname = "x"\ngrid_import_limit_kw = = 5\n')
    (line,) = problems(path)
    assert line.startswith(f"{path}: (file): TOML syntax error")
    assert "line 3" in line
    assert "column" in line


def test_unknown_key_is_an_error(write_site: WriteSite) -> None:
    path = write_site(site_toml().replace("grid_import_limit_kw", "grid_limit_kw"))
    lines = problems(path)
    assert (
        f"{path}: site.grid_limit_kw = 1200: unknown key (misspelt, or in the wrong section?)"
        in lines
    )
    assert f"{path}: site.grid_import_limit_kw: required key is missing" in lines


def test_wrong_type_names_device_by_id(write_site: WriteSite) -> None:
    path = write_site(site_toml().replace("unit_id = 1", 'unit_id = "one"'))
    (line,) = problems(path)
    assert line.startswith(
        f"{path}: devices[grid-meter].unit_id = 'one': Input should be a valid integer"
    )


def test_out_of_range_value_says_what_is_allowed(write_site: WriteSite) -> None:
    path = write_site(site_toml().replace("unit_id = 1", "unit_id = 300"))
    assert problems(path) == [
        f"{path}: devices[grid-meter].unit_id = 300: Input should be less than or equal to 255"
    ]


def test_every_problem_is_reported_at_once(write_site: WriteSite) -> None:
    text = site_toml(meter_port=70000).replace(
        "grid_import_limit_kw = 1200", "grid_import_limit_kw = -1"
    )
    lines = problems(write_site(text))
    assert any("site.grid_import_limit_kw = -1: Input should be greater than 0" in x for x in lines)
    assert any("buses[lan].port = 70000" in x for x in lines)


SECOND_METER = """
[[devices]]
id = "{id}"
kind = "meter"
profile = "eastron-sdm630"
bus = "{bus}"
unit_id = {unit}
"""


def test_duplicate_device_id(write_site: WriteSite) -> None:
    extra = SECOND_METER.format(id="grid-meter", bus="lan", unit=2)
    path = write_site(site_toml() + extra)
    assert (
        f"{path}: devices[grid-meter].id = 'grid-meter': used 2 times; must be unique"
        in problems(path)
    )


def test_unknown_bus(write_site: WriteSite) -> None:
    path = write_site(site_toml() + SECOND_METER.format(id="sub", bus="rs485", unit=2))
    assert problems(path) == [f"{path}: devices[sub].bus = 'rs485': no such bus; buses: lan"]


def test_unit_id_clash_on_one_bus(write_site: WriteSite) -> None:
    path = write_site(site_toml() + SECOND_METER.format(id="sub", bus="lan", unit=1))
    assert problems(path) == [
        f"{path}: devices[sub].unit_id = 1: grid-meter already uses unit id 1 on gateway lan"
    ]


def test_unknown_profile_lists_shipped_ones(write_site: WriteSite) -> None:
    path = write_site(site_toml().replace('"eastron-sdm630"', '"sdm-630"'))
    (line,) = problems(path)
    assert line.startswith(f"{path}: devices[grid-meter].profile = 'sdm-630': no such profile")
    assert "eastron-sdm630" in line


def test_grid_meter_must_exist(write_site: WriteSite) -> None:
    path = write_site(site_toml().replace('grid_meter = "grid-meter"', 'grid_meter = "main"'))
    assert problems(path) == [f"{path}: site.grid_meter = 'main': no device with this id"]


def tariff(*periods: str) -> str:
    return "\n[tariff]\nperiods = [\n" + ",\n".join(periods) + "\n]\n"


def test_overlapping_tariff_periods(write_site: WriteSite) -> None:
    text = site_toml() + tariff(
        '{ name = "valley", start = "22:00", end = "08:00", price = 0.3 }',
        '{ name = "day", start = "07:00", end = "22:00", price = 0.9 }',
    )
    path = write_site(text)
    assert problems(path) == [
        f"{path}: tariff.periods[day] = '07:00-22:00': overlaps valley (22:00-08:00) at 07:00"
    ]


def test_tariff_gap(write_site: WriteSite) -> None:
    text = site_toml() + tariff(
        '{ name = "night", start = "00:00", end = "06:00", price = 0.3 }',
        '{ name = "day", start = "07:00", end = "24:00", price = 0.9 }',
    )
    path = write_site(text)
    assert problems(path) == [
        f"{path}: tariff.periods = '2 periods': must cover the whole day; uncovered: 06:00-07:00"
    ]


def test_bad_time_of_day(write_site: WriteSite) -> None:
    text = site_toml() + tariff('{ name = "all", start = "00:00", end = "25:00", price = 0.3 }')
    (line,) = problems(write_site(text))
    assert "tariff.periods[all].end = '25:00'" in line
    assert "HH:MM" in line


def test_environment_overrides_the_file(
    write_site: WriteSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGE_AGENT_SITE__GRID_IMPORT_LIMIT_KW", "950.5")
    monkeypatch.setenv("EDGE_AGENT_PROMETHEUS__PORT", "9200")
    config = load_config(write_site(site_toml()))
    assert config.site.grid_import_limit_kw == 950.5
    assert config.prometheus.port == 9200
    assert config.site.name == "test-site"  # the rest still comes from the file


def test_bad_environment_value_names_the_variable(
    write_site: WriteSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGE_AGENT_CONTROL__CYCLE_S", "fast")
    monkeypatch.setenv("EDGE_AGENT_SITE__GRID_LIMIT_KW", "900")
    lines = problems(write_site(site_toml()))
    assert any(
        x.startswith("environment EDGE_AGENT_CONTROL__CYCLE_S (control.cycle_s) = 'fast'")
        for x in lines
    )
    assert any(
        x.startswith("environment EDGE_AGENT_SITE__GRID_LIMIT_KW (site.grid_limit_kw)")
        and "unknown key" in x
        for x in lines
    )


def test_check_config_command(write_site: WriteSite, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_site(site_toml(meter_port=1502))
    assert main(["check-config", str(good)]) == 0
    out = capsys.readouterr().out
    assert f"{good}: OK" in out
    assert "bus lan (tcp 127.0.0.1:1502, timeout 0.5 s): 1 device(s)" in out
    assert "grid-meter" in out
    assert "import limit 1200 kW" in out

    bad = write_site(site_toml().replace("unit_id = 1", "unit_id = -1"), name="bad.toml")
    assert main(["check-config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"configuration {bad} has 1 problem:" in err
    assert "devices[grid-meter].unit_id = -1: Input should be greater than or equal to 0" in err


def test_run_refuses_a_bad_config(
    write_site: WriteSite, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write_site(site_toml().replace('type = "tcp"', 'type = "udp"'))
    assert main(["run", "--config", str(bad)]) == 78  # EX_CONFIG: systemd does not restart
    err = capsys.readouterr().err
    assert f"{bad}: buses[lan].type = 'udp': type must be 'serial' or 'tcp'" in err
    assert "not starting" in err


def test_two_buses_on_one_gateway(write_site: WriteSite) -> None:
    second = '\n[[buses]]\nname = "lan2"\ntype = "tcp"\nhost = "127.0.0.1"\nport = 5020\n'
    path = write_site(site_toml(meter_port=5020) + second)
    assert problems(path) == [
        f"{path}: buses[lan2].host = '127.0.0.1:5020': bus lan already uses it; "
        "put both buses' devices on one bus"
    ]


def test_switches_for_parts_not_in_this_version_are_refused(write_site: WriteSite) -> None:
    path = write_site(site_toml(extra="[mqtt]\nenabled = true\n"))
    assert problems(path) == [
        f"{path}: mqtt.enabled = True: MQTT is not available in this version; set it to false"
    ]


def test_list_entry_from_environment_is_blamed_on_the_variable(
    write_site: WriteSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGE_AGENT_DEVICES__0__UNIT_ID", "9")
    (line,) = problems(write_site(site_toml()))
    assert line.startswith("environment EDGE_AGENT_DEVICES__0__UNIT_ID (devices)")


def test_a_whole_list_can_be_replaced_from_the_environment(
    write_site: WriteSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "EDGE_AGENT_BUSES", '[{"name": "lan", "type": "tcp", "host": "10.0.0.9", "port": 502}]'
    )
    config = load_config(write_site(site_toml()))
    assert [(b.name, getattr(b, "host", None)) for b in config.buses] == [("lan", "10.0.0.9")]


CHARGERS = """
[[chargers]]
id = "dc-01"
kind = "dc"
max_kw = 120
connectors = [
    { id = 1, device = "grid-meter", max_kw = 120 },
    { id = 1, device = "nope", max_kw = 60 },
]

[[chargers]]
id = "wb-1"
kind = "ac"
max_kw = 7.4
phases = 1
min_a = 6
max_a = 32
connectors = [{ id = 1, device = "nope2", max_kw = 7.4 }]
"""


def test_charger_connectors_must_be_limitable_charger_devices(write_site: WriteSite) -> None:
    path = write_site(site_toml() + CHARGERS)
    assert problems(path) == [
        f"{path}: chargers[wb-1]: Value error, a 1-phase charger needs phase = L1, L2 or L3",
    ]
    path = write_site(site_toml() + CHARGERS.replace("phases = 1", 'phases = 1\nphase = "L2"'))
    assert problems(path) == [
        f"{path}: chargers[dc-01].connectors[1].id = 1: used twice",
        f"{path}: chargers[dc-01].connectors[1].device = 'grid-meter': is a meter, not a charger",
        f"{path}: chargers[dc-01].connectors[1].device = 'nope': no such device",
        f"{path}: chargers[wb-1].connectors[1].device = 'nope2': no such device",
    ]
