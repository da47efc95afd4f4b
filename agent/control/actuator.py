"""Applying a Plan to the devices: only the setpoints that changed, and renewals in time.

Writing every setpoint every second would flood a bus of 182 connectors; writing only on change
would let a charger's own watchdog drop a steady setpoint. So a limit is written when it was
cut (however little: the budget counts on it), raised by more than a step, or when half of the
device's renew time has passed since the last write.
Writes go through the bus workers, which range-check them, read them back and retry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from agent.control.plan import ConnectorLimit, Plan
from agent.drivers.setpoints import SetpointError

log = logging.getLogger(__name__)

DEFAULT_RENEW_S = 60.0  # a device without a stated watchdog is still rewritten every 30 s
CHANGE_STEP = {"kW": 0.5, "A": 0.5}  # smaller changes wait for the next renewal


def unchanged_and_fresh(
    last: tuple[float, float] | None, value: float, now: float, step: float, renew_after: float
) -> bool:
    """True if `value` moved less than `step` from the last write `(value, when)`, which is
    younger than `renew_after`: nothing needs writing yet."""
    return last is not None and abs(value - last[0]) < step and now - last[1] < renew_after


@dataclass(frozen=True, slots=True)
class SetpointTarget:
    """Where a connector's limit goes: which device setpoint, in which unit, how often."""

    device: str
    setpoint: str  # power_limit (W) or current_limit (A)
    factor: float  # plan unit -> device unit (kW -> W: 1000)
    minimum: float
    maximum: float
    renew_s: float | None
    submit: Callable[[str, str, float], None]  # the bus worker's submit_write


@dataclass(slots=True)
class _Written:
    value: float
    at: float
    limit: ConnectorLimit | None = None  # the plan's object, to skip unchanged limits cheaply
    renew_after: float = DEFAULT_RENEW_S / 2


class Actuator:
    def __init__(self, targets: Mapping[str, SetpointTarget]) -> None:
        self._targets = dict(targets)
        self._written: dict[str, _Written] = {}
        self.writes_submitted = 0

    def apply(self, plan: Plan, now: float) -> None:
        for device, limit in plan.connectors.items():
            target = self._targets.get(device)
            if target is None:
                continue
            last = self._written.get(device)
            if last is not None and last.limit is limit and now - last.at < last.renew_after:
                continue  # the very same limit object as last cycle, not due for renewal
            value = min(max(limit.value * target.factor, target.minimum), target.maximum)
            renew_after = (target.renew_s or DEFAULT_RENEW_S) / 2
            step = CHANGE_STEP[limit.unit] * target.factor
            # A cut always goes out: the plan counts on it. A small raise waits for the renewal.
            if last is not None and 0 <= value - last.value < step and now - last.at < renew_after:
                continue  # unchanged or a small raise: it waits for the renewal
            try:
                target.submit(device, target.setpoint, value)
            except SetpointError as exc:  # the profile disagrees with the plan: say so, go on
                log.error("%s: %s", device, exc)
                continue
            self._written[device] = _Written(value, now, limit, renew_after)
            self.writes_submitted += 1
