"""Config checks for `[[chargers]]`: every connector is a charger device that can be limited.

A connector the controller cannot limit (no `power_limit` on a DC charger, no `current_limit` on
an AC one) would be counted in the budget but never obey it, so it stops start-up instead.
"""

from __future__ import annotations

from collections import Counter

from agent.config import AgentConfig, DeviceKind
from agent.config_problem import ConfigProblem
from agent.drivers.profile import ProfileError, load_profile
from agent.drivers.template import TemplateError, bind_template

SETPOINT_FOR_KIND = {"dc": "power_limit", "ac": "current_limit"}


def check_chargers(config: AgentConfig) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    for charger_id, count in Counter(c.id for c in config.chargers).items():
        if count > 1:
            problems.append(
                ConfigProblem(f"chargers[{charger_id}].id", charger_id, f"used {count} times")
            )
    devices = {d.id: d for d in config.devices}
    claimed: dict[str, str] = {}
    for charger in config.chargers:
        ids = Counter(c.id for c in charger.connectors)
        for connector in charger.connectors:
            where = f"chargers[{charger.id}].connectors[{connector.id}]"
            if ids[connector.id] > 1:
                problems.append(ConfigProblem(f"{where}.id", connector.id, "used twice"))
                ids[connector.id] = 1  # say it once
            device = devices.get(connector.device)
            if device is None:
                problems.append(
                    ConfigProblem(f"{where}.device", connector.device, "no such device")
                )
                continue
            if device.kind is not DeviceKind.CHARGER:
                problems.append(
                    ConfigProblem(
                        f"{where}.device",
                        connector.device,
                        f"is a {device.kind.value}, not a charger",
                    )
                )
                continue
            other = claimed.setdefault(connector.device, where)
            if other != where:
                problems.append(
                    ConfigProblem(f"{where}.device", connector.device, f"already used by {other}")
                )
            needed = SETPOINT_FOR_KIND[charger.kind]
            if not _has_setpoint(config, connector.device, needed):
                problems.append(
                    ConfigProblem(
                        f"{where}.device",
                        connector.device,
                        f"its profile {device.profile} has no {needed} setpoint "
                        f"to limit a {charger.kind.upper()} connector",
                    )
                )
    return problems


def _has_setpoint(config: AgentConfig, device_id: str, setpoint: str) -> bool:
    device = next(d for d in config.devices if d.id == device_id)
    try:
        profile = load_profile(device.profile, config.drivers.profiles_dir)
        if profile.template:
            profile = bind_template(profile, device.registers, f"devices[{device.id}]")
    except (ProfileError, TemplateError):
        return True  # the profile's own problem is reported by the device checks
    return any(s.name == setpoint for s in profile.setpoints)
