"""The fair controller's allocation core: max-min fair water-filling and AC rotation.

Properties on random sites (hypothesis): nothing ever exceeds a connector's, car's, charger's,
phase's or the site's limit; no AC value between 0 and its minimum; identical cars get identical
shares; no power is left that a car could take (some constraint of it binds); and the result
matches a slow, obviously-correct reference (bisection on the common level) to one rounding step.
Hand-computed cases pin the reasons. Rotation is driven for an hour under a fixed shortage.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.control.allocation import AC_STEP_A, Allocation, Budget, Demand, allocate
from agent.control.plan import Reason
from agent.control.rotation import Rotation
from agent.control.site_model import ALL_PHASES, ConnectorModel, Phase

INF = math.inf
VOLTS = 230.0
TOL = 1e-6
NO_PHASE_LIMIT: dict[Phase, float] = dict.fromkeys(ALL_PHASES, INF)


def dc(device: str, charger: str, max_kw: float) -> ConnectorModel:
    return ConnectorModel(device, charger, 1, "dc", max_kw, ALL_PHASES, None, None)


def ac(
    device: str,
    charger: str,
    phases: tuple[Phase, ...] = ALL_PHASES,
    min_a: float | None = 6.0,
    max_a: float | None = 16.0,
    max_kw: float = 22.0,
) -> ConnectorModel:
    return ConnectorModel(device, charger, 1, "ac", max_kw, phases, min_a, max_a)


def budget(total_kw: float = INF, **phase_a: float) -> Budget:
    phases: dict[Phase, float] = dict(NO_PHASE_LIMIT)
    for name, amps in phase_a.items():
        phases[_phase(name)] = amps
    return Budget(total_kw, phases, VOLTS)


def _phase(name: str) -> Phase:
    for phase in ALL_PHASES:
        if phase == name:
            return phase
    raise ValueError(name)


def values(allocation: Allocation) -> dict[str, tuple[float, Reason]]:
    return {d: (lim.value, lim.reason) for d, lim in allocation.limits.items()}


# --- hand-computed cases ------------------------------------------------------------------------


def test_a_car_that_wants_little_leaves_the_rest_to_the_others() -> None:
    """1200 kW site, three 600 kW connectors: 30 for the car that wants 30, (1200-30)/2 each."""
    a, b, c = dc("a", "A", 600), dc("b", "B", 600), dc("c", "C", 600)
    result = allocate(
        [Demand(a, 30), Demand(b, 600), Demand(c, 600)],
        {"A": 600, "B": 600, "C": 600},
        budget(1200),
    )
    assert values(result) == {
        "a": (30.0, Reason.CAR),
        "b": (585.0, Reason.GRID),
        "c": (585.0, Reason.GRID),
    }
    assert result.total_kw == pytest.approx(1200)
    assert all(lim.unit == "kW" for lim in result.limits.values())


def test_a_charger_passes_the_unused_share_on() -> None:
    """150 kW charger, two 150 kW connectors: 40 for the car that wants 40, 110 for the other."""
    a, b = dc("a", "X", 150), dc("b", "X", 150)
    result = allocate([Demand(a, 40), Demand(b, 200)], {"X": 150}, budget())
    assert values(result) == {"a": (40.0, Reason.CAR), "b": (110.0, Reason.CHARGER)}


def test_a_charger_splits_equally() -> None:
    a, b = dc("a", "X", 150), dc("b", "X", 150)
    result = allocate([Demand(a, 150), Demand(b, 150)], {"X": 150}, budget())
    assert values(result) == {"a": (75.0, Reason.CHARGER), "b": (75.0, Reason.CHARGER)}


def test_the_connector_maximum_reads_charger_and_the_car_reads_car() -> None:
    a, b = dc("a", "A", 50), dc("b", "B", 50)
    result = allocate([Demand(a, 50), Demand(b, 80)], {}, budget())
    assert values(result) == {"a": (50.0, Reason.CHARGER), "b": (50.0, Reason.CHARGER)}
    result = allocate([Demand(a, 49.95)], {}, budget())
    assert values(result) == {"a": (49.9, Reason.CAR)}


def test_weights_share_in_proportion() -> None:
    a, b = dc("a", "A", 300), dc("b", "B", 300)
    result = allocate([Demand(a, 300, 1.0), Demand(b, 300, 2.0)], {}, budget(90))
    assert values(result) == {"a": (30.0, Reason.GRID), "b": (60.0, Reason.GRID)}


def test_a_heavy_car_that_wants_little_gives_the_rest_back() -> None:
    """Levels L, L, 2L: the weight-2 car stops at 20 (L = 10), the others share 80."""
    a, b, c = dc("a", "A", 300), dc("b", "B", 300), dc("c", "C", 300)
    result = allocate([Demand(a, 300), Demand(b, 300), Demand(c, 20, 2.0)], {}, budget(100))
    assert values(result) == {
        "a": (40.0, Reason.GRID),
        "b": (40.0, Reason.GRID),
        "c": (20.0, Reason.CAR),
    }


def test_dc_rounds_down_to_the_step() -> None:
    cars = [dc(name, name, 300) for name in "abc"]
    result = allocate([Demand(c, 300) for c in cars], {}, budget(100))
    assert values(result) == {name: (33.3, Reason.GRID) for name in "abc"}
    result = allocate([Demand(c, 300) for c in cars], {}, budget(100), dc_step_kw=1.0)
    assert values(result) == {name: (33.0, Reason.GRID) for name in "abc"}


def test_dc_cars_load_the_phases() -> None:
    """100 A per phase at 230 V is 69 kW of 3-phase load: 34.5 each."""
    a, b = dc("a", "A", 150), dc("b", "B", 150)
    result = allocate([Demand(a, 50), Demand(b, 50)], {}, budget(L1=100, L2=200, L3=200))
    assert values(result) == {"a": (34.5, Reason.PHASE), "b": (34.5, Reason.PHASE)}


def test_ac_minimums_that_do_not_fit_pause_the_last_cars() -> None:
    """L1 has 16 A: two 6 A minimums fit, a third does not; the two share 16 A."""
    cars = [ac(name, name, ("L1",), max_a=32, max_kw=7.4) for name in "abc"]
    result = allocate([Demand(c, 7.4) for c in cars], {}, budget(L1=16))
    assert values(result) == {
        "a": (8.0, Reason.PHASE),
        "b": (8.0, Reason.PHASE),
        "c": (0.0, Reason.ROTATION),
    }
    assert result.kw["c"] == 0.0
    assert result.kw["a"] == pytest.approx(8 * 230 / 1000)


def test_a_later_car_on_another_phase_still_runs() -> None:
    a = ac("a", "A", ("L1",), max_a=32, max_kw=7.4)
    b = ac("b", "B", ("L1",), max_a=32, max_kw=7.4)
    c = ac("c", "C", ("L2",), max_a=32, max_kw=7.4)
    result = allocate([Demand(a, 7.4), Demand(b, 7.4), Demand(c, 7.4)], {}, budget(L1=10))
    assert values(result) == {
        "a": (10.0, Reason.PHASE),
        "b": (0.0, Reason.ROTATION),
        "c": (32.0, Reason.CHARGER),
    }


def test_ac_stays_at_its_minimum_until_the_level_passes_it() -> None:
    """DC and a 3-phase 6 A (4.14 kW) AC car on 6 kW: the AC car keeps 6 A, DC gets 1.86."""
    d, a = dc("d", "D", 50), ac("a", "A", max_kw=11)
    result = allocate([Demand(d, 50), Demand(a, 11)], {}, budget(6))
    assert values(result) == {"d": (1.8, Reason.GRID), "a": (6.0, Reason.GRID)}
    # On 10 kW the level passes the minimum: 5 kW each, 5000 / 690 = 7.25 A.
    result = allocate([Demand(d, 50), Demand(a, 11)], {}, budget(10))
    assert values(result) == {"d": (5.0, Reason.GRID), "a": (7.2, Reason.GRID)}
    assert result.total_kw <= 10


def test_an_ac_car_that_wants_less_than_its_minimum_is_offered_the_minimum() -> None:
    """Less than the minimum would be nothing; the car takes what it takes."""
    a = ac("a", "A")
    result = allocate([Demand(a, 1.0)], {}, budget())
    assert values(result) == {"a": (6.0, Reason.CAR)}
    assert result.kw["a"] == pytest.approx(6 * 230 * 3 / 1000)


def test_three_phase_and_one_phase_cars_share_a_phase_in_kw() -> None:
    """L1 32 A: x/690 + x/230 = 32 A/kV, so x = 5.52 kW each: 8 A for 3-phase, 24 A for 1."""
    a = ac("a", "A", max_a=32)
    b = ac("b", "B", ("L1",), max_a=32, max_kw=7.4)
    result = allocate([Demand(a, 22), Demand(b, 7.4)], {}, budget(L1=32))
    assert values(result) == {"a": (8.0, Reason.PHASE), "b": (24.0, Reason.PHASE)}


def test_paused_cars_get_nothing_and_leave_room() -> None:
    a = ac("a", "A", ("L1",), max_a=32, max_kw=7.4)
    b = ac("b", "B", ("L1",), max_a=32, max_kw=7.4)
    result = allocate([Demand(a, 7.4), Demand(b, 7.4)], {}, budget(L1=16), paused={"b"})
    assert values(result) == {"a": (16.0, Reason.PHASE), "b": (0.0, Reason.ROTATION)}


def test_no_budget_means_nothing() -> None:
    d, a = dc("d", "D", 50), ac("a", "A")
    result = allocate([Demand(d, 50), Demand(a, 11)], {}, budget(0))
    assert values(result) == {"d": (0.0, Reason.GRID), "a": (0.0, Reason.ROTATION)}
    assert result.total_kw == 0.0


def test_a_connector_that_can_never_reach_its_minimum_gets_nothing() -> None:
    tiny = ac("a", "A", min_a=6, max_a=16, max_kw=3)  # 6 A on 3 phases is 4.14 kW
    result = allocate([Demand(tiny, 3)], {}, budget())
    assert values(result) == {"a": (0.0, Reason.CHARGER)}


def test_cars_that_want_nothing_get_nothing() -> None:
    result = allocate([Demand(dc("d", "D", 50), 0.0)], {}, budget())
    assert values(result) == {"d": (0.0, Reason.CAR)}


def test_bad_input_is_refused() -> None:
    d = dc("d", "D", 50)
    with pytest.raises(ValueError, match="two demands"):
        allocate([Demand(d, 1), Demand(d, 2)], {}, budget())
    with pytest.raises(ValueError, match="weight"):
        allocate([Demand(d, 1, 0.0)], {}, budget())


# --- random sites -------------------------------------------------------------------------------


@dataclass
class Problem:
    demands: list[Demand]
    chargers: dict[str, float]
    budget: Budget
    paused: frozenset[str]
    dc_step_kw: float
    connectors: dict[str, ConnectorModel] = field(default_factory=dict)


finite = st.floats(min_value=0.0, max_value=2000.0, allow_nan=False, allow_infinity=False)


@st.composite
def problems(draw: st.DrawFn) -> Problem:
    chargers: dict[str, float] = {}
    connectors: list[ConnectorModel] = []
    for index in range(draw(st.integers(1, 6))):
        charger = f"C{index}"
        kind: Literal["dc", "ac"] = draw(st.sampled_from(["dc", "ac"]))
        charger_kw = draw(st.one_of(st.just(INF), st.floats(1.0, 400.0)))
        if charger_kw < INF:
            chargers[charger] = charger_kw
        phases: tuple[Phase, ...] = draw(
            st.one_of(st.just(ALL_PHASES), st.sampled_from(ALL_PHASES).map(lambda p: (p,)))
        )
        min_a = max_a = None
        if kind == "ac":
            min_a = draw(st.sampled_from([None, 6.0, 6.05, 8.0, 10.0]))
            max_a = draw(st.sampled_from([None, 16.0, 32.0, 63.0]))
        for number in range(draw(st.integers(1, 3))):
            max_kw = draw(st.floats(1.0, 400.0 if kind == "dc" else 45.0))
            connectors.append(
                ConnectorModel(
                    f"{charger}-{number}", charger, number, kind, max_kw, phases, min_a, max_a
                )
            )
    demands: list[Demand] = []
    for connector in connectors:
        if not draw(st.booleans()) and demands:
            continue
        wants = draw(st.one_of(st.just(connector.max_kw), st.just(0.0), st.floats(0.0, 500.0)))
        weight = draw(st.one_of(st.just(1.0), st.sampled_from([0.5, 2.0, 3.0]), st.floats(0.1, 5)))
        demands.append(Demand(connector, wants, weight))
    demands = draw(st.permutations(demands))
    total = draw(st.one_of(st.just(0.0), st.floats(0.0, 1e-3), finite, st.just(INF)))
    phase_a: dict[Phase, float] = {
        p: draw(st.one_of(st.just(INF), st.just(0.0), st.floats(0.0, 200.0))) for p in ALL_PHASES
    }
    paused = draw(st.frozensets(st.sampled_from([d.connector.device for d in demands])))
    step = draw(st.sampled_from([0.1, 0.1, 0.01, 0.5, 1.0]))
    return Problem(
        list(demands), chargers, Budget(total, phase_a, VOLTS), paused, step,
        {c.device: c for c in connectors},
    )  # fmt: skip


def solve(problem: Problem) -> Allocation:
    return allocate(
        problem.demands, problem.chargers, problem.budget, problem.paused, problem.dc_step_kw
    )


def floor_kw(connector: ConnectorModel) -> float:
    if connector.kind == "dc" or connector.min_a is None:
        return 0.0
    return connector.kw_from_amps(connector.min_a, VOLTS)


def hard_kw(connector: ConnectorModel) -> float:
    if connector.kind == "ac" and connector.max_a is not None:
        return min(connector.max_kw, connector.kw_from_amps(connector.max_a, VOLTS))
    return connector.max_kw


def own_cap_kw(demand: Demand) -> float:
    """The most a connector may get on its own: the car's wants and the connector's maximum,
    but an AC car is offered at least its minimum (less would be nothing)."""
    return max(min(demand.wants_kw, hard_kw(demand.connector)), floor_kw(demand.connector))


def step_kw(connector: ConnectorModel, dc_step_kw: float) -> float:
    return dc_step_kw if connector.kind == "dc" else connector.kw_from_amps(AC_STEP_A, VOLTS)


def loads(
    problem: Problem, kw: Mapping[str, float]
) -> list[tuple[Reason, float, dict[str, float]]]:
    """Every shared constraint: its reason, cap and each connector's coefficient in it."""
    shared: list[tuple[Reason, float, dict[str, float]]] = []
    devices = [d.connector for d in problem.demands]
    if problem.budget.total_kw < INF:
        shared.append((Reason.GRID, problem.budget.total_kw, {c.device: 1.0 for c in devices}))
    for charger, cap in problem.chargers.items():
        members = {c.device: 1.0 for c in devices if c.charger == charger}
        shared.append((Reason.CHARGER, cap, members))
    for phase, amps in problem.budget.phase_a.items():
        if amps < INF:
            members = {
                c.device: 1000 / (VOLTS * len(c.phases)) for c in devices if phase in c.phases
            }
            shared.append((Reason.PHASE, amps, members))
    return shared


def check_bounds(problem: Problem, result: Allocation) -> None:
    by_device = {d.connector.device: d for d in problem.demands}
    assert set(result.limits) == set(by_device)
    for device, limit in result.limits.items():
        demand = by_device[device]
        connector = demand.connector
        kw = result.kw[device]
        assert limit.value >= 0
        assert kw >= 0
        if device in problem.paused:
            assert (limit.value, limit.reason) == (0.0, Reason.ROTATION)
        if connector.kind == "dc":
            assert limit.unit == "kW"
            assert kw == limit.value
            steps = limit.value / problem.dc_step_kw
            assert abs(steps - round(steps)) < 1e-6, "a multiple of the step"
        else:
            assert limit.unit == "A"
            assert kw == pytest.approx(connector.kw_from_amps(limit.value, VOLTS))
            assert limit.value == 0.0 or limit.value >= (connector.min_a or 0.0) - TOL
            if connector.max_a is not None:
                assert limit.value <= connector.max_a + TOL
            tenths = limit.value / AC_STEP_A
            assert abs(tenths - round(tenths)) < 1e-6 or limit.value == connector.min_a
        assert kw <= connector.max_kw + TOL
        if kw > 0:
            assert kw <= own_cap_kw(demand) + TOL
    for _reason, cap, members in loads(problem, result.kw):
        assert sum(result.kw[d] * a for d, a in members.items()) <= cap + TOL
    assert result.total_kw == pytest.approx(sum(result.kw.values()))


@settings(max_examples=400, deadline=None)
@given(problems())
def test_nothing_is_ever_exceeded(problem: Problem) -> None:
    check_bounds(problem, solve(problem))


@settings(max_examples=300, deadline=None)
@given(problems())
def test_no_power_is_left_that_a_car_could_take(problem: Problem) -> None:
    """Pareto: a car below its own cap has a shared constraint that is full, give or take the
    rounding of its members."""
    result = solve(problem)
    shared = loads(problem, result.kw)
    for demand in problem.demands:
        device = demand.connector.device
        limit = result.limits[device]
        if limit.reason is Reason.ROTATION or demand.wants_kw <= 0:
            continue
        if floor_kw(demand.connector) > min(
            hard_kw(demand.connector), problem.chargers.get(demand.connector.charger, INF)
        ):
            continue  # can never run
        own_step = step_kw(demand.connector, problem.dc_step_kw)
        if result.kw[device] >= own_cap_kw(demand) - own_step - TOL:
            continue
        slacks = []
        for _reason, cap, members in shared:
            if device not in members:
                continue
            load = sum(result.kw[d] * a for d, a in members.items())
            allowance = sum(
                step_kw(problem.connectors[d], problem.dc_step_kw) * a for d, a in members.items()
            )
            slacks.append(cap - load - allowance)
        assert slacks, f"{device} is below its cap with nothing shared to stop it"
        assert min(slacks) <= TOL, f"{device} could take more: {slacks}"


@settings(max_examples=300, deadline=None)
@given(problems())
def test_identical_cars_get_identical_shares(problem: Problem) -> None:
    result = solve(problem)
    running = [d for d in problem.demands if result.limits[d.connector.device].reason
               is not Reason.ROTATION]  # fmt: skip
    for i, first in enumerate(running):
        for second in running[i + 1 :]:
            a, b = first.connector, second.connector
            same = (a.charger, a.kind, a.max_kw, a.phases, a.min_a, a.max_a) == (
                b.charger, b.kind, b.max_kw, b.phases, b.min_a, b.max_a
            )  # fmt: skip
            if same and (first.wants_kw, first.weight) == (second.wants_kw, second.weight):
                difference = abs(result.kw[a.device] - result.kw[b.device])
                assert difference <= step_kw(a, problem.dc_step_kw) + TOL


@settings(max_examples=300, deadline=None)
@given(problems())
def test_matches_a_slow_reference(problem: Problem) -> None:
    """The allocator's pauses are first fit in priority order, and the rest of its result is
    the reference's max-min fair allocation rounded down (to one step)."""
    result = solve(problem)
    admitted = admitted_by_first_fit(problem)
    for demand in problem.demands:
        device = demand.connector.device
        if device not in admitted and device not in problem.paused:
            assert result.kw[device] == 0.0
    taking = [d for d in problem.demands if d.connector.device in admitted]
    expected = reference_fill(problem, taking)
    for demand in taking:
        device = demand.connector.device
        got, want = result.kw[device], expected[device]
        assert got <= want + 1e-5, f"{device}: {got} above the reference {want}"
        assert got >= want - step_kw(demand.connector, problem.dc_step_kw) - 1e-5, (
            f"{device}: {got} more than a step below the reference {want}"
        )


def admitted_by_first_fit(problem: Problem) -> set[str]:
    """Who takes part: not paused, wanting something, able to reach its minimum, and (for
    AC) whose minimum fits with those of the cars before it."""
    admitted: set[str] = set()
    floors: dict[str, float] = {}
    shared = loads(problem, {})
    for demand in problem.demands:
        connector = demand.connector
        device = connector.device
        if device in problem.paused or demand.wants_kw <= 0:
            continue
        floor = floor_kw(connector)
        reachable = min(hard_kw(connector), problem.chargers.get(connector.charger, INF))
        if reachable < floor - 1e-9 or hard_kw(connector) <= 0:
            continue
        trial = floors | {device: floor}
        if all(
            sum(trial.get(d, 0.0) * a for d, a in members.items()) <= max(cap, 0) + 1e-9
            for _r, cap, members in shared
        ):
            floors = trial
            admitted.add(device)
    return admitted


def reference_fill(problem: Problem, taking: Sequence[Demand]) -> dict[str, float]:
    """Max-min fair by rounds of bisection: the highest common level every constraint allows,
    then freeze whoever is at its cap or in a full constraint, and go again."""
    shared = loads(problem, {})
    frozen: dict[str, float] = {}
    by_device = {d.connector.device: d for d in taking}

    def at(device: str, level: float) -> float:
        if device in frozen:
            return frozen[device]
        demand = by_device[device]
        return min(own_cap_kw(demand), max(floor_kw(demand.connector), demand.weight * level))

    def slack(level: float) -> list[float]:
        return [
            max(cap, 0.0) - sum(at(d, level) * a for d, a in members.items() if d in by_device)
            for _r, cap, members in shared
        ]

    while len(frozen) < len(by_device):
        open_ = [d for d in by_device if d not in frozen]
        low, high = 0.0, max(own_cap_kw(by_device[d]) / by_device[d].weight for d in open_)
        if min(slack(high), default=1.0) < 0:
            for _ in range(200):
                middle = (low + high) / 2
                if min(slack(middle)) >= 0:
                    low = middle
                else:
                    high = middle
        else:
            low = high
        slacks = slack(low)
        full = [i for i, s in enumerate(slacks) if s <= 1e-7 * max(1.0, shared[i][1])]
        stop = {d for d in open_ if at(d, low) >= own_cap_kw(by_device[d]) - 1e-9}
        for i in full:
            stop.update(d for d in shared[i][2] if d in by_device and d not in frozen)
        assert stop, "every round freezes someone"
        for device in stop:
            frozen[device] = at(device, low)
    return frozen


# --- timing -------------------------------------------------------------------------------------


def _time(demands_per_cycle: list[list[Demand]], chargers: dict[str, float], b: Budget) -> str:
    samples = []
    for demands in demands_per_cycle:
        start = time.perf_counter()
        allocate(demands, chargers, b)
        samples.append(time.perf_counter() - start)
    samples.sort()
    p50 = statistics.median(samples) * 1000
    p99 = samples[int(len(samples) * 0.99)] * 1000
    return f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {samples[-1] * 1000:.2f} ms"


def test_allocate_time_for_182_connectors(capsys: pytest.CaptureFixture[str]) -> None:
    """Measured, not asserted: the target is a p99 well under 2 ms for 182 DC connectors."""
    rnd = random.Random(7)
    dc_site = [dc(f"D{i:03d}", f"C{i // 2:02d}", 200.0) for i in range(182)]
    dc_chargers = {f"C{i:02d}": 300.0 for i in range(91)}
    cycles = [[Demand(c, rnd.uniform(5, 200)) for c in dc_site] for _ in range(2000)]
    dc_budget = budget(9000, L1=12000, L2=12000, L3=12000)
    dc_line = _time(cycles, dc_chargers, dc_budget)

    mixed_site = [dc(f"D{i:03d}", f"C{i // 2:02d}", 200.0) for i in range(60)] + [
        ac(f"A{i:03d}", f"A{i:03d}", (ALL_PHASES[i % 3],) if i % 2 else ALL_PHASES, max_a=32)
        for i in range(122)
    ]
    mixed_chargers = {f"C{i:02d}": 300.0 for i in range(30)}
    cycles = [[Demand(c, rnd.uniform(1, c.max_kw)) for c in mixed_site] for _ in range(2000)]
    mixed_budget = budget(4000, L1=2500, L2=2500, L3=2500)
    mixed_line = _time(cycles, mixed_chargers, mixed_budget)
    with capsys.disabled():
        print(f"\nallocate(), 182 DC connectors on 91 chargers: {dc_line}")
        print(f"allocate(), 60 DC + 122 AC (1- and 3-phase): {mixed_line}")


# --- rotation -----------------------------------------------------------------------------------


@dataclass
class Turns:
    """What one car saw over a run: its on/off periods as (running, start, end)."""

    periods: list[tuple[bool, float, float]] = field(default_factory=list)

    def record(self, running: bool, now: float, dt: float) -> None:
        if self.periods and self.periods[-1][0] == running:
            kind, start, _ = self.periods[-1]
            self.periods[-1] = (kind, start, now + dt)
        else:
            self.periods.append((running, now, now + dt))

    def on_s(self) -> float:
        return sum(end - start for running, start, end in self.periods if running)


def drive(
    rotation: Rotation, cars: list[str], capacity: int, seconds: float, dt: float = 1.0
) -> dict[str, Turns]:
    turns = {car: Turns() for car in cars}
    now = 0.0
    while now < seconds:
        paused = rotation.choose(now, cars, capacity)
        assert paused <= set(cars)
        assert len(paused) == max(0, len(cars) - capacity)
        for car in cars:
            turns[car].record(car not in paused, now, dt)
        now += dt
    return turns


@pytest.mark.parametrize(("n", "capacity"), [(3, 2), (4, 2), (5, 3), (5, 1), (7, 4), (10, 3)])
def test_rotation_shares_an_hour_fairly_without_flapping(n: int, capacity: int) -> None:
    rotation = Rotation(min_on_s=300, min_off_s=120)
    cars = [f"car{i}" for i in range(n)]
    hour = 3600.0
    turns = drive(rotation, cars, capacity, hour)
    fair_s = hour * capacity / n
    longest_wait = n / capacity * rotation.min_on_s + rotation.min_off_s
    for car, seen in turns.items():
        assert abs(seen.on_s() - fair_s) <= rotation.min_on_s + 1, f"{car}: {seen.on_s()}"
        for index, (running, start, end) in enumerate(seen.periods):
            last = index == len(seen.periods) - 1
            if running and not last:
                assert end - start >= rotation.min_on_s, f"{car} ran only {end - start} s"
            if not running:
                assert end - start <= longest_wait, f"{car} waited {end - start} s"
                if index > 0 and not last:
                    assert end - start >= rotation.min_off_s, f"{car} paused {end - start} s"


def test_rotation_pauses_nobody_when_there_is_room() -> None:
    rotation = Rotation()
    assert rotation.choose(0.0, ["a", "b"], 2) == frozenset()
    assert rotation.choose(1.0, ["a", "b"], 5) == frozenset()


def test_rotation_resumes_at_once_when_room_comes_back() -> None:
    rotation = Rotation(min_on_s=300, min_off_s=120)
    assert rotation.choose(0.0, ["a", "b"], 2) == frozenset()
    paused = rotation.choose(400.0, ["a", "b"], 1)  # both ran 400 s: the later one pauses
    assert paused == {"b"}
    assert rotation.choose(401.0, ["a", "b"], 2) == frozenset()  # room: min_off_s does not hold


def test_rotation_pauses_a_car_that_ran_its_turn_before_one_that_just_started() -> None:
    rotation = Rotation(min_on_s=300, min_off_s=120)
    rotation.choose(0.0, ["a"], 1)
    rotation.choose(250.0, ["a", "b"], 2)
    assert rotation.choose(350.0, ["a", "b"], 1) == {"a"}  # a: 350 s on, b: 100 s


def test_rotation_holds_a_paused_car_for_its_minimum_pause() -> None:
    rotation = Rotation(min_on_s=300, min_off_s=120)
    rotation.choose(0.0, ["a", "b"], 2)
    assert rotation.choose(300.0, ["a", "b"], 1) == {"b"}
    for now in range(301, 600, 10):  # b waits, a runs: no swap before b's pause is over...
        paused = rotation.choose(float(now), ["a", "b"], 1)
        assert paused == ({"b"} if now < 420 else {"a"})  # ...then a has run its 300 s more


def test_a_new_car_takes_the_turn_of_one_that_has_run_long_enough() -> None:
    rotation = Rotation(min_on_s=300, min_off_s=120)
    rotation.choose(0.0, ["a"], 1)
    assert rotation.choose(100.0, ["a", "b"], 1) == {"b"}  # a is in its minimum turn
    assert rotation.choose(300.0, ["a", "b"], 1) == {"a"}  # b never ran: no pause to sit out


def test_rotation_forgets_cars_that_left() -> None:
    rotation = Rotation()
    rotation.choose(0.0, ["a", "b"], 1)
    assert rotation.choose(10.0, ["b"], 1) == frozenset()
    assert rotation.choose(20.0, ["a", "b"], 1) == {"a"}  # back as a new car: b keeps its turn


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.frozensets(st.sampled_from("abcdef")), st.integers(-1, 7), st.floats(0, 400)),
        min_size=1,
        max_size=40,
    )
)
def test_rotation_always_pauses_exactly_the_shortage(
    steps: list[tuple[frozenset[str], int, float]],
) -> None:
    rotation = Rotation()
    now = 0.0
    for present, capacity, dt in steps:
        now += dt
        waiting = sorted(present)
        paused = rotation.choose(now, waiting, capacity)
        assert paused <= present
        assert len(paused) == max(0, len(waiting) - max(capacity, 0))
