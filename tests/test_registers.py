"""Decoding, encoding and read planning, against hand-built fields and shipped profiles."""

from __future__ import annotations

import math

import pytest

from agent.drivers.profile import (
    DataType,
    Encoding,
    FieldRole,
    PollClass,
    RegisterField,
    RegisterKind,
    WordOrder,
    available_profiles,
    load_profile,
)
from agent.drivers.registers import (
    DecodeError,
    NotImplementedValue,
    decode_field,
    decode_raw,
    decode_text,
    encode_float32,
    encode_value,
    plan_reads,
    worthwhile_gap,
)


def field(
    address: int,
    data_type: DataType = DataType.F32,
    name: str = "power",
    kind: str = "input",
    word_order: str = "big",
    scale: float = 1.0,
    length: int = 0,
    not_implemented: bool = False,
) -> RegisterField:
    encoding = Encoding(data_type, WordOrder(word_order), scale, None, length, not_implemented)
    return RegisterField(
        name, FieldRole.QUANTITY, address, RegisterKind(kind), encoding, PollClass.FAST
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
    f64 = [0x40FE, 0x2408, 0x0000, 0x0000]  # 123456.5 as IEEE-754 double
    assert decode_field(field(0, DataType.F64), 0, f64) == 123456.5
    assert decode_field(field(0, DataType.BITFIELD32), 0, [0x0001, 0x8000]) == 0x18000


def test_strings_are_two_characters_per_register() -> None:
    words = [0x5355, 0x4E32, 0x3030, 0x3000, 0x0000]  # "SUN2000" and NUL padding
    assert decode_text(field(0, DataType.STRING, length=5), 0, words) == "SUN2000"


def test_nan_short_replies_and_sunspec_markers_are_refused() -> None:
    with pytest.raises(DecodeError):
        decode_field(field(0), 0, encode_float32(math.nan))
    with pytest.raises(DecodeError):
        decode_field(field(2), 0, [0, 0, 0x4367])
    marked = field(0, DataType.S16, not_implemented=True)
    with pytest.raises(NotImplementedValue):
        decode_raw(marked, 0, [0x8000])
    assert decode_raw(marked, 0, [0x8001]) == -32767
    # Without SunSpec markers 0xFFFF is a plain 65535.
    assert decode_raw(field(0, DataType.U16), 0, [0xFFFF]) == 65535


@pytest.mark.parametrize(
    ("value", "encoding", "words"),
    [
        (16.0, Encoding(DataType.F32), [0x4180, 0x0000]),
        (16.5, Encoding(DataType.U16, scale=0.1), [165]),
        (-2.0, Encoding(DataType.S32, WordOrder.LITTLE), [0xFFFE, 0xFFFF]),
        (7_500.0, Encoding(DataType.U16, scale=100.0), [75]),
    ],
)
def test_encoding_is_the_inverse_of_decoding(
    value: float, encoding: Encoding, words: list[int]
) -> None:
    assert encode_value(value, encoding) == words
    probe = RegisterField("x", FieldRole.HELPER, 0, RegisterKind.HOLDING, encoding, PollClass.ONCE)
    assert decode_field(probe, 0, words) == pytest.approx(value)


def test_encoding_with_a_scale_factor() -> None:
    # SunSpec WMaxLimPct = 55.5 % with WMaxLimPct_SF = -1 is the register value 555.
    assert encode_value(55.5, Encoding(DataType.U16, scale_factor="sf"), scale_factor=-1) == [555]


def test_sdm630_profile_is_one_request() -> None:
    profile = load_profile("eastron-sdm630")
    assert "eastron-sdm630" in available_profiles()
    assert profile.field("power").address == 0x34
    assert profile.field("energy_import").encoding.scale == 1000.0
    blocks = plan_reads(profile.fields, profile.max_gap or 0)
    assert [(b.address, b.count) for b in blocks] == [(0x0000, 0x004C)]


def test_planning_splits_on_gap_limit_and_kind() -> None:
    fields = [
        field(0, name="voltage_l1"),
        field(2, name="voltage_l2"),
        field(30, name="voltage_l3"),
        field(200, name="power"),
        field(0, name="frequency", kind="holding"),
    ]
    blocks = plan_reads(fields, max_gap=30)
    assert [(b.kind.value, b.address, b.count) for b in blocks] == [
        ("holding", 0, 2),
        ("input", 0, 32),
        ("input", 200, 2),
    ]
    # Never more than 125 registers in one read, however generous the gap allowance.
    far = [field(0, name="voltage_l1"), field(124, name="power")]
    assert [b.count for b in plan_reads(far, max_gap=500)] == [2, 2]


def test_planning_never_reads_across_a_barrier() -> None:
    fields = [field(0, name="voltage_l1"), field(10, name="voltage_l2")]
    assert len(plan_reads(fields, max_gap=20)) == 1
    blocks = plan_reads(fields, max_gap=20, barriers=[(5, 6)])
    assert [(b.address, b.count) for b in blocks] == [(0, 2), (10, 2)]
    # A barrier right after the last field does not split anything.
    assert len(plan_reads(fields, max_gap=20, barriers=[(12, 20)])) == 1


def test_gap_worth_bridging_depends_on_the_bus() -> None:
    # 9600 baud 8N1: a request costs 20 characters of frames and silences plus a 50 ms
    # turnaround (48 characters); each register bridged costs 2 characters.
    assert worthwhile_gap(9600, 10) == 34
    assert worthwhile_gap(19200, 10) == 58
    assert worthwhile_gap(115200, 10) == 125
    assert worthwhile_gap(None) == 100


def test_huawei_map_plans_the_fewest_reads() -> None:
    """A realistic sparse map: the exact minimum number of requests at each gap allowance."""
    # Huawei SUN2000 running data: 32016-32019 (PV1/PV2 V and A), 32064-32065 (input power),
    # 32069-32071 (grid voltages), 32072-32077 (currents), 32080-32081 (active power),
    # 32084 (PF), 32085 (frequency), 32087 (temperature), 32089 (status), 32106-32107 (yield).
    spans = [(32016, 4), (32064, 2), (32069, 3), (32072, 6), (32080, 2), (32084, 1)]
    spans += [(32085, 1), (32087, 1), (32089, 1), (32106, 2)]
    fields = []
    for index, (address, words) in enumerate(spans):
        data_type = DataType.U32 if words == 2 else DataType.U16
        for offset in range(0, words, data_type.fixed_words):
            fields.append(field(address + offset, data_type, name=f"f{index}_{offset}"))
    # TCP bridges everything: 32016..32107 is 92 registers, one request.
    assert len(plan_reads(fields, max_gap=worthwhile_gap(None))) == 1
    # At 9600 baud the 44-register hole after 32019 is not worth bridging; the rest is.
    blocks = plan_reads(fields, max_gap=worthwhile_gap(9600, 10))
    assert [(b.address, b.count) for b in blocks] == [(32016, 4), (32064, 44)]
    # With no bridging at all, every contiguous run is its own request.
    assert len(plan_reads(fields, max_gap=0)) == 8
