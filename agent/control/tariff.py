"""Import prices from the configured tariff: per minute of a local day, and per plan step."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from agent.config import TariffSection


def tariff_prices(tariff: TariffSection, start: datetime, steps: int, step_s: int) -> list[float]:
    """Import price per step: the mean over the step's minutes, each priced in local time.

    Periods wrap past midnight when `end` <= `start` (22:00-06:00). No periods: all 0 (the
    planner then only shaves peaks above the limit). A minute no period covers is an error
    (config checks refuse such a tariff at start-up).
    """
    if not tariff.periods:
        return [0.0] * steps
    zone = ZoneInfo(tariff.timezone)
    by_minute = minute_prices(tariff)
    minutes = max(1, step_s // 60)
    prices = []
    for step in range(steps):
        each = []
        for minute in range(minutes):
            local = (start + timedelta(seconds=step * step_s + minute * 60)).astimezone(zone)
            price = by_minute[local.hour * 60 + local.minute]
            if price is None:
                raise ValueError(f"no tariff period covers {local:%H:%M}")
            each.append(price)
        prices.append(math.fsum(each) / minutes)
    return prices


def minute_prices(tariff: TariffSection) -> list[float | None]:
    """The import price of each minute of a local day; None where no period covers it."""
    by_minute: list[float | None] = [None] * 1440
    for period in tariff.periods:
        start, end = period.start_minute, period.end_minute
        span = range(start, end) if start < end else [*range(start, 1440), *range(0, end)]
        for minute in span:
            by_minute[minute] = period.price
    return by_minute
