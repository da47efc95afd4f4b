"""`edge-agent scan` and `edge-agent read` against simulated devices, through `main()`.

`main` runs its own event loop, so the simulators are served from a background thread with a
loop of their own (`Served`), as a real gateway would be: another party on the network.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import serial
from pymodbus import ModbusDeviceIdentification
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from agent.cli import main
from agent.tools.read import format_value
from agent.tools.scan import format_units, parse_units
from hil.devices.faults import Fault, FaultSwitch
from hil.devices.sdm630 import FixedMeter, SimulatedSdm630
from hil.devices.sunspec import FixedPv, SimulatedSunSpecInverter, SimulatedSunSpecMeter
from hil.pty import PtyPair
from tests.sites import METER_VALUES, WriteSite, site_toml


class Served:
    """Simulated devices behind one pymodbus server, running on its own loop in a thread.

    Unit ids without a device stay silent, as on a real gateway or RS-485 line (pymodbus
    itself would answer them with exception 0x04): see `nobody`.
    """

    def __init__(
        self,
        devices: list[SimDevice],
        serial_port: Path | None = None,
        identity: ModbusDeviceIdentification | None = None,
    ) -> None:
        self._devices = [*devices, nobody()]
        self._serial_port = serial_port
        self._identity = identity
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)
        self.port = 0

    def __enter__(self) -> Served:
        self._thread.start()
        assert self._ready.wait(5), "simulator did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        server: Any
        if self._serial_port is not None:
            server = ModbusSerialServer(
                self._devices, port=str(self._serial_port), baudrate=19200,
                ignore_missing_devices=True,
            )  # fmt: skip
        else:
            server = ModbusTcpServer(
                self._devices, address=("127.0.0.1", 0), identity=self._identity,
                ignore_missing_devices=True,
            )  # fmt: skip
        await server.serve_forever(background=True)
        if self._serial_port is None:
            self.port = int(server.transport.sockets[0].getsockname()[1])
        self._ready.set()
        await self._stop.wait()
        await server.shutdown()


def nobody() -> SimDevice:
    """The catch-all unit id 0: silent at every address (pymodbus checks the address range
    before the device's action, so the blocks must cover them all)."""
    switch = FaultSwitch()
    switch.set(Fault.SILENT)

    async def action(
        function_code: int, start_address: int, address: int, count: int,
        registers: list[int], set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:  # fmt: skip
        return await switch.apply()

    words = [SimData(0, count=0x10000, values=0, datatype=DataType.REGISTERS)]
    bits = [SimData(0, count=1, values=False, datatype=DataType.BITS)]
    return SimDevice(0, simdata=(bits, bits, words, words), action=action)


def sdm630(unit_id: int) -> SimulatedSdm630:
    return SimulatedSdm630(FixedMeter(METER_VALUES), time.monotonic, unit_id=unit_id)


def free_port() -> int:
    """A port nobody listens on: bound, read and released."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


DEVICE_SITE = """
[site]
name = "test-site"
grid_import_limit_kw = 100

[[buses]]
name = "{bus}"
type = "{type}"
{where}
timeout_s = 0.3

[[devices]]
id = "{device}"
kind = "{kind}"
profile = "{profile}"
bus = "{bus}"
unit_id = {unit}
poll_interval_s = 0.2

[prometheus]
enabled = false
"""


def tcp_site(port: int, device: str = "pv-1", kind: str = "inverter",
             profile: str = "sunspec-inverter", unit: int = 1) -> str:  # fmt: skip
    where = f'host = "127.0.0.1"\nport = {port}'
    return DEVICE_SITE.format(
        bus="lan", type="tcp", where=where, device=device, kind=kind, profile=profile, unit=unit
    )


def serial_site(port: Path | str) -> str:
    where = f'port = "{port}"\nbaudrate = 19200'
    return DEVICE_SITE.format(
        bus="rs485", type="serial", where=where, device="grid-meter", kind="meter",
        profile="eastron-sdm630", unit=7,
    )  # fmt: skip


def row(output: str, name: str) -> list[str]:
    """The columns of a table line, split on runs of two or more spaces."""
    for line in output.splitlines():
        if line.startswith(name + " "):
            return re.split(r"\s{2,}", line.strip())
    raise AssertionError(f"no row {name!r} in:\n{output}")


# --- scan --------------------------------------------------------------------------------


@pytest.fixture
def gateway() -> Iterator[Served]:
    """A TCP gateway: an SDM630 at unit 2, a SunSpec meter at unit 3, nobody else."""
    meter = SimulatedSunSpecMeter(FixedMeter(METER_VALUES), time.monotonic, unit_id=3)
    identity = ModbusDeviceIdentification(  # type: ignore[no-untyped-call]
        info_name={"VendorName": "Eastron", "ProductCode": "SDM630", "MajorMinorRevision": "1.0"}
    )
    with Served([sdm630(2).device(), meter.device()], identity=identity) as served:
        yield served


def test_scan_names_the_sunspec_unit_and_counts_the_answers(
    gateway: Served, write_site: WriteSite, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_site(site_toml(meter_port=gateway.port))
    code = main(["scan", "--bus", "lan", "--units", "1-4", "--timeout", "0.2",
                 "--config", str(config)])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.splitlines() == [
        "unit   2: answers (exception 0x02 illegal data address at 40000); not SunSpec; "
        "identification: Eastron SDM630 1.0",
        "unit   3: SunSpec at base 40000: models 1 (common), 203 (ac_meter_abcn); "
        "edge-agent HIL, meter-203, version 1.0.0, serial SIM-meter-203-3",
        "2 of 4 units answered",
    ]
    assert "units 1-4, up to 0.2 s per unit" in err


def test_scan_with_no_answer_exits_4(
    write_site: WriteSite, capsys: pytest.CaptureFixture[str]
) -> None:
    with Served([]) as served:
        config = write_site(site_toml(meter_port=served.port))
        # More silent units in a row than pymodbus tolerates before it drops the connection.
        code = main(["scan", "--bus", "lan", "--units", "1,5-9", "--timeout", "0.1",
                     "--config", str(config)])  # fmt: skip
    out, _ = capsys.readouterr()
    assert code == 4
    assert out.splitlines() == ["0 of 6 units answered"]


def test_unit_lists() -> None:
    assert parse_units("1-247") == tuple(range(1, 248))
    assert parse_units("1,3,10-12") == (1, 3, 10, 11, 12)
    assert parse_units(" 12, 3,3 ") == (3, 12)
    assert format_units((1, 3, 10, 11, 12)) == "1,3,10-12"
    assert format_units(tuple(range(1, 248))) == "1-247"


@pytest.mark.parametrize(
    ("units", "message"),
    [
        ("abc", "'abc' is not a list of unit ids (use e.g. 1-247 or 1,3,10-12)"),
        ("1-", "'1-' is not a list of unit ids"),
        ("1,,3", "'1,,3' is not a list of unit ids"),
        ("12-3", "range 12-3 runs backwards (write 3-12)"),
        ("1-300", "unit id 300 is outside 0-255"),
    ],
)
def test_bad_unit_lists_are_usage_errors(
    units: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["scan", "--bus", "lan", "--units", units])
    assert stopped.value.code == 2
    assert f"argument --units: {message}" in capsys.readouterr().err


# --- names, config, links ------------------------------------------------------------------


def test_unknown_bus_and_device_name_what_exists(
    write_site: WriteSite, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_site(site_toml()))
    assert main(["scan", "--bus", "rs485", "--config", config]) == 2
    assert capsys.readouterr().err.strip() == "no bus named 'rs485' in the site file; buses: lan"
    assert main(["read", "pv-9", "--config", config]) == 2
    assert capsys.readouterr().err.strip() == (
        "no device named 'pv-9' in the site file; devices: grid-meter"
    )


def test_bad_config_prints_the_report(
    write_site: WriteSite, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_site("[site]\nname = 'Bad Name'\n")
    assert main(["read", "grid-meter", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"configuration {config} has")
    assert "site.name" in err


def test_busy_serial_port(
    tmp_path: Path, write_site: WriteSite, capsys: pytest.CaptureFixture[str]
) -> None:
    with PtyPair(tmp_path) as line:
        config = str(write_site(serial_site(line.agent_end)))
        daemon = serial.Serial(str(line.agent_end), exclusive=True)  # as pymodbus opens it
        try:
            assert main(["read", "grid-meter", "--config", config]) == 3
            assert main(["scan", "--bus", "rs485", "--config", config]) == 3
        finally:
            daemon.close()
    err = capsys.readouterr().err
    busy = f"port {line.agent_end} is in use (is edge-agent running? stop it or use its metrics)"
    assert err.count(busy) == 2


def test_missing_port_and_unreachable_gateway(
    write_site: WriteSite, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(write_site(serial_site("/dev/ttyNOSUCHPORT"), name="serial.toml"))
    assert main(["read", "grid-meter", "--config", missing]) == 3
    assert capsys.readouterr().err.strip() == (
        "port /dev/ttyNOSUCHPORT does not exist (adapter unplugged? see ls /dev/serial/by-id/)"
    )
    port = free_port()
    nobody = str(write_site(site_toml(meter_port=port), name="tcp.toml"))
    assert main(["scan", "--bus", "lan", "--units", "1", "--config", nobody]) == 3
    assert f"cannot reach 127.0.0.1:{port} (bus lan): Connection refused" in (
        capsys.readouterr().err
    )


# --- read --------------------------------------------------------------------------------


def test_read_sdm630_prints_values_with_units(
    write_site: WriteSite, capsys: pytest.CaptureFixture[str]
) -> None:
    with Served([sdm630(1).device()]) as served:
        config = write_site(site_toml(meter_port=served.port))
        code = main(["read", "grid-meter", "--config", str(config)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.splitlines()[0] == (
        f"grid-meter: eastron-sdm630, unit 1 on bus lan (tcp 127.0.0.1:{served.port})"
    )
    assert row(out, "voltage_l1") == ["voltage_l1", "231.25", "V"]
    assert row(out, "power_l2") == ["power_l2", "-1250.5", "W"]
    assert row(out, "energy_import") == ["energy_import", "123456500", "Wh"]


def test_read_sunspec_inverter_shows_labels_and_nameplate(
    write_site: WriteSite, capsys: pytest.CaptureFixture[str]
) -> None:
    inverter = SimulatedSunSpecInverter(FixedPv(5000.0), time.monotonic, unit_id=1)
    with Served([inverter.device()]) as served:
        config = write_site(tcp_site(served.port))
        code = main(["read", "pv-1", "--config", str(config)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert row(out, "operating_state") == ["operating_state", "4", "(MPPT)"]
    assert row(out, "alarms")[1:] == ["0x00000000", "(none)"]
    assert row(out, "power")[2] == "W"
    assert "SIM-inverter-103-1" in out


def test_read_over_rtu(
    tmp_path: Path, write_site: WriteSite, capsys: pytest.CaptureFixture[str]
) -> None:
    with PtyPair(tmp_path) as line, Served([sdm630(7).device()], line.device_end):
        config = write_site(serial_site(line.agent_end))
        code = main(["read", "grid-meter", "--config", str(config)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert row(out, "current_l3") == ["current_l3", "64.125", "A"]


def test_read_of_a_silent_device_exits_4(
    write_site: WriteSite, capsys: pytest.CaptureFixture[str]
) -> None:
    meter = sdm630(1)
    meter.faults.set(Fault.SILENT)
    with Served([meter.device()]) as served:
        config = write_site(site_toml(meter_port=served.port))
        code = main(["read", "grid-meter", "--config", str(config)])
    out, err = capsys.readouterr()
    assert code == 4
    assert out == ""
    assert err.strip() == (
        f"grid-meter, unit 1 on bus lan (tcp 127.0.0.1:{served.port}): no answer within 0.5 s "
        "(check the unit id, wiring, baud rate and parity)"
    )


def test_values_read_as_a_person_would_write_them() -> None:
    assert format_value(231.25) == "231.25"
    assert format_value(123456500.0) == "123456500"
    assert format_value(49.979999542236328) == "49.98"
    assert format_value(0.00012) == "0.00012"
