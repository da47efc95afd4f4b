"""Serving simulated devices over Modbus TCP or RTU: one place for the pymodbus server setup.

A simulated device class inherits `ModbusServing` and says which pymodbus `SimDevice`s it is
(one per unit id). Servers are created with `ignore_missing_devices=True`, so a device whose
fault switch is SILENT sends nothing and the client times out as on a real line.
"""

from __future__ import annotations

import asyncio
import logging

from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import SimDevice

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
