"""Load the site file and the environment into an `AgentConfig`, or say exactly what is wrong.

Every problem is reported at once, each with the file (or environment variable) it came from,
the key path with list entries named by their id, the offending value and what is allowed. The
daemon never starts half-configured: `load_config` either returns a whole config or raises.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from agent.config import ENV_NESTED_DELIMITER, ENV_PREFIX, AgentConfig
from agent.config_checks import check_site
from agent.config_problem import ConfigProblem

_BUS_TAGS = {"serial", "tcp"}  # pydantic puts the union's tag into error locations


class ConfigError(Exception):
    """The configuration cannot be used; `report()` is what the technician reads."""

    def __init__(self, origin: str, problems: Sequence[ConfigProblem]) -> None:
        super().__init__(f"{origin}: {len(problems)} problem(s)")
        self.origin = origin
        self.problems = list(problems)

    def lines(self) -> list[str]:
        lines = []
        for problem in self.problems:
            where = f"{self.origin}: " if not problem.path.startswith("environment ") else ""
            value = "" if problem.value is None else f" = {problem.value!r}"
            path = problem.path or "(file)"
            lines.append(f"{where}{path}{value}: {problem.message}")
        return lines

    def report(self) -> str:
        count = len(self.problems)
        header = f"configuration {self.origin} has {count} problem{'s' if count > 1 else ''}:"
        return "\n".join([header, *("  " + line for line in self.lines())])


def load_config(path: Path) -> AgentConfig:
    """Read and validate the site file with the environment's overrides applied."""
    origin = str(path)
    data = read_toml(path)
    try:
        config = AgentConfig(**data)
    except ValidationError as exc:
        raise ConfigError(origin, _problems_from(exc, data, os.environ)) from None
    except SettingsError as exc:
        raise ConfigError(origin, [ConfigProblem("environment", None, str(exc))]) from None
    problems = check_site(config)
    if problems:
        raise ConfigError(origin, problems)
    return config


def read_toml(path: Path) -> dict[str, Any]:
    origin = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(origin, [ConfigProblem("", None, "file not found")]) from None
    except IsADirectoryError:
        raise ConfigError(origin, [ConfigProblem("", None, "is a directory, not a file")]) from None
    except PermissionError:
        raise ConfigError(origin, [ConfigProblem("", None, "permission denied")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(origin, [ConfigProblem("", None, f"not UTF-8 text: {exc}")]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(origin, [ConfigProblem("", None, f"TOML syntax error: {exc}")]) from None


def _problems_from(
    exc: ValidationError, data: dict[str, Any], environ: Mapping[str, str]
) -> list[ConfigProblem]:
    env_paths = _environment_paths(environ)
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        path = key_path(loc, data)
        value: object = None if error["type"] == "missing" else error.get("input")
        if isinstance(value, dict | list):
            value = None  # the whole table: the path says enough
        if error["type"] == "union_tag_invalid":
            path, value = f"{path}.type", error.get("ctx", {}).get("tag")
        message = _explain(error["type"], error["msg"])
        variable = _from_environment(loc, env_paths)
        if variable is not None:
            path = f"environment {variable} ({path})"
        problems.append(ConfigProblem(path, value, message))
    return problems


def key_path(loc: Sequence[int | str], data: Any) -> str:
    """('devices', 2, 'unit_id') -> 'devices[meter-main].unit_id', naming entries by id."""
    text = ""
    node: Any = data
    previous_was_index = False
    for key in loc:
        if isinstance(key, int):
            label: object = key
            if isinstance(node, list) and 0 <= key < len(node):
                node = node[key]
                if isinstance(node, dict):
                    label = node.get("id") or node.get("name") or key
            else:
                node = None
            text += f"[{label}]"
            previous_was_index = True
            continue
        if previous_was_index and key in _BUS_TAGS:
            previous_was_index = False
            continue
        previous_was_index = False
        text += f".{key}" if text else key
        node = node.get(key) if isinstance(node, dict) else None
    return text


def _explain(error_type: str, message: str) -> str:
    if error_type == "extra_forbidden":
        return "unknown key (misspelt, or in the wrong section?)"
    if error_type == "missing":
        return "required key is missing"
    if error_type == "union_tag_invalid":
        return "type must be 'serial' or 'tcp'"
    return message


def _environment_paths(environ: Mapping[str, str]) -> dict[tuple[str, ...], str]:
    paths = {}
    for name in environ:
        if name.upper().startswith(ENV_PREFIX):
            rest = name[len(ENV_PREFIX) :].lower()
            paths[tuple(rest.split(ENV_NESTED_DELIMITER))] = name
    return paths


def _from_environment(
    loc: Sequence[int | str], env_paths: dict[tuple[str, ...], str]
) -> str | None:
    """The variable that set this key, or a key inside it (EDGE_AGENT_DEVICES__0__... )."""
    names = tuple(str(part).lower() for part in loc)
    for path, variable in env_paths.items():
        shorter = min(len(path), len(names))
        if shorter and names[:shorter] == path[:shorter]:
            return variable
    return None
