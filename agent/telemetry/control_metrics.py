"""Metrics of the control path: cycle timing, the plan, its budget and reasons, the fail-safe.

Read from the loop and the controller on the scrape thread: they only ever swap whole immutable
objects (the Plan) or bump numbers, so a scrape sees one consistent plan.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from agent.control.loop import CYCLE_BUCKETS, CycleLoop
from agent.control.wiring import Controller


def control_metrics(site: str, loop: CycleLoop, controller: Controller | None) -> Iterator[Metric]:
    duration = HistogramMetricFamily(
        "edge_agent_control_cycle_duration_seconds",
        "Time one control cycle took: snapshot, strategy, actuator",
        labels=["site"],
    )
    buckets = [
        (str(b), float(n)) for b, n in zip(CYCLE_BUCKETS, loop.duration_buckets, strict=True)
    ]
    buckets.append(("+Inf", float(loop.cycles)))
    duration.add_metric([site], buckets, loop.duration_sum_s)
    yield duration
    overruns = CounterMetricFamily(
        "edge_agent_control_overruns", "Cycles that ended after the next should have begun",
        labels=["site"],
    )  # fmt: skip
    overruns.add_metric([site], loop.overruns)
    yield overruns
    if controller is None or controller.last_plan is None:
        return
    plan = controller.last_plan
    budget = GaugeMetricFamily(
        "edge_agent_charging_budget_watts", "What the strategy allowed all chargers this cycle",
        labels=["site", "strategy"],
    )  # fmt: skip
    budget.add_metric([site, controller.strategy.name], plan.budget_kw * 1000)
    yield budget
    if plan.import_limit_kw is not None:
        in_force = GaugeMetricFamily(
            "edge_agent_import_limit_in_force_watts",
            "The grid import limit in force: the site's, or a signalled curtailment",
            labels=["site"],
        )
        in_force.add_metric([site], plan.import_limit_kw * 1000)
        yield in_force
    watts = GaugeMetricFamily(
        "edge_agent_connector_limit_watts", "The limit set for a DC connector, and why",
        labels=["site", "device", "reason"],
    )  # fmt: skip
    amps = GaugeMetricFamily(
        "edge_agent_connector_limit_amperes", "The per-phase limit set for an AC connector",
        labels=["site", "device", "reason"],
    )  # fmt: skip
    for device, limit in sorted(plan.connectors.items()):
        if limit.unit == "kW":
            watts.add_metric([site, device, limit.reason.value], limit.value * 1000)
        else:
            amps.add_metric([site, device, limit.reason.value], limit.value)
    yield watts
    yield amps
    if plan.battery_kw is not None:
        battery = GaugeMetricFamily(
            "edge_agent_battery_setpoint_watts", "Battery command, + = discharge", labels=["site"]
        )
        battery.add_metric([site], plan.battery_kw * 1000)
        yield battery
    failsafe = getattr(controller.strategy, "failsafe", None)
    if failsafe is not None:
        active = GaugeMetricFamily(
            "edge_agent_failsafe_active", "1 while the grid is unknown", labels=["site"]
        )
        active.add_metric([site], 1 if failsafe.active else 0)
        yield active
        entries = CounterMetricFamily(
            "edge_agent_failsafe_entries", "Times the controller fell back to the safe budget",
            labels=["site"],
        )  # fmt: skip
        entries.add_metric([site], failsafe.entries)
        yield entries
