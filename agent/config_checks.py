"""Checks that span several config sections, run once every key has the right type.

Each problem names the key path the way a technician reads the file: list entries by their
id or name (`devices[meter-main].bus`), not by position.
"""

from __future__ import annotations

from collections import Counter
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent.charger_checks import check_chargers
from agent.config import AgentConfig, Device, DeviceKind, SerialBus, TariffPeriod
from agent.config_problem import ConfigProblem
from agent.drivers.profile import DeviceProfile, ProfileError, available_profiles, load_profile
from agent.drivers.template import TemplateError, bind_template

MINUTES_PER_DAY = 24 * 60


def check_site(config: AgentConfig) -> list[ConfigProblem]:
    return [
        *_unique_names(config),
        *_shared_endpoints(config),
        *_not_yet_available(config),
        *_device_references(config),
        *_unit_ids(config),
        *_site_device(config, "grid_meter", config.site.grid_meter, DeviceKind.METER),
        *_site_device(config, "limit_signal", config.site.limit_signal, DeviceKind.SIGNAL),
        *_tariff(config),
        *check_chargers(config),
    ]


def _unique_names(config: AgentConfig) -> list[ConfigProblem]:
    problems = []
    for section, names in (
        ("devices", [d.id for d in config.devices]),
        ("buses", [b.name for b in config.buses]),
    ):
        for name, count in Counter(names).items():
            if count > 1:
                key = "id" if section == "devices" else "name"
                problems.append(
                    ConfigProblem(
                        f"{section}[{name}].{key}", name, f"used {count} times; must be unique"
                    )
                )
    return problems


def _shared_endpoints(config: AgentConfig) -> list[ConfigProblem]:
    """Two buses on one port or gateway would interleave requests on one line."""
    problems = []
    seen: dict[str, str] = {}
    for bus in config.buses:
        endpoint = bus.port if isinstance(bus, SerialBus) else f"{bus.host}:{bus.port}"
        other = seen.setdefault(endpoint, bus.name)
        if other != bus.name:
            key = "port" if isinstance(bus, SerialBus) else "host"
            problems.append(
                ConfigProblem(
                    f"buses[{bus.name}].{key}",
                    endpoint,
                    f"bus {other} already uses it; put both buses' devices on one bus",
                )
            )
    return problems


def _not_yet_available(config: AgentConfig) -> list[ConfigProblem]:
    """Refuse switches for parts this version does not have, rather than ignore them."""
    problems = []
    for section, enabled in (("mqtt", config.mqtt.enabled), ("ocpp", config.ocpp.enabled)):
        if enabled:
            problems.append(
                ConfigProblem(
                    f"{section}.enabled",
                    True,
                    f"{section.upper()} is not available in this version; set it to false",
                )
            )
    return problems


def _device_references(config: AgentConfig) -> list[ConfigProblem]:
    problems = []
    bus_names = {b.name for b in config.buses}
    local = config.drivers.profiles_dir
    profiles = available_profiles(local)
    for device in config.devices:
        if device.bus not in bus_names:
            known = ", ".join(sorted(bus_names)) or "none defined"
            problems.append(
                ConfigProblem(
                    f"devices[{device.id}].bus", device.bus, f"no such bus; buses: {known}"
                )
            )
        if device.profile not in profiles:
            problems.append(
                ConfigProblem(
                    f"devices[{device.id}].profile",
                    device.profile,
                    f"no such profile; known: {', '.join(profiles)}",
                )
            )
            continue
        try:
            profile = load_profile(device.profile, local)
        except ProfileError as exc:
            problems.append(
                ConfigProblem(f"devices[{device.id}].profile", device.profile, str(exc))
            )
            continue
        if profile.kind != device.kind.value:
            problems.append(
                ConfigProblem(
                    f"devices[{device.id}].kind",
                    device.kind.value,
                    f"profile {profile.name} is for a {profile.kind}",
                )
            )
        problems.extend(_profile_fits(config, device, profile))
    return problems


def _profile_fits(
    config: AgentConfig, device: Device, profile: DeviceProfile
) -> list[ConfigProblem]:
    """The device's bus speaks the profile's protocol, and a template is fully mapped."""
    where = f"devices[{device.id}]"
    problems = []
    bus = next((b for b in config.buses if b.name == device.bus), None)
    bus_protocol = bus.protocol if isinstance(bus, SerialBus) else "modbus"
    if bus is not None and bus_protocol != profile.protocol:
        problems.append(
            ConfigProblem(
                f"{where}.bus",
                device.bus,
                f"bus {bus.name} speaks {bus_protocol}, profile {profile.name} {profile.protocol}",
            )
        )
    if isinstance(bus, SerialBus) and not 1 <= device.unit_id <= 247:
        problems.append(
            ConfigProblem(f"{where}.unit_id", device.unit_id, "on a serial line: 1-247")
        )
    if profile.template:
        try:
            bind_template(profile, device.registers, where)
        except TemplateError as exc:
            problems.append(ConfigProblem(exc.key, "", exc.reason))
    elif device.registers:
        problems.append(
            ConfigProblem(f"{where}.registers", "...", f"profile {profile.name} is not a template")
        )
    return problems


def _unit_ids(config: AgentConfig) -> list[ConfigProblem]:
    """Two devices answering to one unit id on one line would garble each other's replies."""
    problems = []
    for bus in config.buses:
        seen: dict[int, str] = {}
        for device in config.devices_on(bus.name):
            other = seen.setdefault(device.unit_id, device.id)
            if other != device.id:
                line = "serial line" if isinstance(bus, SerialBus) else "gateway"
                problems.append(
                    ConfigProblem(
                        f"devices[{device.id}].unit_id",
                        device.unit_id,
                        f"{other} already uses unit id {device.unit_id} on {line} {bus.name}",
                    )
                )
    return problems


def _site_device(
    config: AgentConfig, key: str, name: str | None, kind: DeviceKind
) -> list[ConfigProblem]:
    """A `[site]` key that names a device: it must exist and be of `kind`."""
    if name is None:
        return []
    device = next((d for d in config.devices if d.id == name), None)
    if device is None:
        return [ConfigProblem(f"site.{key}", name, "no device with this id")]
    if device.kind is not kind:
        message = f"is a {device.kind.value}, not a {kind.value}"
        return [ConfigProblem(f"site.{key}", name, message)]
    return []


def _tariff(config: AgentConfig) -> list[ConfigProblem]:
    problems = []
    try:
        ZoneInfo(config.tariff.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(
            ConfigProblem("tariff.timezone", config.tariff.timezone, "not an IANA time zone")
        )
    periods = config.tariff.periods
    if not periods:
        return problems
    owner: list[TariffPeriod | None] = [None] * MINUTES_PER_DAY
    for period in periods:
        if period.start_minute == period.end_minute:
            problems.append(
                ConfigProblem(
                    f"tariff.periods[{period.name}]", period.start, "starts where it ends"
                )
            )
        clash: TariffPeriod | None = None
        for minute in _minutes(period):
            holder = owner[minute]
            if holder is None:
                owner[minute] = period
            elif clash is None:
                clash = holder
                problems.append(
                    ConfigProblem(
                        f"tariff.periods[{period.name}]",
                        f"{period.start}-{period.end}",
                        f"overlaps {holder.name} ({holder.start}-{holder.end}) at {_hhmm(minute)}",
                    )
                )
    gaps = _gaps(owner)
    if gaps:
        problems.append(
            ConfigProblem(
                "tariff.periods",
                f"{len(periods)} periods",
                "must cover the whole day; uncovered: " + ", ".join(gaps),
            )
        )
    return problems


def _minutes(period: TariffPeriod) -> range | list[int]:
    start, end = period.start_minute, period.end_minute
    if start <= end:
        return range(start, end)
    return [*range(start, MINUTES_PER_DAY), *range(0, end)]  # wraps past midnight


def _gaps(owner: list[TariffPeriod | None]) -> list[str]:
    gaps, start = [], None
    for minute in range(MINUTES_PER_DAY + 1):
        free = minute < MINUTES_PER_DAY and owner[minute] is None
        if free and start is None:
            start = minute
        elif not free and start is not None:
            gaps.append(f"{_hhmm(start)}-{_hhmm(minute)}")
            start = None
    return gaps


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"
