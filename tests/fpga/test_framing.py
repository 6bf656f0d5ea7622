"""Frame format (fpga.framing) and the host link (fpga.host) without hardware."""

from __future__ import annotations

import random
import sys

import pytest

from fpga.framing import (MAX_PAYLOAD, OVERHEAD, SYNC, Frame, FrameDecoder, FrameError,
                          FrameType, crc8, crc16, decode_frame, encode_frame, pack_records,
                          record_bytes, unpack_records)
from fpga.host import HostLink, LinkError, require_pyserial


def test_crc_check_values():
    # the catalogued check values of CRC-16/CCITT-FALSE and CRC-8/SMBUS
    assert crc16(b"123456789") == 0x29B1
    assert crc8(b"123456789") == 0xF4


def test_layout_of_an_empty_and_a_short_frame():
    f = encode_frame(FrameType.PING, b"")
    assert len(f) == OVERHEAD == 7
    assert f[0] == SYNC and f[1] == 0x04 and f[2:4] == b"\x00\x00"
    assert f[4] == crc8(b"\x04\x00\x00")
    assert f[5:] == crc16(f[1:5]).to_bytes(2, "little")
    g = encode_frame(FrameType.ROWS, bytes(k % 256 for k in range(300)))
    assert g[2:4] == (300).to_bytes(2, "little") and len(g) == 307


def test_roundtrip_random():
    rng = random.Random(3)
    for _ in range(200):
        t = rng.randrange(256)
        pl = bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
        assert decode_frame(encode_frame(t, pl)) == Frame(t, pl)


def test_every_single_bit_flip_is_detected():
    f = encode_frame(FrameType.INSTR, b"\x01\x02\xa5\xff\x00")
    for i in range(len(f) * 8):
        bad = bytearray(f)
        bad[i // 8] ^= 1 << (i % 8)
        with pytest.raises(FrameError):
            decode_frame(bytes(bad))


def test_limits():
    encode_frame(1, bytes(MAX_PAYLOAD))
    with pytest.raises(FrameError, match="too long"):
        encode_frame(1, bytes(MAX_PAYLOAD + 1))
    with pytest.raises(FrameError, match="not a byte"):
        encode_frame(256, b"")
    with pytest.raises(FrameError, match="shorter"):
        decode_frame(b"\xa5\x01")


def test_stream_decoder_any_chunking_and_resync():
    rng = random.Random(5)
    frames = [Frame(rng.choice(list(FrameType)), bytes(rng.choice([SYNC, 0, rng.randrange(256)])
                                                       for _ in range(rng.randint(0, 20))))
              for _ in range(30)]
    good = [f.encode() for f in frames]
    # garbage (with SYNC bytes) before, between; one corrupted frame in the middle
    corrupted = bytearray(encode_frame(0x02, b"lost frame"))
    corrupted[-3] ^= 0x10
    wire = b"\x00\xa5\x13" + b"".join(good[:15]) + bytes(corrupted) + b"\xa5" + b"".join(good[15:])
    for chunk in (1, 2, 7, 64, len(wire)):
        dec = FrameDecoder()
        out = []
        for k in range(0, len(wire), chunk):
            out += dec.feed(wire[k:k + chunk])
        assert out == frames, f"chunk size {chunk}"
        assert dec.bad_frames >= 1 and dec.pending == 0


def test_decoder_holds_a_partial_frame():
    f = encode_frame(1, b"abc")
    dec = FrameDecoder()
    assert dec.feed(f[:-1]) == [] and dec.pending == len(f) - 1
    assert dec.feed(f[-1:]) == [Frame(1, b"abc")]


class FakePort:
    """In-memory port: what is written comes back (a loopback cable)."""

    def __init__(self):
        self.buf = bytearray()

    def write(self, data):
        self.buf += data
        return len(data)

    def read(self, n):
        out, self.buf = bytes(self.buf[:n]), self.buf[n:]
        return out


class PongPort(FakePort):
    """Answers PING with PONG like the device will."""

    def write(self, data):
        f = decode_frame(data)
        if f.type == FrameType.PING:
            self.buf += encode_frame(FrameType.PONG, f.payload)
        return len(data)


def test_host_link_send_recv_and_ping():
    link = HostLink(FakePort())
    link.send(FrameType.ROWS, b"\x00\x10\x00xyz")
    assert link.recv(timeout=0.5) == Frame(FrameType.ROWS, b"\x00\x10\x00xyz")
    with pytest.raises(LinkError, match="no frame"):
        link.recv(timeout=0.05)
    assert HostLink(PongPort()).ping(b"hello") >= 0
    with pytest.raises(LinkError, match="PING answered"):
        HostLink(FakePort()).ping(b"hello")   # loopback answers PING, not PONG


def test_missing_pyserial_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "serial", None)   # import serial -> ImportError
    with pytest.raises(LinkError, match="pip install pyserial"):
        require_pyserial()
    with pytest.raises(LinkError, match="pyserial"):
        HostLink.open("/dev/ttyUSB0")


def test_records():
    assert record_bytes(24) == 3 and record_bytes(62) == 8 and record_bytes(1) == 1
    vals = [0, 1, (1 << 62) - 1, 0x123456789]
    data = pack_records(vals, 62)
    assert len(data) == 32 and data[8:16] == (1).to_bytes(8, "little")
    assert unpack_records(data, 62) == vals
    with pytest.raises(FrameError, match="does not fit"):
        pack_records([1 << 62], 62)
    with pytest.raises(FrameError, match="whole number"):
        unpack_records(data[:-1], 62)
    with pytest.raises(FrameError, match="padding"):
        unpack_records(b"\xff" * 8, 62)


def test_top_record_widths_fit_a_frame():
    """Every stream record of the fpga preset's top fits (many times) in one frame."""
    from hw.config import preset
    from hw.isa import instruction_layout, mask_record_layout
    from hw.top_status import result_layout, row_layout
    cfg = preset("fpga")
    for layout in (instruction_layout(cfg), mask_record_layout(cfg), row_layout(cfg),
                   result_layout(cfg)):
        assert 1 <= record_bytes(layout.size) <= MAX_PAYLOAD // 4
