"""Several simulated devices on one line: an RS-485 bus or a Modbus TCP gateway.

Each simulated device builds its own pymodbus `SimDevice` (with its unit id and its fault
switch); one server answers for all of them, as the devices on a real RS-485 line or behind a
TCP gateway share one port. A unit that is SILENT sends nothing, so the client times out on
it exactly as on a real line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pymodbus.simulator import SimDevice

from hil.devices.serving import ModbusServing


class Simulated(Protocol):
    def device(self) -> SimDevice: ...


class SharedLine(ModbusServing):
    def __init__(self, devices: Sequence[Simulated]) -> None:
        self.devices = list(devices)

    def sim_devices(self) -> list[SimDevice]:
        return [d.device() for d in self.devices]

    async def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve every device behind one TCP port, as a gateway does; returns the port."""
        return await self.start(host, port)
