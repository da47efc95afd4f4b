"""Faults on the wire between a Modbus client and a simulated device, which no simulator can fake.

pymodbus' server only sends well-formed frames, so the faults that live in the bytes (a garbled
reply, half a reply, a bad CRC, a device that vanishes from the network) are acted out by a man
in the middle: `TcpFaultProxy` for Modbus TCP, `RtuFaultRelay` between two pty pairs for RTU.
Faults apply to replies only: requests always reach the device, as on a real line where the
device heard the request and its answer was lost or mangled on the way back. A fault can be
limited to one unit id, so one bad unit behind a gateway leaves the others answering.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import tty
from enum import StrEnum
from pathlib import Path

MBAP_HEADER = 7  # transaction id (2), protocol id (2), length (2), unit id (1)
UNASSIGNED_FUNCTION_CODE = 0x64  # not defined by the Modbus spec; in the user-defined range


class ProxyFault(StrEnum):
    PASS = "pass"
    GARBAGE = "garbage"  # the reply replaced by bytes that do not frame as this reply
    TRUNCATE = "truncate"  # the first half of the reply, then nothing
    SHORT = "short"  # a well-formed read reply that carries fewer registers than asked for
    DROP = "drop"  # no reply at all
    DISCONNECT = "disconnect"  # connections closed and new ones refused, until set otherwise


class TcpGarbage(StrEnum):
    """How GARBAGE mangles a reply; each one reaches a different path in a client's framer."""

    NOISE = "noise"  # random bytes whose MBAP header does not frame them
    WRONG_TID = "wrong_tid"  # the real reply under another transaction id
    UNDECODABLE = "undecodable"  # right MBAP, but a function code no client knows


class TcpFaultProxy:
    """A loopback Modbus TCP proxy in front of one device (or gateway) that mangles replies.

    Replies are framed by their MBAP length, so a fault hits exactly one reply. `passed` and
    `altered` count replies; `disconnected` counts connections closed or refused by DISCONNECT.
    """

    def __init__(self, target_host: str, target_port: int, *, seed: int = 1) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.fault = ProxyFault.PASS
        self.unit_id: int | None = None  # None: every unit
        self.garbage = TcpGarbage.NOISE
        self.passed = 0
        self.altered = 0
        self.disconnected = 0
        self._random = random.Random(seed)
        self._host = "127.0.0.1"
        self._port = 0
        self._server: asyncio.Server | None = None
        self._reopening: asyncio.Task[asyncio.Server] | None = None
        self._sessions: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    def set(
        self,
        fault: ProxyFault,
        *,
        unit_id: int | None = None,
        garbage: TcpGarbage = TcpGarbage.NOISE,
    ) -> None:
        """Switch the fault now. DISCONNECT ignores `unit_id`: it takes the whole link down."""
        was = self.fault
        self.fault, self.unit_id, self.garbage = fault, unit_id, garbage
        if fault is ProxyFault.DISCONNECT and was is not ProxyFault.DISCONNECT:
            self._go_offline()
        elif was is ProxyFault.DISCONNECT and fault is not ProxyFault.DISCONNECT:
            self._go_online()

    def clear(self) -> None:
        self.set(ProxyFault.PASS)

    @property
    def port(self) -> int:
        """The loopback port clients connect to (0 before `start`)."""
        return self._port

    async def start(self, port: int = 0) -> int:
        """Listen on loopback; port 0 picks a free one. Returns the port bound."""
        self._server = await asyncio.start_server(self._serve, self._host, port)
        self._port = int(self._server.sockets[0].getsockname()[1])
        return self._port

    async def stop(self) -> None:
        if self._reopening is not None:
            await asyncio.wait([self._reopening])  # `_reopened` has filed its server by now
        server, self._server = self._server, None
        if server is not None:
            server.close()
        await self._end_sessions()
        if server is not None:
            await server.wait_closed()

    def _go_offline(self) -> None:
        # Closing the listening socket makes new connects fail with "connection refused",
        # like a device that lost power; aborting the transports ends the open ones at once.
        if self._server is not None:
            self._server.close()
            self._server = None
        for task, writer in self._sessions.items():
            writer.transport.abort()
            task.cancel()
            self.disconnected += 1

    def _go_online(self) -> None:
        # The socket listens before this returns, so a connect right after PASS succeeds;
        # the kernel queues it until the server below starts accepting.
        if self._reopening is not None:
            return  # still coming up from an earlier switch back; `_reopened` keeps it up
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        sock.listen()
        self._reopening = asyncio.ensure_future(asyncio.start_server(self._serve, sock=sock))
        self._reopening.add_done_callback(self._reopened)

    def _reopened(self, task: asyncio.Task[asyncio.Server]) -> None:
        self._reopening = None
        if task.cancelled() or task.exception() is not None:
            return
        if self.fault is ProxyFault.DISCONNECT:
            task.result().close()  # switched off again while coming up
        else:
            self._server = task.result()

    async def _end_sessions(self) -> None:
        sessions = list(self._sessions)
        for task in sessions:
            task.cancel()
        await asyncio.gather(*sessions, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.fault is ProxyFault.DISCONNECT:
            writer.transport.abort()
            self.disconnected += 1
            return
        # The relay runs in a task of our own: asyncio's stream server does not expect the
        # handler task it created to be cancelled, DISCONNECT and stop() cancel this one.
        session = asyncio.create_task(self._relay(reader, writer))
        self._sessions[session] = writer
        try:
            await asyncio.wait([session])
        finally:
            session.cancel()
            del self._sessions[session]
            writer.transport.abort()

    async def _relay(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            device_reader, device_writer = await asyncio.open_connection(
                self.target_host, self.target_port
            )
        except OSError:
            return
        pumps = [
            asyncio.create_task(_copy(client_reader, device_writer)),
            asyncio.create_task(self._replies(device_reader, client_writer)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            device_writer.transport.abort()

    async def _replies(self, device: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        while True:
            try:
                header = await device.readexactly(MBAP_HEADER)
                body = await device.readexactly(int.from_bytes(header[4:6], "big") - 1)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            reply = self._alter(header + body)
            if reply:
                client.write(reply)
                await client.drain()

    def _alter(self, reply: bytes) -> bytes:
        """The bytes the client gets instead of `reply` under the current fault."""
        if self.fault is ProxyFault.PASS or self.unit_id not in (None, reply[6]):
            self.passed += 1
            return reply
        self.altered += 1
        if self.fault is ProxyFault.GARBAGE:
            return self._garbled(reply)
        if self.fault is ProxyFault.TRUNCATE:
            return reply[: len(reply) // 2]
        if self.fault is ProxyFault.SHORT:
            return _fewer_registers(reply)
        return b""  # DROP, or a reply still in flight as DISCONNECT began

    def _garbled(self, reply: bytes) -> bytes:
        if self.garbage is TcpGarbage.WRONG_TID:
            tid = (int.from_bytes(reply[:2], "big") + 1) % 0x10000
            return tid.to_bytes(2, "big") + reply[2:]
        if self.garbage is TcpGarbage.UNDECODABLE:
            return reply[:MBAP_HEADER] + bytes([UNASSIGNED_FUNCTION_CODE]) + reply[8:]
        noise = bytearray(self._random.randbytes(len(reply)))
        noise[4:6] = b"\xff\xff"  # an MBAP length no Modbus TCP frame can have
        return bytes(noise)


def _fewer_registers(reply: bytes) -> bytes:
    """A read reply re-framed with its last register left out; other replies pass unchanged."""
    if len(reply) < 9 or reply[7] not in (3, 4) or reply[8] < 4:
        return reply
    function_code, byte_count = reply[7], reply[8]
    pdu = bytes([function_code, byte_count - 2]) + reply[9 : 9 + byte_count - 2]
    return reply[:4] + (len(pdu) + 1).to_bytes(2, "big") + reply[6:7] + pdu


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    while data := await source.read(4096):
        sink.write(data)
        await sink.drain()


class RtuFault(StrEnum):
    PASS = "pass"
    CORRUPT_CRC = "corrupt_crc"  # one bit of the reply's CRC flipped
    DROP = "drop"  # no reply
    GARBAGE = "garbage"  # random bytes (line noise) before and after the reply


def rtu_reply_length(data: bytes) -> int | None:
    """Length of the RTU reply at the start of `data`: None if more bytes are needed, 0 if its
    function code is not one the relay knows (3, 4, 6, 16 and exception replies)."""
    if len(data) < 2:
        return None
    function_code = data[1]
    if function_code & 0x80:
        length = 5  # unit, function code, exception code, CRC
    elif function_code in (3, 4):
        if len(data) < 3:
            return None
        length = 5 + data[2]  # unit, function code, byte count, data, CRC
    elif function_code in (6, 16):
        length = 8  # unit, function code, address, value or count, CRC
    else:
        return 0
    return length if len(data) >= length else None


class RtuFaultRelay:
    """Forwards an RTU line between the agent's pty pair and the device's, mangling replies.

    Wiring, with two `hil.pty.PtyPair`s A and B: the agent opens A.agent_end, the relay opens
    A.device_end (`agent_side`) and B.agent_end (`device_side`), the device opens B.device_end.

    Replies are framed by parsing their length from the function code, not by the 3.5
    character silence: a pty does not keep the timing of the bytes written into it, so socat
    may deliver a frame in pieces or two frames in one read, and a timing framer would cut
    frames wrongly. The function codes the meters are read and written with are enough;
    bytes the relay cannot frame are passed on as they come. Requests are not framed at all.
    """

    def __init__(self, agent_side: str | Path, device_side: str | Path, *, seed: int = 1) -> None:
        self.agent_side = Path(agent_side)
        self.device_side = Path(device_side)
        self.fault = RtuFault.PASS
        self.unit_id: int | None = None  # None: every unit
        self.noise_before = 4
        self.noise_after = 4
        self.passed = 0
        self.altered = 0
        self._random = random.Random(seed)
        self._agent_fd = -1
        self._device_fd = -1
        self._replies = b""
        self._unsent: dict[int, bytes] = {}

    def set(
        self,
        fault: RtuFault,
        *,
        unit_id: int | None = None,
        noise_before: int = 4,
        noise_after: int = 4,
    ) -> None:
        """Switch the fault now; `noise_*` are the GARBAGE byte counts around the reply."""
        self.fault, self.unit_id = fault, unit_id
        self.noise_before, self.noise_after = noise_before, noise_after

    def clear(self) -> None:
        self.set(RtuFault.PASS)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._agent_fd = _open_raw(self.agent_side)
        self._device_fd = _open_raw(self.device_side)
        loop.add_reader(self._agent_fd, self._on_request_bytes)
        loop.add_reader(self._device_fd, self._on_reply_bytes)

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        for fd in (self._agent_fd, self._device_fd):
            if fd >= 0:
                loop.remove_reader(fd)
                loop.remove_writer(fd)
                os.close(fd)
        self._agent_fd = self._device_fd = -1
        self._unsent.clear()
        self._replies = b""

    def _on_request_bytes(self) -> None:
        if data := self._read(self._agent_fd):
            self._send(self._device_fd, data)

    def _on_reply_bytes(self) -> None:
        self._replies += self._read(self._device_fd)
        while self._replies:
            length = rtu_reply_length(self._replies)
            if length is None:
                return  # the rest of the frame is still on its way
            if length == 0:
                self._send(self._agent_fd, self._replies)  # cannot frame it: pass it on
                self._replies = b""
                return
            frame, self._replies = self._replies[:length], self._replies[length:]
            if out := self._alter(frame):
                self._send(self._agent_fd, out)

    def _alter(self, frame: bytes) -> bytes:
        if self.fault is RtuFault.PASS or self.unit_id not in (None, frame[0]):
            self.passed += 1
            return frame
        self.altered += 1
        if self.fault is RtuFault.CORRUPT_CRC:
            return frame[:-1] + bytes([frame[-1] ^ 0x01])
        if self.fault is RtuFault.GARBAGE:
            before = self._random.randbytes(self.noise_before)
            after = self._random.randbytes(self.noise_after)
            return before + frame + after
        return b""  # DROP

    def _read(self, fd: int) -> bytes:
        """What the line has for us; a line whose other end is gone is no longer watched."""
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return b""
        except OSError:
            data = b""  # EIO: socat has closed the pty
        if not data:
            asyncio.get_running_loop().remove_reader(fd)
        return data

    def _send(self, fd: int, data: bytes) -> None:
        """Write without blocking the loop; what the pty cannot take now goes when it can."""
        if fd in self._unsent:
            self._unsent[fd] += data
            return
        written = _write(fd, data)
        if written < len(data):
            self._unsent[fd] = data[written:]
            asyncio.get_running_loop().add_writer(fd, self._flush, fd)

    def _flush(self, fd: int) -> None:
        data = self._unsent.pop(fd)
        written = _write(fd, data)
        if written < len(data):
            self._unsent[fd] = data[written:]
        else:
            asyncio.get_running_loop().remove_writer(fd)


def _open_raw(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    return fd


def _write(fd: int, data: bytes) -> int:
    """Bytes taken by the pty; all of them if its other end is gone (they are lost anyway)."""
    try:
        return os.write(fd, data)
    except BlockingIOError:
        return 0
    except OSError:
        return len(data)
