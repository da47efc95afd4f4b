"""What a car on a connector draws: the EV rules of FORMAT.md, "Physics the simulator must follow".

Each rule is one small function of plain floats, so it reads like the sentence it implements and
the step loop in `hil.physics` stays cheap (no objects built per car per step).
"""

from __future__ import annotations

# "Derating near full: once a car has received 80 % of `energy_kwh`, the most it accepts falls
# linearly from `max_kw` to 30 % of `max_kw` at 100 %."
DERATE_FROM_FRACTION = 0.8
DERATE_TO_SHARE = 0.3


def car_max_kw(max_kw: float, energy_kwh: float, received_kwh: float) -> float:
    """The most the car accepts now, derated near full (see DERATE_* above)."""
    if energy_kwh <= 0.0:
        return 0.0
    fraction = received_kwh / energy_kwh
    if fraction <= DERATE_FROM_FRACTION:
        return max_kw
    fraction = min(fraction, 1.0)
    progress = (fraction - DERATE_FROM_FRACTION) / (1.0 - DERATE_FROM_FRACTION)
    return max_kw * (1.0 - (1.0 - DERATE_TO_SHARE) * progress)


def ac_offer_kw(limit_a: float, min_a: float, max_a: float, voltage_v: float, phases: int) -> float:
    """kW an AC connector offers for a per-phase current limit.

    Offers are capped at the charger's `max_a`; "An AC connector offered less than `min_a` per
    phase draws nothing"; "An AC car draws on every phase its charger has", so the power is
    amps x voltage x phases.
    """
    offered_a = min(limit_a, max_a)
    if offered_a < min_a:
        return 0.0
    return offered_a * voltage_v * phases / 1000.0


def car_draw_kw(
    offer_kw: float,
    connector_max_kw: float,
    car_max_now_kw: float,
    missing_kwh: float,
    dt_s: float,
) -> float:
    """The power a car draws in a step of dt_s.

    FORMAT.md: "The power a car draws is the least of: the limit the agent set for its connector,
    the connector's `max_kw`, the car's `max_kw` derated near full, and what is still missing of
    `energy_kwh`" (within a step: the missing energy spread over the step).
    """
    finish_kw = missing_kwh * 3600.0 / dt_s
    return max(0.0, min(offer_kw, connector_max_kw, car_max_now_kw, finish_kw))


def share_charger_kw(wanted_kw: list[float], charger_max_kw: float) -> list[float]:
    """Split a charger's `max_kw` over its connectors (water-filling).

    "When a charger's connectors together would exceed the charger's `max_kw`, the charger splits
    it equally and passes a connector's unused share to the other": serve the smallest wants
    first; each gets at most an equal share of what is left, and what it leaves is shared by the
    rest. Returns `wanted_kw` itself when nothing needs sharing (the common case: no allocation).
    """
    if sum(wanted_kw) <= charger_max_kw:
        return wanted_kw
    granted = [0.0] * len(wanted_kw)
    left_kw = charger_max_kw
    waiting = len(wanted_kw)
    for index in sorted(range(len(wanted_kw)), key=wanted_kw.__getitem__):
        grant = min(wanted_kw[index], left_kw / waiting)
        granted[index] = grant
        left_kw -= grant
        waiting -= 1
    return granted
