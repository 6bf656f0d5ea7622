"""cocotb testbench of :class:`fpga.frame_rx.FrameReceiver`: a byte stream of
good frames, garbage and corrupted frames in, random valid gaps and random
``o.ready``; the frames out must be exactly the good ones, bit-exact, and
every corrupted frame must pulse ``bad_frame`` once.

Parameters: ``max_payload`` (of the DUT), ``frames``, ``seed``.
"""

from __future__ import annotations

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge

from fpga.framing import SYNC, FrameDecoder, crc8, crc16, encode_frame
from sim.runner import tb_params


def _no_sync(rng, n):
    return bytes(rng.choice([b for b in range(256) if b != SYNC]) for _ in range(n))


def _raw_frame(ftype, payload, length=None):
    """A frame with a (possibly false) LENGTH field but correct CRCs."""
    length = len(payload) if length is None else length
    hdr = bytes([ftype, length & 0xFF, length >> 8])
    body = hdr + bytes([crc8(hdr)]) + payload
    c = crc16(body)
    return bytes([SYNC]) + body + bytes([c & 0xFF, c >> 8])


def build_stream(rng, n_frames, max_payload):
    """(wire bytes, expected good frames, number of corrupted frames)."""
    wire, good, bad = bytearray(), [], 0
    # directed: a stray SYNC right before a frame (its SYNC is one of the 4
    # bytes the false header consumed: found only by re-parsing them)
    wire += bytes([SYNC]) + encode_frame(0x01, b"\x10\x20\x30")
    good.append((0x01, b"\x10\x20\x30"))
    for k in range(n_frames):
        kind = rng.random()
        if kind < 0.15:                       # payload bit flip: frame CRC fails
            pl = _no_sync(rng, rng.randint(1, max_payload))
            f = bytearray(encode_frame(0x03, pl))
            i = rng.randrange(5, 5 + len(pl))
            f[i] ^= 1 << rng.randrange(8)
            if f[i] == SYNC:
                f[i] ^= 0x01
            wire += f
            bad += 1
        elif kind < 0.25:                     # header bit flip: header CRC fails
            f = bytearray(encode_frame(0x01, _no_sync(rng, rng.randint(0, max_payload))))
            f[rng.randrange(1, 5)] ^= 1 << rng.randrange(8)
            if SYNC in f[1:]:
                continue
            wire += f
            bad += 1
        elif kind < 0.30:                     # longer than the DUT's buffer
            wire += _raw_frame(0x03, _no_sync(rng, max_payload + 3))
            bad += 1
        else:
            t = rng.choice([0x01, 0x02, 0x03, 0x04, 0x05, 0x06])
            n = rng.choice([0, 1, max_payload, rng.randint(0, max_payload)])
            pl = bytes(rng.choice([SYNC, 0, 0xFF, rng.randrange(256)]) for _ in range(n))
            wire += encode_frame(t, pl)
            good.append((t, pl))
        if rng.random() < 0.3:
            wire += _no_sync(rng, rng.randint(1, 5))      # garbage between frames
    return bytes(wire), good, bad


@cocotb.test()
async def frames_in_frames_out(dut):
    p = tb_params()
    rng = random.Random(p["seed"])
    wire, expected, n_bad = build_stream(rng, p["frames"], p["max_payload"])
    # cross-check the stream against the Python decoder (the reference)
    dec = FrameDecoder(p["max_payload"])
    ref = [(f.type, f.payload) for f in dec.feed(wire)]
    assert ref == expected, "test stream is not what the Python decoder sees"
    # false SYNCs (in CRC or header bytes) add failed header checks: the
    # reference decoder's count is the expected number of bad_frame pulses
    assert dec.bad_frames >= n_bad

    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    dut.i__valid.value = 0
    dut.o__ready.value = 0
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0

    beats, goods, bads = [], 0, 0
    pos, valid, drove_valid, ready_before = 0, False, False, 0
    idle_cycles = 0
    budget = 20 * len(wire) + 2000
    for _ in range(budget):
        await FallingEdge(dut.clk)
        # the DUT has no combinational path from its inputs to i.ready, o.valid,
        # o.payload or the pulses: what we read between two rising edges is
        # what the next rising edge sees
        goods += int(dut.good_frame.value)
        bads += int(dut.bad_frame.value)
        if drove_valid and ready_before:          # taken at the edge just passed
            pos += 1
            valid = False
        if not valid and pos < len(wire) and rng.random() < 0.8:
            dut.i__payload.value = wire[pos]
            valid = True
        dut.i__valid.value = int(valid)
        drove_valid, ready_before = valid, int(dut.i__ready.value)
        o_ready = rng.random() < 0.7
        dut.o__ready.value = int(o_ready)
        if o_ready and int(dut.o__valid.value):   # taken at the next edge
            v = int(dut.o__payload.value)
            beats.append((v & 0xFF, v >> 8 & 0xFF, v >> 16 & 1, v >> 17 & 1, v >> 18 & 1))
        if pos >= len(wire) and not valid:
            idle_cycles += 1
            if idle_cycles > 200:
                break
    assert pos == len(wire), f"only {pos} of {len(wire)} bytes accepted"

    frames, cur = [], None
    for data, ftype, first, last, empty in beats:
        if first:
            assert cur is None, "first beat inside a frame"
            cur = (ftype, bytearray())
        assert cur is not None and cur[0] == ftype, "beat outside a frame / type changed"
        if empty:
            assert first and last and data == 0
        else:
            cur[1].append(data)
        if last:
            frames.append((cur[0], bytes(cur[1])))
            cur = None
    assert cur is None, "stream ended inside a frame"
    assert len(frames) == len(expected), f"{len(frames)} frames out, {len(expected)} expected"
    for k, (got, exp) in enumerate(zip(frames, expected)):
        assert got == exp, f"frame {k}: got type 0x{got[0]:02x} {got[1].hex()}, " \
                           f"expected 0x{exp[0]:02x} {exp[1].hex()}"
    assert goods == len(expected), f"good_frame pulsed {goods} times"
    assert bads == dec.bad_frames, (f"bad_frame pulsed {bads} times, the reference decoder "
                                    f"failed {dec.bad_frames} checks ({n_bad} corrupted frames)")
    dut._log.info(f"{len(wire)} bytes: {len(expected)} good frames out bit-exact, "
                  f"{n_bad} corrupted frames dropped, {bads} failed checks")
