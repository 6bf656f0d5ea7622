"""Hardware frame receiver: bytes (e.g. from :class:`fpga.uart.UartRx`) ->
verified frames (format: :mod:`fpga.framing`, ``docs/host-link.md``).

:class:`FrameReceiver` checks SYNC, the header CRC-8, LENGTH <= ``max_payload``
and the frame CRC-16; only then does it play the payload out, so nothing of
a corrupted frame ever reaches the accelerator.  The payload is stored in a
``max_payload``-byte memory while it arrives (ECP5: 2 DP16KD for 4 KiB).

Ports:

* ``i``: stream of bytes in.  ``i.ready`` is high except while a verified
  frame is being played out or header bytes are replayed (upstream, the UART FIFO holds what arrives
  meanwhile; the host link is stop-and-wait, see ``docs/host-link.md``).
* ``o``: stream of :data:`BEAT` = (``data``, ``type``, ``first``, ``last``,
  ``empty``): one beat per payload byte of a good frame, ``first``/``last``
  on its first/last byte; a frame with no payload gives one beat with
  ``empty = first = last = 1``.  ``o.payload`` and ``o.valid`` are registers.
* ``good_frame`` / ``bad_frame``: one-cycle pulses when a frame's CRC-16
  matched / when a header or frame check failed.

Resynchronization is that of :class:`fpga.framing.FrameDecoder` (the
reference, compared byte for byte in ``tests/fpga/test_frame_rx.py``):
after a bad header CRC or an oversize LENGTH the 4 bytes after SYNC are
parsed again (a 4-byte replay queue), so a frame starting there is found;
after a bad frame CRC (the header was good, so it delimits the frame) the
search resumes after the frame's last byte.

Latency: the first payload beat is valid 2 cycles after the cycle in which
the last CRC byte was accepted; then one beat per cycle while ``o.ready``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from fpga.framing import MAX_PAYLOAD, SYNC

__all__ = ["FrameReceiver", "BEAT", "crc8_update", "crc16_update"]

BEAT = data.StructLayout({"data": 8, "type": 8, "first": 1, "last": 1, "empty": 1})


def _crc_matrix(width: int, poly: int):
    """For a byte-wise MSB-first CRC: for each output bit, the (crc bits, byte
    bits) whose XOR it is (the CRC is linear in both), found by running the
    bitwise algorithm on sets of input-bit names."""
    # state bit k = set of inputs ("c", i) / ("b", j) whose XOR it is
    c = [{("c", k)} for k in range(width)]
    for j in range(8):                       # crc ^= byte << (width - 8)
        c[width - 8 + j] = c[width - 8 + j] ^ {("b", j)}
    for _ in range(8):
        top = c[width - 1]
        c = [set()] + c[:-1]                 # shift left
        for k in range(width):
            if poly >> k & 1:
                c[k] = c[k] ^ top
    return c


def _crc_update(crc, byte, width, poly):
    out = []
    for terms in _crc_matrix(width, poly):
        bits = [crc[i] if kind == "c" else byte[i] for kind, i in sorted(terms)]
        x = bits[0]
        for b in bits[1:]:
            x = x ^ b
        out.append(x)
    return Cat(*out)


def crc8_update(crc, byte):
    """Amaranth expression: CRC-8/SMBUS (poly 0x07) after one more byte
    (flat XOR per bit, from :func:`_crc_matrix`)."""
    return _crc_update(crc, byte, 8, 0x07)


def crc16_update(crc, byte):
    """Amaranth expression: CRC-16/CCITT-FALSE (poly 0x1021) after one more byte."""
    return _crc_update(crc, byte, 16, 0x1021)


class FrameReceiver(wiring.Component):
    """See the module docstring."""

    def __init__(self, max_payload: int = MAX_PAYLOAD):
        if not 1 <= max_payload <= 0xFFFF:
            raise ValueError(f"max_payload = {max_payload} is invalid: allowed 1..65535")
        self.max_payload = max_payload
        super().__init__({"i": In(stream.Signature(8)), "o": Out(stream.Signature(BEAT)),
                          "good_frame": Out(1), "bad_frame": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=8, depth=self.max_payload, init=[])
        wr = mem.write_port()
        rd = mem.read_port(transparent_for=())

        ftype = Signal(8, name="frame_type")
        length = Signal(16, name="frame_length")
        count = Signal(16, name="byte_count")
        hcrc = Signal(8, name="hcrc")
        fcrc = Signal(16, name="fcrc", init=0xFFFF)
        crc_lo = Signal(8, name="crc_lo")
        rd_idx = Signal(16, name="rd_idx")      # next address to read
        # the beat's fields beside rd.data (the read port's output register)
        b_type = Signal(8, name="beat_type")
        b_first = Signal(name="beat_first")
        b_last = Signal(name="beat_last")
        b_empty = Signal(name="beat_empty")
        m.d.comb += self.o.payload.eq(Cat(Mux(b_empty, 0, rd.data), b_type, b_first, b_last,
                                          b_empty))

        # Replay queue: after a bad header the 4 bytes after SYNC are parsed
        # again (the byte after SYNC may start the real frame).  It is empty
        # whenever a header fails (see the module docstring), so 4 bytes suffice.
        rq = Signal(32, name="replay")
        rq_n = Signal(range(5), name="replay_count")
        hdr = Signal(24, name="header_bytes")
        ready = Signal(name="parser_ready")
        byte = Signal(8, name="byte")
        m.d.comb += [byte.eq(Mux(rq_n != 0, rq[:8], self.i.payload)),
                     self.i.ready.eq(ready & (rq_n == 0))]
        take = Signal(name="take")
        m.d.comb += take.eq(ready & ((rq_n != 0) | self.i.valid))
        with m.If(take & (rq_n != 0)):
            m.d.sync += [rq.eq(rq >> 8), rq_n.eq(rq_n - 1)]
        m.d.sync += [self.good_frame.eq(0), self.bad_frame.eq(0)]
        m.d.comb += [wr.addr.eq(count), wr.data.eq(byte), rd.addr.eq(rd_idx), rd.en.eq(0)]

        with m.FSM(name="frame_rx"):
            with m.State("HUNT"):
                m.d.comb += ready.eq(1)
                with m.If(take & (byte == SYNC)):
                    m.d.sync += [hcrc.eq(0), fcrc.eq(0xFFFF)]
                    m.next = "TYPE"
            for k, (state, nxt, target) in enumerate((("TYPE", "LEN0", ftype),
                                                       ("LEN0", "LEN1", length[:8]),
                                                       ("LEN1", "HCRC", length[8:]))):
                with m.State(state):
                    m.d.comb += ready.eq(1)
                    with m.If(take):
                        m.d.sync += [target.eq(byte), hdr[8 * k:8 * k + 8].eq(byte),
                                     hcrc.eq(crc8_update(hcrc, byte)),
                                     fcrc.eq(crc16_update(fcrc, byte))]
                        m.next = nxt
            with m.State("HCRC"):
                m.d.comb += ready.eq(1)
                with m.If(take):
                    with m.If((byte == hcrc) & (length <= self.max_payload)):
                        m.d.sync += [fcrc.eq(crc16_update(fcrc, byte)), count.eq(0)]
                        with m.If(length == 0):
                            m.next = "CRC0"
                        with m.Else():
                            m.next = "PAYLOAD"
                    with m.Else():
                        m.d.sync += [self.bad_frame.eq(1), rq.eq(Cat(hdr, byte)), rq_n.eq(4)]
                        m.next = "HUNT"
            with m.State("PAYLOAD"):
                m.d.comb += [ready.eq(1), wr.en.eq(take)]
                with m.If(take):
                    m.d.sync += [fcrc.eq(crc16_update(fcrc, byte)), count.eq(count + 1)]
                    with m.If(count == length - 1):
                        m.next = "CRC0"
            with m.State("CRC0"):
                m.d.comb += ready.eq(1)
                with m.If(take):
                    m.d.sync += crc_lo.eq(byte)
                    m.next = "CRC1"
            with m.State("CRC1"):
                m.d.comb += ready.eq(1)
                with m.If(take):
                    with m.If(Cat(crc_lo, byte) == fcrc):
                        m.d.sync += [self.good_frame.eq(1), rd_idx.eq(0)]
                        with m.If(length == 0):
                            m.d.sync += [self.o.valid.eq(1), b_type.eq(ftype),
                                         b_first.eq(1), b_last.eq(1), b_empty.eq(1)]
                            m.next = "EMPTY"
                        with m.Else():
                            m.next = "PLAY"
                    with m.Else():
                        m.d.sync += self.bad_frame.eq(1)
                        m.next = "HUNT"
            with m.State("EMPTY"):
                with m.If(self.o.ready):
                    m.d.sync += self.o.valid.eq(0)
                    m.next = "HUNT"
            with m.State("PLAY"):
                # rd.data follows rd.addr by one cycle and holds while rd.en = 0;
                # the beat's flags are registered beside it.
                advance = ~self.o.valid | self.o.ready
                m.d.comb += rd.en.eq(advance)
                with m.If(advance):
                    with m.If(rd_idx != length):
                        m.d.sync += [rd_idx.eq(rd_idx + 1),
                                     self.o.valid.eq(1), b_type.eq(ftype),
                                     b_first.eq(rd_idx == 0), b_last.eq(rd_idx == length - 1),
                                     b_empty.eq(0)]
                    with m.Else():
                        m.d.sync += self.o.valid.eq(0)
                        m.next = "HUNT"
        return m
