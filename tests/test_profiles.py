"""Profile files: every shipped one loads, and each kind of mistake names file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import RegisterMapping
from agent.config_loader import ConfigError, load_config
from agent.drivers.profile import (
    DataType,
    DeviceProfile,
    FieldRole,
    ProfileError,
    available_profiles,
    load_profile,
)
from agent.drivers.profile_parser import parse_profile
from agent.drivers.setpoints import SetpointError, check_setpoint
from agent.drivers.template import TemplateError, bind_template
from tests.sites import WriteSite, site_toml

HEAD = """
[profile]
name = "x"
manufacturer = "m"
model = "m"
kind = "charger"
source = "doc"
"""


def parse(text: str) -> DeviceProfile:
    return parse_profile(HEAD + text, origin="profiles/x.toml")


@pytest.mark.parametrize("name", available_profiles())
def test_every_shipped_profile_loads_and_cites_its_source(name: str) -> None:
    profile = load_profile(name)
    assert profile.source
    assert profile.fields or profile.protocol != "modbus"


def test_a_full_profile_parses_into_fields_and_setpoints() -> None:
    profile = parse(
        """
[[fields]]
name = "power_sf"
address = 10
type = "s16"
[[fields]]
quantity = "power"
address = 8
type = "s16"
scale_factor = "power_sf"
[[fields]]
quantity = "charging_state"
address = 11
type = "enum16"
labels = { 0 = "available", 2 = "charging" }
[[fields]]
info = "serial_number"
address = 20
type = "string"
length = 8
poll = "once"
[[setpoints]]
name = "current_limit"
address = 100
type = "f32"
min = 0
max = 32
renew_s = 60
prepare = [{ address = 102, type = "u16", value = 1 }]
"""
    )
    assert profile.field("power").encoding.scale_factor == "power_sf"
    assert profile.field("power_sf").role is FieldRole.HELPER
    assert profile.field("charging_state").labels == {0: "available", 2: "charging"}
    serial = profile.field("serial_number")
    assert (serial.role, serial.data_type, serial.end) == (FieldRole.INFO, DataType.STRING, 28)
    limit = profile.setpoint("current_limit")
    assert (limit.minimum, limit.maximum, limit.renew_s) == (0.0, 32.0, 60.0)
    assert limit.prepare[0].address == 102
    assert check_setpoint(profile, "current_limit", 16.0) is limit
    with pytest.raises(SetpointError, match=r"current_limit = 40.0 is outside 0..32"):
        check_setpoint(profile, "current_limit", 40.0)
    with pytest.raises(SetpointError, match="has no setpoint 'power_limit'"):
        check_setpoint(profile, "power_limit", 1.0)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('quantity = "watts"\naddress = 1\ntype = "f32"', r"fields\[0\]\.quantity: 'watts'"),
        ('quantity = "power"\naddress = 1\ntype = "f128"', r"fields\[0\] \(power\)\.type: 'f128'"),
        ('quantity = "power"\naddress = 70000\ntype = "f32"', r"\.address: 70000"),
        ('quantity = "power"\naddress = 1\ntype = "f32"\nunit = "kW"', r"\.unit: 'kW'"),
        ('quantity = "power"\naddress = 1\ntype = "f32"\ngain = 2', r"unknown key\(s\) gain"),
        ('quantity = "power"\naddress = 1\ntype = "f32"\nlabels = { 1 = "x" }', "has no labels"),
        ('info = "serial"\naddress = 1\ntype = "string"', r"\.length: 0: a string needs"),
        (
            'quantity = "power"\naddress = 1\ntype = "s16"\nscale_factor = "W_SF"',
            r"power\.scale_factor names no field: 'W_SF'",
        ),
        ('quantity = "power"\ninfo = "x"\naddress = 1\ntype = "s16"', "exactly one of"),
    ],
)
def test_bad_fields_name_file_and_field(body: str, message: str) -> None:
    with pytest.raises(ProfileError, match=r"^profiles/x\.toml: .*" + message):
        parse("[[fields]]\n" + body)


def test_overlapping_fields_are_refused() -> None:
    body = '[[fields]]\nquantity = "power"\naddress = 10\ntype = "f32"\n'
    body += '[[fields]]\nquantity = "frequency"\naddress = 11\ntype = "u16"\n'
    with pytest.raises(ProfileError, match="fields power and frequency overlap"):
        parse(body)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('name = "current_limit"\naddress = 5\ntype = "f32"\nmin = 10\nmax = 6', "min 10 is above"),
        ('name = "current_limit"\naddress = 5\ntype = "f32"\nmin = 0', r"\.max: None"),
        ('name = "warp"\naddress = 5\ntype = "f32"\nmin = 0\nmax = 1', r"\.name: 'warp'"),
        (
            'name = "current_limit"\naddress = 5\ntype = "f32"\nmin = 0\nmax = 1\nrenew_s = -1',
            r"renew_s: -1",
        ),
    ],
)
def test_bad_setpoints_are_refused(body: str, message: str) -> None:
    field = '[[fields]]\nquantity = "power"\naddress = 1\ntype = "f32"\n'
    with pytest.raises(ProfileError, match=r"^profiles/x\.toml: setpoints\[0\].*" + message):
        parse(field + "[[setpoints]]\n" + body)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("max_gap = 2.5", r"profile\.max_gap = 2\.5: must be a whole number 0-120"),
        ("max_gap = -1", r"profile\.max_gap = -1"),
        ('colour = "red"', r"profile: unknown key\(s\) colour"),
        ("barriers = [[9, 3]]", r"profile\.barriers: \[9, 3\]"),
        ("barriers = [[0, 5]]", r"field power lies in the barrier \[0, 5\]"),
        ('protocol = "canbus"', r"profile\.protocol = 'canbus'"),
    ],
)
def test_bad_profile_header_is_a_profile_error(header: str, message: str) -> None:
    body = '[[fields]]\nquantity = "power"\naddress = 1\ntype = "f32"\n'
    with pytest.raises(ProfileError, match=r"^profiles/x\.toml: " + message):
        parse_profile(HEAD + header + "\n" + body, origin="profiles/x.toml")


TEMPLATE = """
[profile]
name = "t"
manufacturer = "any"
model = "any"
kind = "charger"
source = "site config"
template = true

[[fields]]
quantity = "power"
poll = "fast"

[[fields]]
quantity = "energy_import"
poll = "slow"

[[setpoints]]
name = "power_limit"
min = 0
"""


def mapping(**values: object) -> RegisterMapping:
    return RegisterMapping.model_validate(values)


def test_a_template_is_bound_by_the_site_config() -> None:
    template = parse_profile(TEMPLATE, origin="profiles/t.toml")
    assert not template.bound
    bound = bind_template(
        template,
        {
            "power": mapping(address=100, type="s32", scale=10.0),
            "power_limit": mapping(address=200, type="u16", scale=100.0, max=120_000, renew_s=30),
        },
        "devices[dc-01a]",
    )
    assert bound.bound
    assert [f.name for f in bound.fields] == ["power"]  # unmapped energy is left out
    assert bound.field("power").encoding.scale == 10.0
    assert bound.setpoint("power_limit").maximum == 120_000
    assert bound.setpoint("power_limit").renew_s == 30


@pytest.mark.parametrize(
    ("registers", "key", "reason"),
    [
        ({"voltage": {"address": 1, "type": "u16"}}, "registers.voltage", "has no such field"),
        ({"power_limit": {"address": 1, "type": "u16"}}, "power_limit.max", "device's maximum"),
        (
            {"power": {"address": 1, "type": "u16", "register": "input"},
             "power_limit": {"address": 1, "type": "u16", "register": "input", "max": 5}},
            "registers.power_limit", "setpoints are holding registers",
        ),
        ({}, "devices[dc-01a].registers", "map at least one"),
    ],
)  # fmt: skip
def test_template_mapping_mistakes_name_the_config_key(
    registers: dict[str, dict[str, object]], key: str, reason: str
) -> None:
    template = parse_profile(TEMPLATE, origin="profiles/t.toml")
    parsed = {name: mapping(**value) for name, value in registers.items()}
    with pytest.raises(TemplateError) as caught:
        bind_template(template, parsed, "devices[dc-01a]")
    assert caught.value.key.endswith(key)
    assert reason in caught.value.reason


LOCAL_PROFILE = """
[profile]
name = "acme-x100"
manufacturer = "ACME"
model = "X100"
kind = "meter"
source = "ACME X100 Modbus map v1.2"

[[fields]]
quantity = "power"
address = 0x34
type = "{type}"
"""


def test_a_technician_adds_a_model_in_the_site_profile_folder(
    tmp_path: Path, write_site: WriteSite
) -> None:
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "acme-x100.toml").write_text(LOCAL_PROFILE.format(type="s32"), encoding="utf-8")
    site = site_toml().replace('profile = "eastron-sdm630"', 'profile = "acme-x100"')
    site += f'\n[drivers]\nprofiles_dir = "{folder}"\n'
    config = load_config(write_site(site))
    assert "acme-x100" in available_profiles(folder)
    assert load_profile("acme-x100", folder).field("power").address == 0x34
    assert config.drivers.profiles_dir == folder
    # A mistake in the site's own file names that file, at start-up.
    (folder / "acme-x200.toml").write_text(
        LOCAL_PROFILE.format(type="s48").replace("x100", "x200"), encoding="utf-8"
    )
    broken = write_site(site.replace('"acme-x100"', '"acme-x200"'), name="broken.toml")
    with pytest.raises(ConfigError) as caught:
        load_config(broken)
    assert f"{folder}/acme-x200.toml: fields[0] (power).type: 's48'" in caught.value.report()
