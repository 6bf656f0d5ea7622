"""Skewed row buffer: whole rows in, one element of several consecutive rows
out per cycle, in block-RAM-friendly memories (the K, V and Q buffers of
:mod:`hw.top`).

The array needs element x of ``slots`` consecutive rows (a pass's key slots,
or a tile's query rows) in the same cycle, and the host writes whole rows
(``max_head_dim`` elements) one per cycle.  A memory per row slot holding
whole rows (the previous design) is hundreds of bits wide and only a few
rows deep: synthesis puts it in LUT RAM plus a wide element multiplexer.

Here element x of row r lives in bank ``(r + x) mod banks`` (``banks`` a
power of two >= ``slots``), word ``r mod rows``, lane ``x div banks``; a bank
word holds ``lanes = ceil(max_head_dim / banks)`` elements.  So

* a row write touches every bank once (word ``r``; the row's elements are
  rotated by ``r mod banks`` onto the banks): one row per cycle;
* element x of rows r .. r+slots-1 lies in distinct banks (``slots <=
  banks``): one read per bank per cycle, then a rotation by
  ``(r + x) mod banks`` back to slot order.

Every bank is one or more :class:`amaranth.lib.memory.Memory` parts of
single elements, word ``(row, lane)``, each holding as many lanes as fit
one :data:`BLOCK_RAM_WORD_BITS`-bit block-RAM write word (a power of two),
with one write port per lane (a row write: adjacent words, which Yosys
merges into one wide port) and one synchronous read port: on ECP5 a
PDPW16KD with a wide write and a narrow read port (``ram_style =
"block"``), so the block RAM itself selects the lane and one element per
part leaves it, straight into a register (before: a word of ``lanes``
elements into a multiplexer next to the block RAM, the router's worst hot
spot; then a bank wider than a block-RAM word, which Yosys split into
block RAMs whose outputs met in a multiplexer before the register).  The
parts' registered elements are selected by the lane's high bits in the
rotation stage.

Ports
-----
w_en, w_row, w_data : In -- write row ``w_data`` (``max_head_dim`` signed
    ``data_width`` elements, element 0 in the low bits) at row address
    ``w_row`` (``rows`` is a power of two; the caller gives the position mod
    ``rows``).  Registered twice on the way in (the row with its address
    and enables, then the row rotated onto the banks with per-bank copies
    of the address and enables): the banks are written two cycles later, so
    a read presented up to one cycle after the write returns the old
    contents and one presented two or more cycles after it the new.
r_row, r_x : In -- read element ``r_x`` of rows ``r_row + s`` (mod rows),
    s = 0 .. slots-1, presented one cycle before the memory read (the
    per-bank addresses, the rotation and the lane are computed then and
    registered: FPGA timing).
r_data : Out -- ``slots`` elements, slot s = element ``r_x`` of row
    ``r_row + s``: valid :attr:`latency` = 4 cycles after ``r_row``/``r_x``
    were presented, registered (addresses and lane registered, memory read,
    the read elements registered as they leave the block RAM, the rotation
    to slot order after that register, then the output register: FPGA
    timing, the users sit far from the block RAM).

Collisions: a read presented one cycle after a write of one of its rows
reaches the block RAM in the cycle of that write.  The simulation
models (Amaranth, Verilator) then return the old contents; on an FPGA the
result is undefined (the memories carry Yosys's ``no_rw_check``, which
saves the emulation logic).  The accelerator top never reads a row in the
cycle it is written where the data is used: K/V writes wait while a pass in
flight reads the row (its ring hazard check) and LOAD_Q writes the Q bank
not being read.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.fanout import kept_apart_signal, register_copies

__all__ = ["SkewedRowBuffer", "BLOCK_RAM_WORD_BITS"]

#: the widest write word of a block RAM (ECP5 DP16KD as PDPW16KD: 36 bits);
#: a bank whose row part is wider is split into part memories of at most
#: this many bits, each read straight into a register (a wider memory is
#: split by Yosys into block RAMs whose outputs meet in a multiplexer before
#: any register, after the block RAM's 5.8 ns clock-to-output)
BLOCK_RAM_WORD_BITS = 36


def _log2(n: int) -> int:
    return (n - 1).bit_length()


def _rotate(vec, amount, sign):
    """Barrel rotation of a list of values: ``out[k] = vec[(k + sign*amount) mod n]``
    (``amount`` an unsigned Value of log2(n) bits), one 2:1 mux level per bit."""
    n = len(vec)
    for b in range(len(amount)):
        step = (sign << b) % n
        vec = [Mux(amount[b], vec[(k + step) % n], vec[k]) for k in range(n)]
    return vec


class SkewedRowBuffer(wiring.Component):
    """See the module docstring.  Parameters: ``banks`` (power of two >=
    ``slots``), ``rows`` (power of two, words per bank = rows held),
    ``max_head_dim``, ``data_width``, ``slots``, ``sets`` (independent
    buffers sharing the write data and its rotation, e.g. K and V: ``w_en``
    has one bit per set, ``r_row``/``r_x``/``r_data`` one entry per set)."""

    #: cycles from ``r_row``/``r_x`` to ``r_data``
    latency = 4

    def __init__(self, *, banks: int, rows: int, max_head_dim: int, data_width: int,
                 slots: int, sets: int = 1):
        for nm, v in (("banks", banks), ("rows", rows)):
            if v < 2 or v & (v - 1):
                raise ValueError(f"{nm} = {v} is invalid: allowed a power of two >= 2")
        if rows < banks:
            # (rows r and r + rows would share a word but not a bank rotation)
            raise ValueError(f"rows = {rows} is invalid: allowed >= banks = {banks}")
        if not 1 <= slots <= banks:
            raise ValueError(f"slots = {slots} is invalid: allowed 1..banks = 1..{banks}")
        if sets < 1:
            raise ValueError(f"sets = {sets} is invalid: allowed >= 1")
        self.banks, self.rows, self.slots, self.sets = banks, rows, slots, sets
        self.max_head_dim, self.data_width = max_head_dim, data_width
        self.lanes = -(-max_head_dim // banks)
        xw = max(1, (max_head_dim - 1).bit_length())
        super().__init__({
            "w_en": In(sets),
            "w_row": In(unsigned(_log2(rows))),
            "w_data": In(data.ArrayLayout(signed(data_width), max_head_dim)),
            "r_row": In(data.ArrayLayout(unsigned(_log2(rows)), sets)),
            "r_x": In(data.ArrayLayout(unsigned(xw), sets)),
            "r_data": Out(data.ArrayLayout(data.ArrayLayout(signed(data_width), slots), sets)),
        })

    def elaborate(self, platform):
        m = Module()
        NB, D, dw, L, S = self.banks, self.max_head_dim, self.data_width, self.lanes, self.slots
        lgNB = _log2(NB)
        zero = Const(0, dw)
        flat = self.w_data.as_value()

        # a bank is P part memories of LW lanes each (a power of two), so
        # that a row write is at most one block-RAM word per part
        # (BLOCK_RAM_WORD_BITS); lanes j*LW .. j*LW+LW-1 in part j
        lgL = _log2(L)
        LW = 1 << min(lgL, max(0, (BLOCK_RAM_WORD_BITS // dw).bit_length() - 1))
        lgLW = _log2(LW)
        P = (1 << lgL) // LW

        # write: bank k, lane j <- element j*NB + ((k - r) mod NB), r = w_row
        # mod NB, in two registered stages (FPGA routing and timing):
        # 1. the row, its row address and enables, and one copy of the
        #    rotation r per lane, registered (all kept apart, hw.fanout: the
        #    Q and K/V buffers take the same host row as the top's register
        #    rows, and Yosys would merge their registers into one feeding
        #    every bank of both buffers);
        # 2. each lane's NB elements rotated by r (a barrel of 2:1 levels)
        #    into per-(set, bank) registers, with per-(set, bank, part)
        #    copies of the address and enable, next to the block RAMs.
        # (Selecting every bank's lanes next to the bank straight from the
        # stage-1 row needs the whole row at every bank: router2 stalled at
        # 18-21k overused wires.)
        (w_data1,) = register_copies(m, flat, 1, "w_data1")
        w_row1 = kept_apart_signal(self.w_row.shape(), name="w_row1")
        w_en1 = kept_apart_signal(self.w_en.shape(), name="w_en1")
        m.d.sync += [w_row1.eq(self.w_row), w_en1.eq(self.w_en)]
        w_rot = register_copies(m, self.w_row[:lgNB], L, "w_rot")
        # (stage 2 registers per set too: a set's bank k sits apart from the
        # other set's)
        wdata = [[[kept_apart_signal(dw, name=f"wdata{t}_{k}_{j}") for j in range(L)]
                  for k in range(NB)] for t in range(self.sets)]
        for j in range(L):
            vec = [w_data1[x * dw:(x + 1) * dw] if x < D else zero
                   for x in range(j * NB, (j + 1) * NB)]
            rotated = _rotate(vec, w_rot[j], -1)
            m.d.sync += [wdata[t][k][j].eq(rotated[k])
                         for t in range(self.sets) for k in range(NB)]
        # (address and enable: a copy per part memory, see below)
        waddr = [[register_copies(m, w_row1, P, f"waddr{t}_{k}") for k in range(NB)]
                 for t in range(self.sets)]
        wen = [[register_copies(m, w_en1[t], P, f"wen{t}_{k}") for k in range(NB)]
               for t in range(self.sets)]

        for t in range(self.sets):
            r_row, r_x = self.r_row[t], self.r_x[t]
            # read: bank k serves slot s = (k - r_row - r_x) mod NB
            rot_in = Signal(lgNB, name=f"rot{t}_in")      # (r_row + r_x) mod NB
            m.d.comb += rot_in.eq(r_row[:lgNB] + r_x[:lgNB])
            # presented a cycle ahead: the bank addresses, the rotation and
            # the lane are registered for the read cycle
            rot = Signal(lgNB, name=f"rot{t}")
            m.d.sync += rot.eq(rot_in)
            rot1, rot2 = Signal(lgNB, name=f"rot{t}_d1"), Signal(lgNB, name=f"rot{t}_d2")
            m.d.sync += [rot1.eq(rot), rot2.eq(rot1)]
            # the lane (r_x div NB): its low bits address a word inside the
            # part memories (a register copy per part memory, below), its
            # high bits pick the part (kept apart, hw.fanout: the Q and K
            # buffers take the same r_x, and merged registers would reach
            # both)
            lane_next = Signal(max(1, lgL), name=f"lane{t}_next")
            m.d.comb += lane_next.eq(r_x >> lgNB)
            # bank k's word: row r_row + s for its slot s; with u = (k - r_x)
            # mod NB and r_row = hi*NB + lo that is (hi + (u < lo))*NB + u
            # (FPGA timing: one small subtract and compare per bank from the
            # caller's next-cycle values, no chain of adders)
            lgR = _log2(self.rows)
            lo, hi = r_row[:lgNB], r_row[lgNB:lgR]
            if lgR > lgNB:
                hi_next = Signal(lgR - lgNB, name=f"rowhi{t}_next")
                m.d.comb += hi_next.eq(hi + 1)
            # the part memory of a lane: its high lane bits, registered
            # along with the read (two cycles after the lane register)
            if P > 1:
                lane_part0 = kept_apart_signal(lgL - lgLW, name=f"lane_part{t}_d0")
                lane_part1 = Signal.like(lane_part0, name=f"lane_part{t}_d1")
                m.d.sync += [lane_part0.eq(lane_next[lgLW:]), lane_part1.eq(lane_part0)]
            el = []
            for k in range(NB):
                uk = Signal(lgNB, name=f"set{t}_u{k}")
                m.d.comb += uk.eq(k - r_x[:lgNB])
                word = Signal(lgR, name=f"set{t}_word{k}")
                if lgR > lgNB:
                    # u < lo as the borrow of u - lo (the Q buffer's lo is a
                    # constant 0: no constant comparison in the Verilog)
                    borrow = Signal(name=f"set{t}_u_lt_lo{k}")
                    m.d.comb += [borrow.eq((uk - lo)[lgNB]),
                                 word.eq(Cat(uk, Mux(borrow, hi_next, hi)))]
                else:
                    m.d.comb += word.eq(uk)
                # one register copy of the word address and the lane per
                # part memory (hw.fanout: the parts' block RAMs sit apart)
                addrs = register_copies(m, word, P, f"set{t}_addr{k}")
                if LW > 1:
                    lanes = register_copies(m, lane_next[:lgLW], P, f"set{t}_lane{k}")
                parts = []
                for h in range(P):
                    # one element per word: word (row, lane) (FPGA timing:
                    # the block RAM's narrow read port selects the lane, so
                    # one element per part leaves it, not a row's worth of
                    # lanes into a multiplexer); a row write is one write
                    # port per lane at adjacent addresses, which Yosys
                    # merges into one wide port (ECP5: PDPW16KD, 36-bit
                    # write and 9-bit read).  no_rw_check: Yosys adds no
                    # logic to give a read in the cycle of a write to the
                    # same word the old contents (about 60 flip-flops and
                    # 50 LUTs per bank); see "Collisions" above
                    mem = Memory(shape=unsigned(dw), depth=self.rows << lgLW, init=[],
                                 attrs={"ram_style": "block", "no_rw_check": 1})
                    m.submodules[f"set{t}_bank{k}" + (f"_{h}" if P > 1 else "")] = mem
                    for j in range(h * LW, min(L, (h + 1) * LW)):
                        wp = mem.write_port()
                        m.d.comb += [wp.en.eq(wen[t][k][h]),
                                     wp.addr.eq(Cat(Const(j - h * LW, lgLW), waddr[t][k][h])
                                                if LW > 1 else waddr[t][k][h]),
                                     wp.data.eq(wdata[t][k][j])]
                    rp = mem.read_port()
                    m.d.comb += rp.addr.eq(Cat(lanes[h], addrs[h]) if LW > 1 else addrs[h])
                    # the read element registered as it leaves the block
                    # RAM (its clock-to-output delay is long: nothing
                    # between the two)
                    e = Signal(signed(dw), name=f"set{t}_el{k}" + (f"_{h}" if P > 1 else ""))
                    m.d.sync += e.eq(rp.data)
                    parts.append(e)
                if P == 1:
                    el.append(parts[0])
                else:
                    # (the part select: a copy per bank, next to its parts)
                    (lane_part,) = register_copies(m, lane_part1, 1, f"set{t}_part{k}")
                    el.append(Array(parts)[lane_part])
            # back to slot order: slot s <- bank (rot + s) mod NB
            out = _rotate(el, rot2, 1)
            m.d.sync += [self.r_data[t][s].eq(out[s]) for s in range(S)]
        return m
