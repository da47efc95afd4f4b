"""Checks on the shipped systemd unit, `systemd/edge-agent.service`.

These run the real `systemd-analyze` (systemd 252 or newer, for `security --offline=true`).
It is not a Python package: when it is missing the tests fail and say how to install it, because
a skipped test would let a broken or weakened unit ship unnoticed.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
UNIT_PATH = REPO_ROOT / "systemd" / "edge-agent.service"
UNIT_NAME = UNIT_PATH.name
SHIPPED_BINARY = "/opt/edge-agent/venv/bin/edge-agent"
MAX_EXPOSURE = 2.0

# Device specifiers that count as "the daemon may open this kind of serial port": the driver
# name from /proc/devices, or the fixed major number (which also works for hot-plugged adapters).
SERIAL_PORT_SPECIFIERS = {
    "ttyUSB": {"char-ttyUSB", "char-188"},
    "ttyACM": {"char-ttyACM", "char-166"},
    "ttyAMA": {"char-ttyAMA", "char-204"},
}

_EXPOSURE_LINE = re.compile(
    r"Overall exposure level for " + re.escape(UNIT_NAME) + r":\s*(\d+(?:\.\d+)?)\s+(\S+)"
)


def _systemd_analyze() -> str:
    """Path of `systemd-analyze`; fails the test (never skips) when it is not installed."""
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail(
            "systemd-analyze is not installed, so the systemd unit cannot be checked. "
            "The test script (scripts/test) installs it with `apt-get install systemd`: run "
            "scripts/test as root, or `sudo apt-get install systemd` and re-run the tests."
        )
    return found


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SYSTEMD_COLORS="0", SYSTEMD_PAGER="cat", LC_ALL="C.UTF-8")
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        env=env,
        timeout=120,
        check=False,
    )


def _parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Section -> key -> every value, in file order (systemd allows a key to repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"setting outside any section: {line!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def _service() -> dict[str, list[str]]:
    return _parse_unit(UNIT_PATH.read_text(encoding="utf-8"))["Service"]


def _last(service: dict[str, list[str]], key: str) -> str:
    values = service.get(key)
    assert values, f"{key}= is missing from [Service]"
    return values[-1]


def _is_true(value: str) -> bool:
    return value.strip().lower() in {"1", "yes", "true", "on"}


def _runnable_binary(tmp_path: Path) -> str:
    """An executable that exists here, to stand in for /opt/edge-agent/venv/bin/edge-agent."""
    console_script = Path(sys.executable).parent / "edge-agent"
    if console_script.is_file() and os.access(console_script, os.X_OK):
        candidate = console_script
    else:
        candidate = tmp_path / "edge-agent"
        candidate.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
        candidate.chmod(candidate.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    text = str(candidate)
    # ExecStart= splits on whitespace; a quoted path keeps a path with spaces in one piece.
    return f'"{text}"' if any(ch.isspace() for ch in text) else text


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts the unit.

    verify also checks that ExecStart='s program exists and is executable, and the test
    machine has no /opt/edge-agent/venv. So the unit is copied into tmp_path with only that
    program path replaced (by the `edge-agent` console script next to sys.executable when it
    is installed, else by a tiny executable script written into tmp_path). Every other byte is
    kept as shipped, so everything else in the real unit is what gets verified.
    """
    analyze = _systemd_analyze()
    original = UNIT_PATH.read_bytes()
    prefix = b"ExecStart=" + SHIPPED_BINARY.encode() + b" "
    lines = original.splitlines(keepends=True)
    exec_lines = [i for i, line in enumerate(lines) if line.startswith(prefix)]
    assert len(exec_lines) == 1, f"expected exactly one line starting with {prefix!r}"
    index = exec_lines[0]
    lines[index] = lines[index].replace(
        SHIPPED_BINARY.encode(), _runnable_binary(tmp_path).encode(), 1
    )
    copy = tmp_path / UNIT_NAME
    copy.write_bytes(b"".join(lines))

    shipped = original.splitlines(keepends=True)
    rewritten = copy.read_bytes().splitlines(keepends=True)
    changed = [i for i, (a, b) in enumerate(zip(rewritten, shipped, strict=True)) if a != b]
    assert changed == [index], "only the ExecStart= program path may differ from the shipped unit"

    result = _run([analyze, "verify", str(copy)])
    problems = [line for line in result.stderr.splitlines() if UNIT_NAME in line]
    assert result.returncode == 0, f"systemd-analyze verify failed:\n{result.stderr}"
    assert not problems, "systemd-analyze verify reported problems:\n" + "\n".join(problems)


def test_unit_security_exposure_is_ok() -> None:
    """`systemd-analyze security --offline=true` rates the unit 2.0 or lower ("OK")."""
    analyze = _systemd_analyze()
    result = _run([analyze, "security", "--offline=true", "--no-pager", str(UNIT_PATH)])
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"systemd-analyze security failed:\n{output}"
    match = _EXPOSURE_LINE.search(output)
    assert match is not None, f"no 'Overall exposure level' line in the output:\n{output}"
    score = float(match.group(1))
    assert score <= MAX_EXPOSURE, (
        f"exposure {score} ({match.group(2)}) is above {MAX_EXPOSURE}; a hardening setting was "
        f"weakened or removed:\n{output}"
    )


def test_unit_keeps_service_contract() -> None:
    """What the daemon relies on: notify + watchdog, restart on failure, the shipped command."""
    service = _service()
    assert _last(service, "Type") == "notify"
    assert _last(service, "NotifyAccess") == "main"
    assert _last(service, "Restart") == "on-failure"
    watchdog = _last(service, "WatchdogSec")
    assert watchdog not in {"", "0", "infinity"}, "WatchdogSec= must be set to a time"
    assert _last(service, "ExecStart") == (
        f"{SHIPPED_BINARY} run --config /etc/edge-agent/site.toml"
    )
    environment = " ".join(service.get("Environment", [])).split()
    assert "PYTHONUNBUFFERED=1" in environment


def test_unit_keeps_serial_port_access() -> None:
    """The hardening must not lock the daemon out of its RS-485 adapters."""
    service = _service()
    assert not _is_true(service.get("PrivateDevices", ["no"])[-1]), (
        "PrivateDevices=yes hides /dev/ttyUSB* and the other serial ports from the daemon"
    )
    groups = " ".join(service.get("SupplementaryGroups", [])).split()
    assert "dialout" in groups, "SupplementaryGroups= must contain dialout to open serial ports"
    assert _last(service, "DevicePolicy") == "closed"

    allowed: dict[str, str] = {}
    for entry in service.get("DeviceAllow", []):
        spec, _, access = entry.partition(" ")
        allowed[spec] = access.strip() or "rwm"
    for port, specifiers in SERIAL_PORT_SPECIFIERS.items():
        granted = [allowed[spec] for spec in specifiers if spec in allowed]
        assert granted, f"DeviceAllow= does not cover /dev/{port}* (one of {sorted(specifiers)})"
        assert any("r" in access and "w" in access for access in granted), (
            f"DeviceAllow= for /dev/{port}* must grant read and write"
        )


def test_unit_does_not_block_lan_devices() -> None:
    """Devices sit at arbitrary LAN addresses, and sd_notify needs AF_UNIX."""
    service = _service()
    assert "IPAddressDeny" not in service, "IPAddressDeny= would cut off chargers and meters"
    assert "IPAddressAllow" not in service
    families = " ".join(service.get("RestrictAddressFamilies", [])).split()
    assert {"AF_UNIX", "AF_INET", "AF_INET6"} <= set(families)
    assert not _is_true(service.get("PrivateNetwork", ["no"])[-1])
