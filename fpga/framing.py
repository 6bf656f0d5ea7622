"""The host-link frame format (specified in ``docs/host-link.md``).

Pure Python, no dependencies: used by the host (:mod:`fpga.host`), the
testbenches and, as the reference, by the hardware frame handling.

Frame on the wire (bytes, multi-byte fields little-endian)::

    0      1      2..3     4      5 .. 5+L-1   5+L .. 6+L
    SYNC   TYPE   LENGTH   HCRC   PAYLOAD      CRC16
    0xA5          L        crc8(TYPE, LENGTH)  crc16(TYPE, LENGTH, HCRC, PAYLOAD)

* ``L`` = payload bytes, 0 .. :data:`MAX_PAYLOAD`;
* ``HCRC``: CRC-8 (poly 0x07, init 0x00, no reflection: "CRC-8/SMBUS") of
  TYPE and the two LENGTH bytes, so a receiver rejects a corrupted header
  at once instead of waiting for a bogus length;
* ``CRC16``: CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection,
  no final xor; check value 0x29B1 for b"123456789") of every byte after
  SYNC up to the end of the payload.

A receiver scans for SYNC.  After a bad header CRC or an oversize length it
discards that SYNC byte and rescans from the next byte; after a bad frame
CRC (the header passed its CRC, so it delimits the frame) it discards the
whole frame.  The hardware receiver (:mod:`fpga.frame_rx`) does the same.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["SYNC", "MAX_PAYLOAD", "HEADER_LEN", "OVERHEAD", "FrameType", "Frame",
           "FrameError", "crc8", "crc16", "encode_frame", "decode_frame", "FrameDecoder",
           "record_bytes", "pack_records", "unpack_records"]

SYNC = 0xA5
#: largest payload in bytes (bounds the damage of a corrupted length)
MAX_PAYLOAD = 4096
#: SYNC, TYPE, LENGTH (2), HCRC
HEADER_LEN = 5
#: bytes per frame besides the payload
OVERHEAD = HEADER_LEN + 2


class FrameType(enum.IntEnum):
    """Frame types.  Bit 7 clear: host -> device; bit 7 set: device -> host.

    The record frames carry records of the accelerator top's streams
    (``hw.top.SaloTop``), each padded to whole bytes: see
    :func:`pack_records` and ``docs/host-link.md``.
    """

    INSTR = 0x01       #: ``instructions`` stream words
    MASK = 0x02        #: ``masks`` stream records
    ROWS = 0x03        #: ``rows_in`` stream records (Q/K/V rows)
    PING = 0x04        #: link test: the device answers PONG with the same payload
    CONTROL = 0x05     #: head_dim (2 bytes), watchdog_limit (4 bytes)
    STATUS_REQ = 0x06  #: ask for a STATUS frame (empty payload)
    ACK = 0x81         #: the type of the accepted frame (1 byte), status (1 byte)
    RESULT = 0x82      #: ``results`` stream records
    STATUS = 0x83      #: busy, done, error code (1 byte each), then the counters
    PONG = 0x84        #: answer to PING, payload echoed
    ERROR = 0xFF       #: error code (1 byte) and the offending type (1 byte)


class FrameError(ValueError):
    """A frame that cannot be encoded or decoded (reason in the message)."""


@dataclass(frozen=True)
class Frame:
    type: int
    payload: bytes

    def __post_init__(self):
        if not (0 <= int(self.type) <= 0xFF):
            raise FrameError(f"frame type {self.type!r} is not a byte")
        if len(self.payload) > MAX_PAYLOAD:
            raise FrameError(f"payload of {len(self.payload)} bytes is too long: "
                             f"allowed 0..{MAX_PAYLOAD}")

    def encode(self) -> bytes:
        return encode_frame(self.type, self.payload)


def crc8(data: bytes, crc: int = 0x00) -> int:
    """CRC-8/SMBUS: poly 0x07, init 0x00, MSB first, no final xor."""
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, MSB first, no final xor."""
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def encode_frame(ftype: int, payload: bytes = b"") -> bytes:
    """The wire bytes of one frame."""
    payload = bytes(payload)
    Frame(int(ftype), payload)  # validates
    hdr = bytes([int(ftype), len(payload) & 0xFF, len(payload) >> 8])
    hdr += bytes([crc8(hdr)])
    body = hdr + payload
    c = crc16(body)
    return bytes([SYNC]) + body + bytes([c & 0xFF, c >> 8])


def decode_frame(data: bytes) -> Frame:
    """Decode exactly one frame (no leading or trailing bytes); raises FrameError."""
    data = bytes(data)
    if len(data) < OVERHEAD:
        raise FrameError(f"{len(data)} bytes is shorter than an empty frame ({OVERHEAD})")
    if data[0] != SYNC:
        raise FrameError(f"first byte 0x{data[0]:02x} is not SYNC 0x{SYNC:02x}")
    if crc8(data[1:4]) != data[4]:
        raise FrameError("header CRC mismatch")
    length = data[2] | data[3] << 8
    if length > MAX_PAYLOAD:
        raise FrameError(f"length {length} exceeds MAX_PAYLOAD {MAX_PAYLOAD}")
    if len(data) != OVERHEAD + length:
        raise FrameError(f"frame of {len(data)} bytes, header says {OVERHEAD + length}")
    body = data[1:HEADER_LEN + length]
    got = data[-2] | data[-1] << 8
    if crc16(body) != got:
        raise FrameError("frame CRC mismatch")
    return Frame(data[1], data[HEADER_LEN:HEADER_LEN + length])


class FrameDecoder:
    """Incremental decoder: :meth:`feed` bytes in any chunking, get whole frames.

    Counters: ``dropped_bytes`` (bytes skipped while resynchronizing) and
    ``bad_frames`` (headers or frames that failed a check).
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD):
        #: longer frames are rejected (a receiver with a smaller buffer)
        self.max_payload = min(max_payload, MAX_PAYLOAD)
        self._buf = bytearray()
        self.dropped_bytes = 0
        self.bad_frames = 0

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames = []
        buf = self._buf
        while True:
            start = buf.find(SYNC)
            if start < 0:
                self.dropped_bytes += len(buf)
                buf.clear()
                break
            if start:
                self.dropped_bytes += start
                del buf[:start]
            if len(buf) < HEADER_LEN:
                break
            length = buf[2] | buf[3] << 8
            if crc8(bytes(buf[1:4])) != buf[4] or length > self.max_payload:
                self.bad_frames += 1
                self.dropped_bytes += 1
                del buf[:1]
                continue
            total = OVERHEAD + length
            if len(buf) < total:
                break
            got = buf[total - 2] | buf[total - 1] << 8
            if crc16(bytes(buf[1:HEADER_LEN + length])) != got:
                # the header passed its CRC: trust it to delimit the frame
                self.bad_frames += 1
                self.dropped_bytes += total
                del buf[:total]
                continue
            frames.append(Frame(buf[1], bytes(buf[HEADER_LEN:HEADER_LEN + length])))
            del buf[:total]
        return frames

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buf)


def record_bytes(bits: int) -> int:
    """Bytes of one ``bits``-wide record on the wire: ceil(bits / 8)."""
    if bits < 1:
        raise FrameError(f"record width {bits} is invalid: allowed >= 1 bit")
    return (bits + 7) // 8


def pack_records(values, bits: int) -> bytes:
    """Records (unsigned ints < 2**bits, e.g. ``Const.cast(view).value`` of a
    ``lib.data`` layout) -> payload bytes, each record little-endian
    (bit 0 of the record = bit 0 of its first byte), padding bits 0."""
    n = record_bytes(bits)
    out = bytearray()
    for v in values:
        v = int(v)
        if not 0 <= v < 1 << bits:
            raise FrameError(f"record value {v} does not fit {bits} bits")
        out += v.to_bytes(n, "little")
    return bytes(out)


def unpack_records(payload: bytes, bits: int) -> list[int]:
    """Inverse of :func:`pack_records`; the payload must hold whole records and
    zero padding bits."""
    n = record_bytes(bits)
    if len(payload) % n:
        raise FrameError(f"payload of {len(payload)} bytes is not a whole number of "
                         f"{n}-byte records")
    vals = [int.from_bytes(payload[k:k + n], "little") for k in range(0, len(payload), n)]
    for v in vals:
        if v >> bits:
            raise FrameError(f"record 0x{v:x} has non-zero padding above bit {bits - 1}")
    return vals
