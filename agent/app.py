"""The daemon: builds the parts from the config, runs them under the supervisor, talks to systemd.

Parts: one bus worker per bus, the control cycle, and the systemd status/watchdog part. The
metrics endpoint runs on prometheus_client's thread and only reads snapshots. SIGTERM and
SIGINT set the stop event; every part is cancelled and the process exits 0 within seconds.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable

from agent.config import AgentConfig, SerialBus, TcpBus
from agent.control.loop import CycleLoop
from agent.control.wiring import build_controller
from agent.drivers.bus_worker import BusWorker, PolledDevice
from agent.drivers.factory import build_device
from agent.state import SiteState
from agent.supervisor import Part, Supervisor
from agent.systemd import SystemdNotifier
from agent.telemetry.control_metrics import control_metrics
from agent.telemetry.prometheus import MetricsServer, SiteCollector

log = logging.getLogger(__name__)

STATUS_INTERVAL_S = 5.0


class StartupError(RuntimeError):
    """The agent cannot start serving (e.g. the metrics port is taken); says which and why."""


class Agent:
    """One site's agent, assembled from its config; `run()` until stopped."""

    def __init__(
        self,
        config: AgentConfig,
        clock: Callable[[], float] = time.monotonic,
        notifier: SystemdNotifier | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.notifier = notifier or SystemdNotifier()
        self.state = SiteState(clock)
        self.workers = [BusWorker(bus, self._devices_on(bus), self.state) for bus in config.buses]
        self.controller = build_controller(config, self.workers)
        on_cycle = None if self.controller is None else self.controller.on_cycle
        self.loop = CycleLoop(config, self.state, on_cycle=on_cycle)
        self.metrics: MetricsServer | None = None
        if config.prometheus.enabled:
            collector = SiteCollector(
                config,
                self.state.snapshot,
                restarts=lambda: self.supervisor.restarts,
                control=lambda site: control_metrics(site, self.loop, self.controller),
            )
            self.metrics = MetricsServer(config.prometheus.bind, config.prometheus.port, collector)
        self.metrics_port: int | None = None
        self.stop_event = asyncio.Event()
        self.serving = asyncio.Event()  # set once parts run and systemd has been told READY
        parts = [Part(f"bus:{worker.bus.name}", worker.run) for worker in self.workers]
        parts.append(Part("control", self.loop.run))
        parts.append(Part("systemd", self._report_health))
        self.supervisor = Supervisor(parts, clock)

    def _devices_on(self, bus: SerialBus | TcpBus) -> list[PolledDevice]:
        local = self.config.drivers.profiles_dir
        devices = self.config.devices_on(bus.name)
        return [build_device(device, bus, self.clock, local) for device in devices]

    def stop(self) -> None:
        self.stop_event.set()

    async def run(self) -> None:
        """Serve until `stop()` or a termination signal."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            if self.metrics is not None:
                self.metrics_port = self._start_metrics(self.metrics)
            supervised = asyncio.create_task(self.supervisor.run_until(self.stop_event))
            await asyncio.sleep(0)  # let the parts start before announcing readiness
            self.loop.run_cycle()
            self.notifier.ready(self.status_line())
            self.serving.set()
            log.info(
                "running site %s: %d device(s) on %d bus(es)",
                self.config.site.name,
                len(self.config.devices),
                len(self.config.buses),
            )
            await supervised
        finally:
            self.notifier.stopping()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            if self.metrics is not None:
                self.metrics.stop()
            log.info("stopped")

    def _start_metrics(self, metrics: MetricsServer) -> int:
        try:
            return metrics.start()
        except OSError as exc:
            prom = self.config.prometheus
            raise StartupError(
                f"cannot serve metrics on {prom.bind}:{prom.port}: {exc.strerror or exc} "
                "(another edge-agent running? change prometheus.port)"
            ) from exc

    def _on_signal(self, sig: signal.Signals) -> None:
        log.info("%s received, stopping", sig.name)
        self.stop_event.set()

    def status_line(self) -> str:
        return self.loop.summary.status_line(self.loop.last_duration_s * 1000)

    async def _report_health(self) -> None:
        """STATUS= every few seconds; WATCHDOG=1 at half the watchdog period, while cycling."""
        watchdog_s = self.notifier.watchdog_s
        interval = min(STATUS_INTERVAL_S, watchdog_s / 2) if watchdog_s else STATUS_INTERVAL_S
        stalled = False
        while True:
            await asyncio.sleep(interval)
            progressing = self.loop.progressing(self.clock())
            if progressing:
                if watchdog_s:
                    self.notifier.watchdog()
                self.notifier.status(self.status_line())
                if stalled:
                    log.info("control cycle progressing again")
                stalled = False
            elif not stalled:
                log.error("control cycle stalled: not feeding the systemd watchdog")
                self.notifier.status("control cycle stalled")
                stalled = True
