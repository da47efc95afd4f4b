"""Several simulated devices on one line: an RS-485 bus or a Modbus TCP gateway.

Each simulated device builds its own pymodbus `SimDevice` (with its unit id and its fault
switch); one server answers for all of them, as the devices on a real RS-485 line or behind a
TCP gateway share one port. A unit that is SILENT sends nothing, so the client times out on
it exactly as on a real line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import SimDevice


class Simulated(Protocol):
    def device(self) -> SimDevice: ...


class SharedLine:
    def __init__(self, devices: Sequence[Simulated]) -> None:
        self.devices = list(devices)
        self._server: ModbusTcpServer | ModbusSerialServer | None = None

    async def start_serial(self, port: str, baudrate: int = 9600) -> None:
        """Serve Modbus RTU for every device on one serial port (a pty end in tests)."""
        self._server = ModbusSerialServer(
            [d.device() for d in self.devices],
            port=port,
            baudrate=baudrate,
            ignore_missing_devices=True,
        )
        await self._server.serve_forever(background=True)

    async def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve every device behind one TCP port, as a gateway does; returns the port."""
        self._server = ModbusTcpServer(
            [d.device() for d in self.devices], address=(host, port), ignore_missing_devices=True
        )
        await self._server.serve_forever(background=True)
        transport = self._server.transport
        assert transport is not None
        return int(transport.sockets[0].getsockname()[1])  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None
