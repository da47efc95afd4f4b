"""Serving simulated devices over Modbus TCP or RTU: one place for the pymodbus server setup.

A simulated device class inherits `ModbusServing` and says which pymodbus `SimDevice`s it is
(one per unit id). Servers are created with `ignore_missing_devices=True`, so a device whose
fault switch is SILENT sends nothing and the client times out as on a real line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.simulator.simdevice import SimAction

log = logging.getLogger(__name__)

SHUTDOWN_S = 5.0


class ModbusServing:
    """Mixin: `start` on loopback TCP, `start_serial` on a serial port, `stop`."""

    _server: ModbusTcpServer | ModbusSerialServer | None = None

    def sim_devices(self) -> list[SimDevice]:
        """The unit ids this object answers for, as pymodbus simulator devices."""
        raise NotImplementedError

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve on (host, port); port 0 picks a free one. Returns the port bound."""
        self._server = ModbusTcpServer(
            self.sim_devices(), address=(host, port), ignore_missing_devices=True
        )
        await self._server.serve_forever(background=True)
        transport = self._server.transport
        assert transport is not None
        return int(transport.sockets[0].getsockname()[1])  # type: ignore[attr-defined]

    async def start_serial(self, port: str, baudrate: int = 9600, parity: str = "N") -> None:
        """Serve Modbus RTU on a serial port (in tests, one end of a socat pty pair)."""
        self._server = ModbusSerialServer(
            self.sim_devices(),
            port=port,
            baudrate=baudrate,
            parity=parity,
            ignore_missing_devices=True,
        )
        await self._server.serve_forever(background=True)

    async def stop(self) -> None:
        """Stop serving; a shutdown that hangs (seen on a pty under load) is abandoned."""
        server, self._server = self._server, None
        if server is not None:
            try:
                await asyncio.wait_for(server.shutdown(), SHUTDOWN_S)  # type: ignore[no-untyped-call]
            except TimeoutError:
                log.warning("simulated device server did not stop within %g s", SHUTDOWN_S)


def read_only_words(
    unit: int, start: int, count: int, words: Callable[[], Mapping[int, int]]
) -> SimDevice:
    """A unit that answers function 3 over [start, start + count) with `words()` of the moment."""
    holding = [SimData(start, count=count, values=0, datatype=DataType.REGISTERS)]

    async def on_access(
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if function_code != 3 or set_values is not None:
            return ExcCodes.ILLEGAL_FUNCTION
        now = words()
        for offset in range(len(registers)):
            registers[offset] = now.get(start_address + offset, 0)
        return None

    return modbus_unit(unit, on_access, holding)


def modbus_unit(
    unit: int, action: SimAction, holding: list[SimData], inputs: list[SimData] | None = None
) -> SimDevice:
    """A simulated unit with holding (and input) registers and no coils or discrete inputs.

    pymodbus wants all four blocks: the bit blocks (and, without `inputs`, the input-register
    block) are one placeholder each, for `action` to refuse as the real device does.
    """
    no_bits = [SimData(0, count=1, values=False, datatype=DataType.BITS)]
    if inputs is None:
        inputs = [SimData(0, count=1, values=0, datatype=DataType.REGISTERS)]
    return SimDevice(unit, simdata=(no_bits, no_bits, holding, inputs), action=action)
