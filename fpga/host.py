"""Host side of the serial link: frames (:mod:`fpga.framing`) over a UART.

pyserial is optional (not a dependency of salo-gen): it is imported only
when a serial port is opened, with a clear error if it is missing.  Any
object with ``write(bytes)`` and ``read(n) -> bytes`` (honouring a timeout)
can be used instead, e.g. for tests::

    link = HostLink.open("/dev/ttyUSB0", baud=115200)   # ULX3S FTDI port
    link.send(FrameType.PING, b"hello")
    print(link.recv(timeout=1.0))
"""

from __future__ import annotations

import time

from fpga.framing import Frame, FrameDecoder, FrameType, encode_frame

__all__ = ["HostLink", "LinkError", "require_pyserial"]


class LinkError(RuntimeError):
    """The serial link failed: no pyserial, no port, timeout, unexpected answer."""


def require_pyserial():
    """Import and return the ``serial`` module (pyserial) or raise LinkError."""
    try:
        import serial  # noqa: F401
    except ImportError:
        raise LinkError("talking to a board needs pyserial, which is not installed: "
                        "pip install pyserial") from None
    return serial


class HostLink:
    """Send and receive frames over a byte port (pyserial ``Serial`` or alike)."""

    def __init__(self, port):
        if not (hasattr(port, "write") and hasattr(port, "read")):
            raise TypeError("port needs write(bytes) and read(n) methods")
        self.port = port
        self.decoder = FrameDecoder()
        self._frames: list[Frame] = []

    @classmethod
    def open(cls, device: str, baud: int = 115200, timeout: float = 0.05) -> "HostLink":
        """Open serial ``device`` at ``baud`` 8N1 without flow control."""
        serial = require_pyserial()
        try:
            port = serial.Serial(device, baudrate=baud, bytesize=8, parity="N", stopbits=1,
                                 timeout=timeout, rtscts=False, xonxoff=False)
        except (serial.SerialException, OSError) as e:
            raise LinkError(f"cannot open serial port {device!r}: {e}") from None
        return cls(port)

    def send(self, ftype: int, payload: bytes = b"") -> int:
        """Encode and write one frame; returns the number of bytes written."""
        data = encode_frame(ftype, payload)
        self.port.write(data)
        return len(data)

    def recv(self, timeout: float = 1.0) -> Frame:
        """The next valid frame (corrupted ones are skipped and counted in
        ``self.decoder``); raises LinkError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not self._frames:
            if time.monotonic() > deadline:
                raise LinkError(f"no frame within {timeout} s (decoder dropped "
                                f"{self.decoder.dropped_bytes} bytes, "
                                f"{self.decoder.bad_frames} bad frames)")
            chunk = self.port.read(max(1, getattr(self.port, "in_waiting", 0) or 1))
            if chunk:
                self._frames += self.decoder.feed(chunk)
        return self._frames.pop(0)

    def ping(self, payload: bytes = b"salo", timeout: float = 1.0) -> float:
        """Send PING, wait for PONG with the same payload; returns the round trip in s."""
        t = time.monotonic()
        self.send(FrameType.PING, payload)
        f = self.recv(timeout)
        if f.type != FrameType.PONG or f.payload != bytes(payload):
            raise LinkError(f"PING answered with type 0x{f.type:02x}, {len(f.payload)} bytes")
        return time.monotonic() - t

    def close(self):
        close = getattr(self.port, "close", None)
        if close:
            close()
