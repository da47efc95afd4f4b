"""One Pylontech pack (or a stack's master) at an address on a `PylontechLink`.

Polled like a Modbus device, in the same bus worker: a poll never raises for a device problem
but returns a `PollResult` whose error class matches ModbusDevice's (timeout, connection,
garbage, exception, short_reply, decode), so back-off, counters and staleness work unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from agent.config import Device
from agent.drivers.modbus_device import PollResult
from agent.drivers.pylontech import Command, FrameError, decode_response, encode_request
from agent.drivers.pylontech_info import (
    AlarmInfo,
    AnalogValues,
    ChargeManagement,
    parse_alarm_info,
    parse_analog_values,
    parse_charge_management,
)
from agent.state import Reading

log = logging.getLogger(__name__)

ALARM_EVERY = 10  # 0x44 on the first poll and every tenth after it
STALE_SLACK_S = 1.0  # on top of three missed reads, for scheduling jitter
LFP_CELL_NOMINAL_V = 3.2  # Pylontech packs are LiFePO4: 15 cells make the 48 V nominal


class FrameExchanger(Protocol):
    """The part of `PylontechLink` a pack needs; lets tests pass any line."""

    async def exchange(self, frame: bytes, timeout_s: float) -> bytes: ...


Values = dict[str, float]


def analog_quantities(values: AnalogValues) -> Values:
    out: Values = {
        "battery_voltage": values.voltage_v,
        "battery_current": values.current_a,
        "battery_power": values.voltage_v * values.current_a,
        "cell_voltage_min": min(values.cell_voltages_mv) / 1000,
        "cell_voltage_max": max(values.cell_voltages_mv) / 1000,
    }
    soc = values.soc_pct
    if soc is not None:
        out["soc"] = soc
    if values.temperatures_c:
        out["temperature"] = values.temperatures_c[0]  # the BMS board
    cells = values.temperatures_c[1:]
    if cells:
        out["cell_temperature_min"] = min(cells)
        out["cell_temperature_max"] = max(cells)
    if values.total_ah > 0:
        nominal_v = len(values.cell_voltages_mv) * LFP_CELL_NOMINAL_V
        out["capacity"] = values.total_ah * nominal_v
    return out


def management_quantities(values: ChargeManagement) -> Values:
    # Packs send the discharge limit negative; the quantity is a magnitude like the charge one.
    return {
        "charge_current_limit": values.charge_current_limit_a,
        "discharge_current_limit": abs(values.discharge_current_limit_a),
    }


def alarm_quantities(values: AlarmInfo) -> Values:
    return {"alarms": float(int(values.alarms))}


@dataclass(frozen=True, slots=True)
class _Step:
    command: Command
    quantities: tuple[str, ...]  # what it can yield: all failed when the request fails
    convert: Callable[[bytes], Values]


ANALOG_STEP = _Step(
    Command.GET_ANALOG_VALUES,
    (
        "soc",
        "battery_voltage",
        "battery_current",
        "battery_power",
        "cell_voltage_min",
        "cell_voltage_max",
        "cell_temperature_min",
        "cell_temperature_max",
        "temperature",
        "capacity",
    ),
    lambda info: analog_quantities(parse_analog_values(info)),
)
MANAGEMENT_STEP = _Step(
    Command.GET_CHARGE_MANAGEMENT,
    ("charge_current_limit", "discharge_current_limit"),
    lambda info: management_quantities(parse_charge_management(info)),
)
ALARM_STEP = _Step(
    Command.GET_ALARM_INFO,
    ("alarms",),
    lambda info: alarm_quantities(parse_alarm_info(info)),
)
_STOPPING_ERRORS = frozenset({"timeout", "connection"})


class PylontechBms:
    """Reads one pack: analog values and charge limits every poll, alarms every tenth."""

    def __init__(
        self,
        config: Device,
        monotonic: Callable[[], float],
        wall_clock: Callable[[], datetime],
        *,
        timeout_s: float = 1.0,
    ) -> None:
        self.config = config
        self.address = config.unit_id  # ADR; V3.3 numbers the first pack of a group 2
        self.timeout_s = timeout_s
        self._monotonic = monotonic
        self._wall_clock = wall_clock
        self._polls = 0

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def quantities(self) -> tuple[str, ...]:
        """Everything a poll can produce; the worker marks these failed when the line is down."""
        return ANALOG_STEP.quantities + MANAGEMENT_STEP.quantities + ALARM_STEP.quantities

    def all_quantities(self) -> list[str]:
        return list(self.quantities)

    async def probe(self, link: FrameExchanger) -> PollResult:
        """A backed-off pack is asked for its analog values: one frame, as small as any."""
        return await self.poll(link)

    def max_age_s(self) -> dict[str, float]:
        """Per quantity, the age after which it is stale: three of its own reads missed."""
        interval = self.config.poll_interval_s
        ages = {q: 3 * interval + STALE_SLACK_S for q in self.quantities}
        for quantity in ALARM_STEP.quantities:
            ages[quantity] = 3 * ALARM_EVERY * interval + STALE_SLACK_S
        return ages

    def _plan(self) -> list[_Step]:
        plan = [ANALOG_STEP, MANAGEMENT_STEP]
        if self._polls % ALARM_EVERY == 0:
            plan.append(ALARM_STEP)
        return plan

    async def poll(self, link: FrameExchanger) -> PollResult:
        result = PollResult()
        plan = self._plan()
        self._polls += 1
        for index, step in enumerate(plan):
            result.requests += 1
            error = await self._run(link, step, result)
            if error is None:
                continue
            result.error = result.error or error
            if error in _STOPPING_ERRORS:
                # The pack is not answering: do not spend a timeout per command.
                for rest in plan[index:]:
                    result.failed.extend(rest.quantities)
                break
            result.failed.extend(step.quantities)
        return result

    async def _run(self, link: FrameExchanger, step: _Step, result: PollResult) -> str | None:
        """One command; appends its readings, returns its error class or None."""
        request = encode_request(self.address, step.command)
        try:
            reply = await link.exchange(request, self.timeout_s)
        except TimeoutError:
            log.debug("%s: no answer to 0x%02X", self.id, step.command)
            return "timeout"
        except OSError as exc:
            log.debug("%s: line failed: %s", self.id, exc)
            return "connection"
        now_mono, now_wall = self._monotonic(), self._wall_clock()
        try:
            response = decode_response(reply)
            if response.address != self.address:
                raise FrameError("garbage", f"reply from address {response.address}")
            values = step.convert(response.info)
        except FrameError as exc:
            log.debug("%s: 0x%02X: %s", self.id, step.command, exc)
            return exc.reason
        result.readings.extend(
            Reading(self.id, quantity, value, now_mono, now_wall)
            for quantity, value in values.items()
        )
        return None
