"""The serial line to one or more Pylontech packs: request out, one reply frame back.

The port is opened with pyserial, which on POSIX leaves the descriptor non-blocking; reads
and writes then go through the event loop's `add_reader`/`add_writer` on that descriptor
rather than through worker threads. A thread blocked in `read()` cannot be cancelled, so a
stopping agent would wait out the timeout and a late reply could land in the next exchange;
on the loop, a timeout or a cancellation simply stops watching the descriptor. Only `open()`
(which may sleep in a USB driver) runs in a thread. The agent targets Linux gateways, where
the selector event loop supports ttys; there is no Windows path.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import termios

import serial

from agent.config import SerialBus

log = logging.getLogger(__name__)

SOI = b"~"
EOI = b"\r"
MAX_FRAME_BYTES = 4096  # far above the longest reply; beyond it the line is babbling
_READ_CHUNK = 1024


def take_frame(buffer: bytearray) -> bytes | None:
    """Remove and return the first complete '~'...CR frame, dropping stray bytes before it.

    A '~' cannot occur inside a frame (all hex ASCII), so a second '~' before the CR means
    the first frame was cut short: the fragment is dropped and the newer start kept.
    """
    while True:
        end = buffer.find(EOI)
        start = buffer.rfind(SOI, 0, len(buffer) if end < 0 else end)
        if start < 0:
            if end < 0:
                buffer.clear()
                return None
            del buffer[: end + 1]  # a CR with no '~' before it: noise, look further
            continue
        del buffer[:start]
        if end < 0:
            if len(buffer) > MAX_FRAME_BYTES:
                buffer.clear()
            return None
        end -= start
        frame = bytes(buffer[: end + 1])
        del buffer[: end + 1]
        return frame


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _describe(error: Exception) -> str:
    """The OS's words for why the port would not open: 'No such file or directory', ..."""
    code = getattr(error, "errno", None)
    if code in (errno.EAGAIN, errno.EWOULDBLOCK):
        return "busy: another program holds its lock"  # pyserial's exclusive flock failed
    if isinstance(code, int):
        return os.strerror(code)
    return str(error)


class PylontechLink:
    """One serial port, one exchange at a time (the bus worker owns it)."""

    def __init__(self, bus: SerialBus) -> None:
        self.bus = bus
        self._port: serial.Serial | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._buffer = bytearray()
        self._reply: asyncio.Future[bytes] | None = None
        self._open_failed = False  # log a failing port once, not on every retry

    @property
    def connected(self) -> bool:
        return self._port is not None

    async def connect(self) -> bool:
        """Open the port; False (and one log line) when it is missing, busy or refused."""
        if self._port is not None:
            return True
        try:
            port = await asyncio.to_thread(self._open)
        except (serial.SerialException, OSError, ValueError) as exc:
            level = logging.DEBUG if self._open_failed else logging.WARNING
            reason = _describe(exc)
            log.log(
                level, "%s: cannot open serial port %s: %s", self.bus.name, self.bus.port, reason
            )
            self._open_failed = True
            return False
        if self._open_failed:
            log.info("%s: serial port %s is open again", self.bus.name, self.bus.port)
        self._open_failed = False
        self._port = port
        self._loop = asyncio.get_running_loop()
        return True

    def _open(self) -> serial.Serial:
        return serial.Serial(
            self.bus.port,
            baudrate=self.bus.baudrate,
            parity=self.bus.parity.value,
            stopbits=self.bus.stopbits,
            bytesize=self.bus.bytesize,
            timeout=0,
            write_timeout=0,
            exclusive=True,  # a second program on the same RS-485 line garbles both
        )

    def close(self) -> None:
        port, self._port = self._port, None
        if port is None:
            return
        if self._loop is not None:
            fd = port.fileno()
            self._loop.remove_reader(fd)  # a no-op once the loop is closed
            self._loop.remove_writer(fd)
        if self._reply is not None and not self._reply.done():
            self._reply.set_exception(ConnectionError(f"{self.bus.port} was closed"))
        with contextlib.suppress(OSError):  # a port that already failed may fail closing too
            port.close()

    async def exchange(self, frame: bytes, timeout_s: float) -> bytes:
        """Send one request and return the first complete reply frame, '~' to CR.

        Raises TimeoutError when none arrives within `timeout_s`, ConnectionError/OSError when
        the port is closed or fails. Input left over from an earlier, late reply is discarded
        first, so it cannot be taken for this request's answer.
        """
        port = self._port
        if port is None:
            raise ConnectionError(f"{self.bus.port} is not open")
        if self._reply is not None:
            raise RuntimeError("one exchange at a time on a serial line")
        loop = asyncio.get_running_loop()
        fd = port.fileno()
        try:
            port.reset_input_buffer()
        except termios.error as exc:  # not an OSError: an unplugged adapter fails tcflush
            raise ConnectionError(f"{self.bus.port}: {exc}") from exc
        self._drain(fd)
        self._buffer.clear()
        reply: asyncio.Future[bytes] = loop.create_future()
        self._reply = reply
        loop.add_reader(fd, self._on_readable, fd)
        try:
            async with asyncio.timeout(timeout_s):
                await self._write_all(loop, fd, frame)
                return await reply
        finally:
            self._reply = None
            if self._port is port:
                loop.remove_reader(fd)

    @staticmethod
    def _drain(fd: int) -> None:
        """Read away whatever the kernel already holds (tcflush misses bytes in flight)."""
        try:
            while os.read(fd, _READ_CHUNK):
                pass
        except BlockingIOError:
            pass

    async def _write_all(self, loop: asyncio.AbstractEventLoop, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(fd, view)
            except BlockingIOError:
                written = 0
            view = view[written:]
            if view:
                writable: asyncio.Future[None] = loop.create_future()
                loop.add_writer(fd, _resolve, writable)
                try:
                    await writable
                finally:
                    loop.remove_writer(fd)

    def _on_readable(self, fd: int) -> None:
        reply = self._reply
        error: OSError | None = None
        try:
            chunk = os.read(fd, _READ_CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:  # EIO: the adapter was unplugged or the pty's far end went away
            chunk, error = b"", exc
        if not chunk and error is None:
            error = ConnectionError(f"{self.bus.port}: end of file")
        if reply is None or reply.done():
            return
        if error is not None:
            reply.set_exception(error)
            return
        self._buffer += chunk
        frame = take_frame(self._buffer)
        if frame is not None:
            reply.set_result(frame)
