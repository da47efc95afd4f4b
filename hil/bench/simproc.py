"""Simulated devices in a process of their own, so the benchmark's CPU clock sees the agent only.

Run as `python -m hil.bench.simproc KIND UNITS (--tcp | --serial PATH --baud N) [--silent U]`:
it serves UNITS SDM630 meters or DC-charger connectors on one `SharedLine`, prints
`ready PORT` once it answers, and stops on SIGTERM. `SimProcess` starts and stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import time
from types import TracebackType

from pymodbus.simulator import SimDevice

from hil.devices.dc_charger import SimulatedDcCharger
from hil.devices.faults import Fault, FaultSwitch
from hil.devices.line import SharedLine, Simulated
from hil.devices.sdm630 import LoadCurveMeter, SimulatedSdm630


class _Prebuilt:
    """One connector's ready-made SimDevice, in the shape `SharedLine` takes."""

    def __init__(self, device: SimDevice) -> None:
        self._device = device

    def device(self) -> SimDevice:
        return self._device


def build_line(kind: str, units: int) -> tuple[list[Simulated], dict[int, FaultSwitch]]:
    """Unit ids 1..units; chargers are dual-connector cabinets (units 2k+1 and 2k+2)."""
    if kind == "sdm630":
        meters = [
            SimulatedSdm630(LoadCurveMeter(seed=unit), time.monotonic, unit)
            for unit in range(1, units + 1)
        ]
        return list(meters), {m.unit_id: m.faults for m in meters}
    chargers = [
        SimulatedDcCharger(time.monotonic, unit_ids=(first, first + 1))
        for first in range(1, units + 1, 2)
    ]
    for charger in chargers:
        for connector in charger.connectors.values():
            charger.plug_in(connector.unit_id, wants_w=60_000.0)  # values that move
    simulated: list[Simulated] = [_Prebuilt(d) for c in chargers for d in c.devices()]
    switches = {uid: c.connectors[uid].faults for c in chargers for uid in c.connectors}
    return simulated, switches


async def serve(args: argparse.Namespace) -> None:
    simulated, switches = build_line(args.kind, args.units)
    for unit in args.silent:
        switches[unit].set(Fault.SILENT)
    line = SharedLine(simulated)
    if args.serial:
        await line.start_serial(args.serial, baudrate=args.baud)
        port = 0
    else:
        port = await line.start_tcp()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"ready {port}", flush=True)
    await stop.wait()
    await line.stop()


class SimProcess:
    """Starts the helper, waits for `ready`, and terminates it on exit; `port` is its TCP port."""

    def __init__(self, kind: str, units: int, *transport: str, silent: tuple[int, ...] = ()):
        self._args = [kind, str(units), *transport]
        for unit in silent:
            self._args += ["--silent", str(unit)]
        self._process: subprocess.Popen[str] | None = None
        self.port = 0

    def __enter__(self) -> SimProcess:
        command = [sys.executable, "-m", "hil.bench.simproc", *self._args]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        line = self._process.stdout.readline().split()
        if not line or line[0] != "ready":
            self.__exit__(None, None, None)
            raise RuntimeError(f"simulator process did not start: {command}")
        self.port = int(line[1])
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=["sdm630", "charger"])
    parser.add_argument("units", type=int)
    parser.add_argument("--tcp", action="store_true")
    parser.add_argument("--serial", metavar="PATH")
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--silent", type=int, action="append", default=[])
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
