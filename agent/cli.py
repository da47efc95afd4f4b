"""`edge-agent`: run the daemon, check a site file, or run the demo on simulated devices."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from agent import __version__
from agent.config import DEFAULT_CONFIG_PATH, AgentConfig, SerialBus
from agent.config_loader import ConfigError, load_config
from agent.logs import configure_logging

log = logging.getLogger("agent")

EXIT_OK = 0
EXIT_BAD_CONFIG = 1  # check-config: the file has problems
# run: sysexits' EX_CONFIG, so the unit can tell a bad file (restarting will not help) from
# a crash (restarting will) with RestartPreventExitStatus=78.
EXIT_RUN_BAD_CONFIG = 78
EXIT_START_FAILED = 1  # e.g. the metrics port is taken: worth a restart by systemd


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-agent",
        description="Site gateway agent: reads chargers, PV, battery and meters; "
        "keeps the grid connection under its limit; exports MQTT and Prometheus.",
    )
    parser.add_argument("--version", action="version", version=f"edge-agent {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the agent (what the systemd unit starts)")
    run.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG_PATH, help=f"default {DEFAULT_CONFIG_PATH}"
    )

    check = commands.add_parser(
        "check-config", help="validate a site file and print a summary of the site"
    )
    check.add_argument("file", nargs="?", type=Path, help=f"default {DEFAULT_CONFIG_PATH}")
    check.add_argument("--config", type=Path, dest="config_option", help="same as FILE")

    demo = commands.add_parser(
        "demo", help="run the agent against simulated devices on this machine (no hardware)"
    )
    demo.add_argument(
        "--seconds", type=float, default=None, help="stop after this long (default: until Ctrl-C)"
    )
    _add_tool_commands(commands)
    from hil.simulate import add_arguments as simulate_arguments  # light: no sockets

    simulate = commands.add_parser(
        "simulate", help="run a site scenario against the controller (fast or hardware-in-the-loop)"
    )
    simulate_arguments(simulate)
    return parser


def _add_tool_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The technician tools; exit codes: 0 answered, 1 bad config, 2 unknown bus/device,
    3 port busy/missing or gateway unreachable, 4 nothing answered."""
    scan = commands.add_parser(
        "scan", help="list the unit ids that answer on a bus and what they are"
    )
    scan.add_argument("--bus", required=True, help="bus name from the site file")
    scan.add_argument(
        "--units", type=_unit_ids, default="1-247", help="e.g. 1-247 (default) or 1,3,10-12"
    )
    scan.add_argument(
        "--timeout", type=_seconds, default=None, help="per unit (default: the bus's timeout_s)"
    )
    scan.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG_PATH, help=f"default {DEFAULT_CONFIG_PATH}"
    )
    read = commands.add_parser(
        "read", help="print every value of a configured device, once or with --watch"
    )
    read.add_argument("device", help="device id from the site file")
    read.add_argument("--watch", action="store_true", help="poll every poll interval until Ctrl-C")
    read.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG_PATH, help=f"default {DEFAULT_CONFIG_PATH}"
    )


def _unit_ids(text: str) -> tuple[int, ...]:
    from agent.tools.scan import parse_units  # only `scan` needs pymodbus at parse time

    try:
        return parse_units(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 30:
        raise argparse.ArgumentTypeError(f"{text} s: the timeout must be above 0 and up to 30 s")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "check-config":
        path = args.file or args.config_option or DEFAULT_CONFIG_PATH
        return check_config(path)
    if args.command == "run":
        return run(args.config)
    if args.command == "demo":
        configure_logging("info")
        from hil.demo import main as demo_main  # the simulator is only needed for the demo

        return demo_main(args.seconds)
    if args.command == "simulate":
        configure_logging("warning")
        from hil.simulate import main as simulate_main

        return simulate_main(args)
    if args.command in ("scan", "read"):
        return _run_tool(args)
    raise AssertionError(args.command)


def _run_tool(args: argparse.Namespace) -> int:
    configure_logging("error")  # the tools print their own lines; no pymodbus chatter
    if args.command == "scan":
        from agent.tools.scan import scan_command

        return scan_command(args.config, args.bus, args.units, args.timeout)
    from agent.tools.read import read_command

    return read_command(args.config, args.device, args.watch)


def check_config(path: Path) -> int:
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(exc.report(), file=sys.stderr)
        return EXIT_BAD_CONFIG
    print(summarise(config, path))
    return EXIT_OK


def run(path: Path) -> int:
    configure_logging("info")
    try:
        config = load_config(path)
    except ConfigError as exc:
        for line in exc.report().splitlines():
            log.error("%s", line.strip())
        log.error("not starting: fix the configuration and check it with 'edge-agent check-config'")
        return EXIT_RUN_BAD_CONFIG
    configure_logging(config.logging.level.value, config.logging.timestamps)
    from agent.app import Agent, StartupError  # after logging is set up

    try:
        asyncio.run(Agent(config).run())
    except StartupError as exc:
        log.error("%s", exc)
        return EXIT_START_FAILED
    return EXIT_OK


def summarise(config: AgentConfig, path: Path) -> str:
    """A one-screen picture of the site as the agent understands it."""
    site = config.site
    phase = f"{site.phase_current_limit_a:g} A per phase" if site.phase_current_limit_a else "none"
    lines = [
        f"{path}: OK",
        f"site {site.name}: import limit {site.grid_import_limit_kw:g} kW, "
        f"export limit {site.grid_export_limit_kw:g} kW, phase limit {phase}, "
        f"{site.nominal_voltage_v:g} V",
        f"grid meter: {site.grid_meter or 'none (the controller will run on fail-safe caps)'}",
    ]
    for bus in config.buses:
        if isinstance(bus, SerialBus):
            where = (
                f"serial {bus.port} {bus.baudrate} {bus.bytesize}{bus.parity.value}{bus.stopbits}"
                + ("" if bus.protocol == "modbus" else f", {bus.protocol}")
            )
        else:
            where = f"tcp {bus.host}:{bus.port}"
        devices = config.devices_on(bus.name)
        lines.append(
            f"bus {bus.name} ({where}, timeout {bus.timeout_s:g} s): {len(devices)} device(s)"
        )
        for device in devices:
            lines.append(
                f"  {device.id:<20} {device.kind.value:<9} {device.profile:<20} "
                f"unit {device.unit_id:<3} every {device.poll_interval_s:g} s"
            )
    control = config.control
    lines.append(
        f"control: cycle {control.cycle_s:g} s, fail-safe after "
        f"{control.failsafe.meter_max_age_s:g} s without a grid reading"
    )
    tariff = config.tariff
    if tariff.periods:
        bands = ", ".join(f"{p.name} {p.start}-{p.end} {p.price:g}" for p in tariff.periods)
        lines.append(f"tariff ({tariff.currency}/kWh, {tariff.timezone}): {bands}")
    else:
        lines.append("tariff: none")
    prom = config.prometheus
    metrics = f"http://{prom.bind}:{prom.port}/metrics" if prom.enabled else "off"
    mqtt = f"{config.mqtt.host}:{config.mqtt.port}" if config.mqtt.enabled else "off"
    ocpp = f"ws://{config.ocpp.bind}:{config.ocpp.port}" if config.ocpp.enabled else "off"
    lines.append(f"metrics: {metrics}; mqtt: {mqtt}; ocpp: {ocpp}")
    return "\n".join(lines)
