"""`edge-agent run` as systemd runs it: a real process, real signals, a real notify socket."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.cli import main
from hil.devices.sdm630 import FixedMeter, SimulatedSdm630
from tests.sites import WriteSite, site_toml


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(0.2)
    yield sock
    sock.close()


def receive_until(sock: socket.socket, wanted: str, timeout: float) -> list[str]:
    """Collect notify messages until one contains `wanted`."""
    messages: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            message = sock.recv(4096).decode()
        except TimeoutError:
            continue
        messages.append(message)
        if wanted in message.split("\n"):
            return messages
    raise AssertionError(f"{wanted} not received in {timeout} s; got {messages}")


def start_daemon(config: Path, env_extra: dict[str, str]) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_AGENT_")}
    env.update(env_extra)
    return subprocess.Popen(
        [sys.executable, "-m", "agent", "run", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def test_notify_ready_watchdog_stopping_and_clean_sigterm(
    fixed_meter: tuple[SimulatedSdm630, FixedMeter, int],
    write_site: WriteSite,
    notify_socket: socket.socket,
) -> None:
    _, _, meter_port = fixed_meter
    config = write_site(site_toml(meter_port=meter_port))
    process = start_daemon(
        config,
        {
            "NOTIFY_SOCKET": notify_socket.getsockname(),
            "WATCHDOG_USEC": "1000000",  # 1 s: pings expected every 0.5 s
            "JOURNAL_STREAM": "8:12345",  # as under systemd: journald-style log lines
        },
    )
    try:
        import asyncio

        messages = await asyncio.to_thread(receive_until, notify_socket, "READY=1", 10.0)
        ready = next(m for m in messages if "READY=1" in m)
        assert "STATUS=" in ready
        messages = await asyncio.to_thread(receive_until, notify_socket, "WATCHDOG=1", 3.0)
        messages += await asyncio.to_thread(receive_until, notify_socket, "WATCHDOG=1", 3.0)
        statuses = [line for m in messages for line in m.split("\n") if line.startswith("STATUS=")]
        assert any("devices up 1/1" in s and "grid 35.3 kW" in s for s in statuses), statuses

        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _stdout, stderr = await asyncio.to_thread(process.communicate, timeout=10)
        elapsed = time.monotonic() - sent
        await asyncio.to_thread(receive_until, notify_socket, "STOPPING=1", 1.0)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 0, stderr
    assert elapsed < 5.0
    lines = stderr.splitlines()
    assert lines, "the daemon logged nothing"
    # journald gets the priority as a prefix and no timestamp of ours.
    assert all(line.startswith("<") for line in lines), lines
    assert any(line.startswith("<6>INFO agent.app: SIGTERM received") for line in lines), lines
    assert not any(line[4:8].isdigit() for line in lines)


def test_sigint_also_stops_cleanly(write_site: WriteSite) -> None:
    # No meter answers on this port: the daemon still runs, and still stops on request.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    process = start_daemon(write_site(site_toml(meter_port=dead_port)), {})
    try:
        time.sleep(1.5)
        assert process.poll() is None, process.communicate()
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert time.monotonic() - sent < 5.0
    assert "grid-meter on lan: not answering (connection)" in stderr


def test_metrics_port_in_use_is_a_clear_startup_error(
    write_site: WriteSite, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_site(site_toml(metrics_port=port))
        assert main(["run", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert f"cannot serve metrics on 127.0.0.1:{port}: Address already in use" in err
