"""Prometheus metrics, built from a fresh snapshot on every scrape.

A custom collector rather than module-level gauges: a device that is removed or stops
answering leaves no frozen series behind, and a stale value is left out instead of being
exported as if it were current. Names follow Prometheus base units (watts, volts, joules).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from agent import __version__
from agent.config import AgentConfig, DeviceKind
from agent.quantities import PHASES
from agent.state import POLL_DURATION_BUCKETS, Quality, Snapshot
from agent.telemetry.device_metrics import device_extras, device_quantities

log = logging.getLogger(__name__)

JOULES_PER_WH = 3600.0


@dataclass(frozen=True, slots=True)
class _MeterMetric:
    suffix: str  # after edge_agent_grid_ / edge_agent_meter_
    help: str
    counter: bool = False
    factor: float = 1.0


def _meter_metrics() -> dict[str, tuple[_MeterMetric, str | None]]:
    """quantity -> (metric, phase label or None)."""
    table: dict[str, tuple[_MeterMetric, str | None]] = {
        "power": (_MeterMetric("power_watts", "Active power, positive = import"), None),
        "frequency": (_MeterMetric("frequency_hertz", "Grid frequency"), None),
        "power_factor": (_MeterMetric("power_factor", "Total power factor"), None),
        "energy_import": (
            _MeterMetric("import_energy_joules", "Energy imported", True, JOULES_PER_WH),
            None,
        ),
        "energy_export": (
            _MeterMetric("export_energy_joules", "Energy exported", True, JOULES_PER_WH),
            None,
        ),
    }
    per_phase = {
        "power": _MeterMetric("phase_power_watts", "Active power per phase, positive = import"),
        "voltage": _MeterMetric("phase_voltage_volts", "Line-to-neutral voltage per phase"),
        "current": _MeterMetric("phase_current_amperes", "Current per phase"),
    }
    for stem, metric in per_phase.items():
        for phase in PHASES:
            table[f"{stem}_{phase}"] = (metric, phase.upper())
    return table


METER_METRICS = _meter_metrics()


class SiteCollector(Collector):
    """Exports one snapshot of the site per scrape."""

    def __init__(
        self,
        config: AgentConfig,
        snapshot: Callable[[], Snapshot],
        restarts: Callable[[], Mapping[str, int]] = dict,
        control: Callable[[str], Iterator[Metric]] | None = None,
    ) -> None:
        self._config = config
        self._snapshot = snapshot
        self._restarts = restarts  # per supervised part: how often it was restarted
        self._control = control  # the control path's families, given the site name

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot()
        site = self._config.site.name
        info = GaugeMetricFamily(
            "edge_agent_info", "Agent version and site", labels=["site", "version"]
        )
        info.add_metric([site, __version__], 1)
        yield info
        limit = GaugeMetricFamily(
            "edge_agent_grid_import_limit_watts", "Configured grid import limit", labels=["site"]
        )
        limit.add_metric([site], self._config.site.grid_import_limit_kw * 1000)
        yield limit
        yield from self._meters(snap, site)
        yield from device_quantities(self._config, snap)
        yield from self._device_health(snap, site)
        yield from device_extras(self._config, snap)
        restarts = CounterMetricFamily(
            "edge_agent_part_restarts",
            "Times a part of the agent (a bus worker, the control loop) failed and was restarted",
            labels=["site", "part"],
        )
        for part, count in sorted(self._restarts().items()):
            restarts.add_metric([site, part], count)
        yield restarts
        if self._control is not None:
            yield from self._control(site)

    def _meters(self, snap: Snapshot, site: str) -> Iterator[Metric]:
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
        grid_meter = self._config.site.grid_meter
        for device in self._config.devices:
            if device.kind is not DeviceKind.METER:
                continue
            is_grid = device.id == grid_meter
            prefix = "edge_agent_grid_" if is_grid else "edge_agent_meter_"
            for quantity, value in sorted(snap.device_values(device.id).items()):
                if value.quality is not Quality.GOOD or quantity not in METER_METRICS:
                    continue
                metric, phase = METER_METRICS[quantity]
                name = prefix + metric.suffix
                labels = ["site"] if is_grid else ["site", "device"]
                label_values = [site] if is_grid else [site, device.id]
                if phase is not None:
                    labels.append("phase")
                    label_values.append(phase)
                family = families.get(name)
                if family is None:
                    kind = CounterMetricFamily if metric.counter else GaugeMetricFamily
                    family = kind(name, metric.help, labels=labels)
                    families[name] = family
                family.add_metric(label_values, value.reading.value * metric.factor)
        yield from families.values()

    def _device_health(self, snap: Snapshot, site: str) -> Iterator[Metric]:
        labels = ["site", "device"]
        up = GaugeMetricFamily(
            "edge_agent_device_up", "1 if the device answered its last poll", labels=labels
        )
        age = GaugeMetricFamily(
            "edge_agent_device_last_success_age_seconds",
            "Seconds since the device last answered",
            labels=labels,
        )
        polls = CounterMetricFamily("edge_agent_device_polls", "Polls of the device", labels=labels)
        requests = CounterMetricFamily(
            "edge_agent_modbus_requests", "Modbus requests sent to the device", labels=labels
        )
        errors = CounterMetricFamily(
            "edge_agent_device_read_errors",
            "Failed polls by first error: timeout, connection, exception, garbage, decode, ...",
            labels=[*labels, "reason"],
        )
        duration = HistogramMetricFamily(
            "edge_agent_device_poll_duration_seconds",
            "Time to poll the device once, all its requests together",
            labels=labels,
        )
        for device, health in sorted(snap.health.items()):
            key = [site, device]
            up.add_metric(key, 1 if health.up else 0)
            if health.last_success is not None:
                age.add_metric(key, max(snap.taken_at - health.last_success, 0.0))
            polls.add_metric(key, health.polls_total)
            requests.add_metric(key, health.requests_total)
            for reason, count in sorted(health.errors_total.items()):
                errors.add_metric([*key, reason], count)
            buckets = [
                (str(bound), float(count))
                for bound, count in zip(POLL_DURATION_BUCKETS, health.poll_buckets, strict=True)
            ]
            buckets.append(("+Inf", float(health.poll_count)))
            duration.add_metric(key, buckets, health.poll_sum_s)
        yield from (up, age, polls, requests, errors, duration)


class MetricsServer:
    """The /metrics HTTP endpoint, on prometheus_client's own server thread."""

    def __init__(self, bind: str, port: int, collector: Collector) -> None:
        self._bind = bind
        self._port = port
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(collector)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        """Bind and serve; returns the port (useful with port 0)."""
        self._server, self._thread = start_http_server(
            self._port, addr=self._bind, registry=self._registry
        )
        port = int(self._server.server_port)
        log.info("metrics at http://%s:%d/metrics", self._bind, port)
        return port

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
