"""The watchdog is fed only while the control cycle makes progress."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from pathlib import Path

from agent.app import Agent
from agent.config_loader import load_config
from agent.systemd import SystemdNotifier
from tests.sites import WriteSite, site_toml


def drain(sock: socket.socket) -> list[str]:
    lines: list[str] = []
    with contextlib.suppress(BlockingIOError):
        while True:
            lines.extend(sock.recv(4096).decode().split("\n"))
    return lines


async def test_stalled_cycle_starves_the_watchdog(write_site: WriteSite, tmp_path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.setblocking(False)
    notifier = SystemdNotifier(
        {"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "200000"}
    )
    agent = Agent(load_config(write_site(site_toml())), notifier=notifier)
    health = asyncio.create_task(agent._report_health())
    try:
        agent.loop.heartbeat = time.monotonic() - 60  # the cycle has not completed for a minute
        await asyncio.sleep(0.5)
        stalled = drain(sock)
        agent.loop.run_cycle()  # progress again
        await asyncio.sleep(0.35)
        recovered = drain(sock)
    finally:
        health.cancel()
        sock.close()
    assert "WATCHDOG=1" not in stalled
    assert "STATUS=control cycle stalled" in stalled
    assert "WATCHDOG=1" in recovered


def test_notifier_is_silent_outside_systemd() -> None:
    notifier = SystemdNotifier({})
    assert not notifier.enabled
    assert notifier.watchdog_s is None
    assert notifier.ready("x") is False


def test_watchdog_for_another_pid_is_ignored() -> None:
    notifier = SystemdNotifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"})
    assert notifier.watchdog_s is None
    assert SystemdNotifier({"WATCHDOG_USEC": "30000000"}).watchdog_s == 30.0
