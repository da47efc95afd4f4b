"""A pair of linked pseudo-terminals from socat: an RS-485 line on one machine.

The simulated device opens one end, the agent's RTU bus the other; bytes cross real tty
devices with pyserial on both sides, so framing and timing code runs as on a real adapter.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType


class PtyPair:
    def __init__(self, folder: Path) -> None:
        self.device_end = folder / "device-tty"
        self.agent_end = folder / "agent-tty"
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PtyPair:
        socat = shutil.which("socat")
        if socat is None:
            raise RuntimeError("socat is not installed (apt-get install socat; scripts/test does)")
        self._process = subprocess.Popen(
            [
                socat,
                f"pty,raw,echo=0,link={self.device_end}",
                f"pty,raw,echo=0,link={self.agent_end}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while not (self.device_end.exists() and self.agent_end.exists()):
            if time.monotonic() > deadline or self._process.poll() is not None:
                self.__exit__(None, None, None)
                raise RuntimeError("socat did not create the pty pair")
            time.sleep(0.02)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                # socat can sit in a blocked write to a pty nobody reads any more.
                self._process.kill()
                self._process.wait(timeout=5)
            self._process = None
