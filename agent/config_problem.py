"""One problem found in a site config: the key path, the value found and what is wrong."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    path: str
    value: object
    message: str
