"""Decoding and read planning against the shipped SDM630 profile, and profile validation."""

from __future__ import annotations

import math

import pytest

from agent.drivers.profile import (
    DataType,
    PollClass,
    ProfileError,
    RegisterField,
    RegisterKind,
    WordOrder,
    available_profiles,
    load_profile,
    parse_profile,
)
from agent.drivers.registers import DecodeError, decode_field, encode_float32, plan_reads


def field(address: int, data_type: DataType = DataType.F32, **kw: object) -> RegisterField:
    return RegisterField(
        quantity=str(kw.get("quantity", "power")),
        address=address,
        kind=RegisterKind(str(kw.get("kind", "input"))),
        data_type=data_type,
        word_order=WordOrder(str(kw.get("word_order", "big"))),
        scale=float(kw.get("scale", 1.0)),  # type: ignore[arg-type]
        poll=PollClass.FAST,
    )


def test_float32_word_order() -> None:
    words = encode_float32(231.25)
    assert words == [0x4367, 0x4000]
    assert decode_field(field(0), 0, words) == 231.25
    # Read with the words swapped the same registers mean something else entirely.
    assert decode_field(field(0, word_order="little"), 0, words) != pytest.approx(231.25)
    assert decode_field(field(0, word_order="little"), 0, list(reversed(words))) == 231.25


def test_integer_types_and_scale() -> None:
    assert decode_field(field(0, DataType.S16, scale=0.1), 0, [0xFFF6]) == pytest.approx(-1.0)
    assert decode_field(field(0, DataType.U32), 0, [0x0001, 0x0002]) == 65538
    assert decode_field(field(0, DataType.S32, word_order="little"), 0, [0xFFFE, 0xFFFF]) == -2


def test_nan_and_short_replies_are_decode_errors() -> None:
    with pytest.raises(DecodeError):
        decode_field(field(0), 0, encode_float32(math.nan))
    with pytest.raises(DecodeError):
        decode_field(field(2), 0, [0, 0, 0x4367])


def test_sdm630_profile_is_one_request() -> None:
    profile = load_profile("eastron-sdm630")
    assert "eastron-sdm630" in available_profiles()
    assert profile.field("power").address == 0x34
    assert profile.field("energy_import").scale == 1000.0
    blocks = plan_reads(profile.fields, profile.max_gap)
    assert [(b.address, b.count) for b in blocks] == [(0x0000, 0x004C)]


def test_planning_splits_on_gap_limit_and_kind() -> None:
    fields = [
        field(0, quantity="voltage_l1"),
        field(2, quantity="voltage_l2"),
        field(30, quantity="voltage_l3"),
        field(200, quantity="power"),
        field(0, quantity="frequency", kind="holding"),
    ]
    blocks = plan_reads(fields, max_gap=30)
    assert [(b.kind.value, b.address, b.count) for b in blocks] == [
        ("holding", 0, 2),
        ("input", 0, 32),
        ("input", 200, 2),
    ]
    # Never more than 125 registers in one read, however generous the gap allowance.
    far = [field(0, quantity="voltage_l1"), field(124, quantity="power")]
    assert [b.count for b in plan_reads(far, max_gap=500)] == [2, 2]


PROFILE_HEAD = """
[profile]
name = "x"
manufacturer = "m"
model = "m"
kind = "meter"
source = "doc"
"""


def test_overlapping_fields_are_refused() -> None:
    text = (
        PROFILE_HEAD
        + """
[[fields]]
quantity = "power"
address = 10
type = "f32"
[[fields]]
quantity = "frequency"
address = 11
type = "u16"
"""
    )
    with pytest.raises(ProfileError, match="fields power and frequency overlap"):
        parse_profile(text, origin="profiles/x.toml")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('quantity = "watts"\naddress = 1\ntype = "f32"', r"fields\[0\]\.quantity: 'watts'"),
        ('quantity = "power"\naddress = 1\ntype = "f128"', r"fields\[0\] \(power\)\.type: 'f128'"),
        ('quantity = "power"\naddress = 70000\ntype = "f32"', r"\.address: 70000"),
        ('quantity = "power"\naddress = 1\ntype = "f32"\nunit = "kW"', r"\.unit: 'kW'"),
        ('quantity = "power"\naddress = 1\ntype = "f32"\ngain = 2', r"unknown key\(s\) gain"),
    ],
)
def test_bad_fields_name_file_and_field(body: str, message: str) -> None:
    with pytest.raises(ProfileError, match=r"^profiles/x\.toml: .*" + message):
        parse_profile(PROFILE_HEAD + "[[fields]]\n" + body, origin="profiles/x.toml")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("max_gap = 2.5", r"profile\.max_gap = 2\.5: must be a whole number 0-120"),
        ("max_gap = -1", r"profile\.max_gap = -1"),
        ('colour = "red"', r"profile has unknown key\(s\) colour"),
    ],
)
def test_bad_profile_header_is_a_profile_error(header: str, message: str) -> None:
    body = '[[fields]]\nquantity = "power"\naddress = 1\ntype = "f32"\n'
    with pytest.raises(ProfileError, match=r"^profiles/x\.toml: " + message):
        parse_profile(PROFILE_HEAD + header + "\n" + body, origin="profiles/x.toml")
