"""Banked row buffer: whole rows in, one element of several consecutive rows
out per cycle, in block RAM (the K, V and Q buffers of :mod:`hw.top`).

The array needs element x of ``slots`` consecutive rows (a pass's key
slots, or a tile's query rows) in the same cycle; the host writes whole rows
(``max_head_dim`` elements).

Row r lives whole in bank ``r mod banks`` (``banks`` a power of two >=
``slots``), so any ``slots`` consecutive rows are in distinct banks: each
bank reads one element per cycle and the bank outputs are rotated by
``r_row mod banks`` into slot order (a rotation that stays constant while
the element index moves).

A row is written in *chunks* of :attr:`chunk` elements (one block-RAM write
word per part memory, below), one chunk per cycle from a shift register
holding the row: ``ceil(d / chunk)`` cycles per row, for d = ``w_chunks_m1``
+ 1 chunks.  Only the bank of the row is written; every bank takes the
same chunk bus.  (The previous design spread a row's elements over all
banks so that a row was written in one cycle, which needed a rotation of
the whole row onto the banks: that crossbar next to the block RAMs was the
router's worst congestion in every FPGA run.)  Each set (K and V) has its
own writer, so a K row and a V row are written at the same time.

A bank is ``parts`` memories of ``part_lanes`` elements per write word (as
many as fit one :data:`BLOCK_RAM_WORD_BITS`-bit block-RAM word, a power of
two), word ``(row, chunk, lane)``: a chunk write is one write port per lane
at adjacent addresses, which Yosys merges into one wide port, and the read
port is one element wide (ECP5: PDPW16KD, 36-bit write, 9-bit read), so the
block RAM itself selects the element; each part's element goes straight
into a register (the block RAM's clock-to-output is 5.8 ns; the ECP5 flow
makes that register the block's own output register, 1.0 ns: see
:mod:`fpga.bram_outreg`), the part is selected after it.

Ports
-----
w_en[t], w_row, w_data : In -- set t takes row ``w_data`` (``max_head_dim``
    signed ``data_width`` elements, element 0 in the low bits) for row
    address ``w_row`` (the caller gives the position mod ``rows``).  Only
    when ``w_ready[t]``; the row and its address are registered (input
    stage), its chunks are written from the cycle after that on.
w_chunks_m1 : In -- chunks per row minus one (ceil(d / chunk) - 1),
    constant while writes are in progress and in the cycle before the
    first take (it is registered before it is used).
w_ready[t] : Out -- set t takes a row this cycle (its writer is free
    in the next cycle: idle, or on its last chunk or the one before, and no
    staged row with more than one chunk moves in now); from registers.
    One row per cycle when a row is one chunk, else one per
    ``w_chunks_m1 + 1`` cycles.

Write-to-read timing: chunk c of a row taken in cycle b is written in cycle
b + 2 + c, so a read of element x presented in cycle p returns the new
element when p >= b + 2 + x div chunk, and the old one when p <= b + 1 +
x div chunk.  A reader that starts at element 0 two cycles or more after
the take and moves one element per cycle always sees the new row (reads
never overtake the chunks).
r_row, r_x : In -- read element ``r_x`` of rows ``r_row + s`` (mod rows),
    s = 0 .. slots-1, presented one cycle before the memory read (the
    per-bank addresses and the rotation are computed then and registered:
    FPGA timing).
r_data : Out -- ``slots`` elements, slot s = element ``r_x`` of row
    ``r_row + s``: valid :attr:`latency` = 4 cycles after ``r_row``/``r_x``
    were presented, registered (addresses registered, memory read, the read
    elements registered as they leave the block RAM, part select and
    rotation to slot order after that register, then the output register,
    which has no reset: FPGA timing, the users sit far from the block RAM).

Collisions: a read of a word in the cycle it is written returns the old
contents in simulation (Amaranth, Verilator) and is undefined on an FPGA
(the memories carry Yosys's ``no_rw_check``, which saves the emulation
logic).  The accelerator top reads only rows no write is pending for: K/V
writes wait while a pass in flight reads the row (its ring hazard check),
LOAD_Q writes the Q tile not being read, and a pass reads its rows
element by element from at least a cycle after their last row was taken
(see the write-to-read timing above).
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.fanout import kept_apart_signal, register_copies

__all__ = ["BankedRowBuffer", "BLOCK_RAM_WORD_BITS", "CHUNK_PARTS"]

#: the widest write word of a block RAM (ECP5 DP16KD as PDPW16KD: 36 bits);
#: a part memory holds as many elements per word as fit
BLOCK_RAM_WORD_BITS = 36

#: shift-register bits of a row writer per copy of its load flag
WRITER_GROUP_BITS = 128

#: banks served by one copy of a row writer's current chunk
BANKS_PER_CHUNK_COPY = 2

#: part memories per bank: a chunk is CHUNK_PARTS block-RAM words (8
#: elements of 9 bits: a 64-element row in 8 cycles)
CHUNK_PARTS = 2


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


class BankedRowBuffer(wiring.Component):
    """See the module docstring.  Parameters: ``banks`` (power of two >=
    ``slots``), ``rows`` (power of two >= ``banks``, rows held),
    ``max_head_dim``, ``data_width``, ``slots``, ``sets`` (independent
    buffers sharing the write data bus, e.g. K and V: ``w_en``/``w_ready``
    have one bit per set, ``r_row``/``r_x``/``r_data`` one entry per set)."""

    #: cycles from ``r_row``/``r_x`` to ``r_data``
    latency = 4

    def __init__(self, *, banks: int, rows: int, max_head_dim: int, data_width: int,
                 slots: int, sets: int = 1):
        for nm, v in (("banks", banks), ("rows", rows)):
            if v < 2 or v & (v - 1):
                raise ValueError(f"{nm} = {v} is invalid: allowed a power of two >= 2")
        if rows < banks:
            raise ValueError(f"rows = {rows} is invalid: allowed >= banks = {banks}")
        if not 1 <= slots <= banks:
            raise ValueError(f"slots = {slots} is invalid: allowed 1..banks = 1..{banks}")
        if sets < 1:
            raise ValueError(f"sets = {sets} is invalid: allowed >= 1")
        self.banks, self.rows, self.slots, self.sets = banks, rows, slots, sets
        self.max_head_dim, self.data_width = max_head_dim, data_width
        #: elements per block-RAM word of a part memory (a power of two)
        self.part_lanes = 1 << max(0, (BLOCK_RAM_WORD_BITS // data_width).bit_length() - 1)
        #: elements written per cycle (a power of two)
        self.chunk = self.part_lanes * CHUNK_PARTS
        #: chunks of the longest row
        self.max_chunks = -(-max_head_dim // self.chunk)
        xw = max(1, (max_head_dim - 1).bit_length())
        super().__init__({
            "w_en": In(sets),
            "w_row": In(unsigned(_log2(rows))),
            "w_data": In(data.ArrayLayout(signed(data_width), max_head_dim)),
            # (at least one bit: no zero-width port in the Verilog)
            "w_chunks_m1": In(range(max(2, self.max_chunks))),
            "w_ready": Out(sets),
            "r_row": In(data.ArrayLayout(unsigned(_log2(rows)), sets)),
            "r_x": In(data.ArrayLayout(unsigned(xw), sets)),
            "r_data": Out(data.ArrayLayout(data.ArrayLayout(signed(data_width), slots), sets)),
        })

    def elaborate(self, platform):
        m = Module()
        NB, D, dw, S = self.banks, self.max_head_dim, self.data_width, self.slots
        LW, CE = self.part_lanes, self.chunk
        lgNB, lgLW, lgCE = _log2(NB), _log2(LW), _log2(CE)
        lgNC = _log2(self.max_chunks)                # chunk index bits
        lgQ = _log2(self.rows) - lgNB                # row-in-bank bits
        depth = (1 << (lgQ + lgNC)) * LW             # words of a part memory

        # ---------------------------------------------------------- writers
        # per set: an input stage (the row and its address registered every
        # cycle, no clock enable, and a full flag) and a writer (the chunk
        # being written, in copies, and the row's later chunks in a shift
        # register; its row address, the chunk index, busy and "this is the
        # last chunk" flags, the first three also in a copy per chunk copy).  A row taken in cycle b is in the stage in
        # b + 1 and moves into the writer then: the writer is always free
        # for it, because w_ready says whether the writer is free in the
        # cycle after.  FPGA timing: the caller's take decision is a deep
        # function of its sequencer; it now only drives the stage's full
        # flag copies, while the wide stage and the writer's registers load
        # under those copies, registers of this buffer.
        flat = self.w_data.as_value()
        chunk_bits = CE * dw
        sr_w = max(D, self.max_chunks * CE) * dw
        # (registered: FPGA timing, w_ready is in the caller's take decision)
        one_chunk, two_chunks = Signal(), Signal()
        m.d.sync += [one_chunk.eq(self.w_chunks_m1 == 0), two_chunks.eq(self.w_chunks_m1 == 1)]
        writers = []
        for t in range(self.sets):
            # (the staged row is not kept apart: the sets' stages, and those
            # of other buffers taking the same rows, load the same bits every
            # cycle and Yosys merges them into one register -- FPGA routing:
            # the 3 copies of a 576-bit row were the densest flip-flops by
            # the block RAMs, where router2 congested; the data moves on
            # through a LUT with a cycle of slack)
            # (no reset: data behind in_full)
            in_row = Signal(len(flat), name=f"w{t}_in_row", reset_less=True)
            in_pos = kept_apart_signal(_log2(self.rows), name=f"w{t}_in_pos", reset_less=True)
            # the chunk being written in a copy per BANKS_PER_CHUNK_COPY banks
            # (FPGA timing: one register reaching every bank's block RAMs was
            # up to 10 ns of routing), the chunks after it in a shift
            # register; no reset: data, loaded when a row moves in, shifted
            # in every other cycle, written to memory only while busy
            rest_w = sr_w - chunk_bits
            rest = Signal(rest_w, name=f"w{t}_row", reset_less=True)
            chunks = [kept_apart_signal(chunk_bits, name=f"w{t}_chunk_copy{k}", reset_less=True)
                      for k in range(-(-NB // BANKS_PER_CHUNK_COPY))]
            # (kept apart like their copies below, which load alike: Yosys
            # would merge them into one copy, hw.fanout)
            cidx = kept_apart_signal(max(1, lgNC), name=f"w{t}_chunk")
            busy = kept_apart_signal(name=f"w{t}_busy")
            last = Signal(name=f"w{t}_last")          # cidx == w_chunks_m1
            next_last = Signal(name=f"w{t}_next_last")  # cidx + 1 == w_chunks_m1
            n_groups = -(-rest_w // WRITER_GROUP_BITS)
            loads = [kept_apart_signal(name=f"w{t}_in_full_dup{k}")
                     for k in range(1 + len(chunks) + n_groups)]
            in_full = loads[0]              # (the control's copy: busy, ...)
            # the writer is free next cycle: it takes the staged row now and
            # that row has one chunk, or it is idle / on its last chunk /
            # one before it.  Registered (FPGA timing: w_ready is in the
            # caller's take decision, and its flags' select was 3 LUT levels
            # in front of it): next cycle's value from this cycle's take and
            # the writer's next flags, which come from registers only
            ready = Signal(name=f"w{t}_ready", init=1)
            free_after = Signal(name=f"w{t}_free_after")    # next ~busy | last | next_last
            with m.If(in_full):
                m.d.comb += free_after.eq(one_chunk | two_chunks)
            with m.Elif(busy):
                m.d.comb += free_after.eq(last | next_last | (cidx + 2 == self.w_chunks_m1))
            with m.Else():
                m.d.comb += free_after.eq(1)
            m.d.sync += ready.eq(Mux(self.w_en[t] & ready, self.w_chunks_m1 == 0, free_after))
            m.d.comb += self.w_ready[t].eq(ready)
            m.d.sync += [in_row.eq(flat), in_pos.eq(self.w_row)]
            # the full flag in copies: one for the control (w_ready goes to
            # the caller's decision), one per chunk copy and one per
            # WRITER_GROUP_BITS bits of the shift register (FPGA timing: one
            # flag selecting all the bits was a net of ~600 loads, 6-10 ns
            # of routing); no clock enables (the chunks move on whenever no
            # row moves in)
            m.d.sync += [load.eq(self.w_en[t] & ready) for load in loads]
            for k in range(len(chunks)):
                m.d.sync += chunks[k].eq(Mux(loads[1 + k], in_row[:chunk_bits],
                                             rest[:chunk_bits] if rest_w else 0))
            shifted = rest >> chunk_bits
            for g in range(n_groups):
                lo, hi = g * WRITER_GROUP_BITS, min(rest_w, (g + 1) * WRITER_GROUP_BITS)
                m.d.sync += rest[lo:hi].eq(Mux(loads[1 + len(chunks) + g],
                                               in_row[chunk_bits + lo:chunk_bits + hi],
                                               shifted[lo:hi]))
            # the write row, chunk index and busy flag in a copy per chunk
            # copy too, for its banks' write enables and addresses (FPGA
            # timing: one register reaching every bank's block RAMs was
            # routed 10 ns long); the copies load alike
            n_copies = len(chunks)
            pos_c = [kept_apart_signal(_log2(self.rows), name=f"w{t}_pos_copy{k}")
                     for k in range(n_copies)]
            cidx_c = [kept_apart_signal(max(1, lgNC), name=f"w{t}_chunk_copy{k}_idx")
                      for k in range(n_copies)]
            busy_c = [kept_apart_signal(name=f"w{t}_busy_copy{k}") for k in range(n_copies)]
            with m.If(in_full):
                m.d.sync += [cidx.eq(0), busy.eq(1),
                             last.eq(one_chunk), next_last.eq(two_chunks)]
                m.d.sync += [c.eq(in_pos) for c in pos_c] + [c.eq(0) for c in cidx_c]
                m.d.sync += [c.eq(1) for c in busy_c]
            with m.Elif(busy):
                m.d.sync += [cidx.eq(cidx + 1), last.eq(next_last),
                             next_last.eq(cidx + 2 == self.w_chunks_m1)]
                m.d.sync += [c.eq(cidx + 1) for c in cidx_c]
                with m.If(last):
                    m.d.sync += busy.eq(0)
                    m.d.sync += [c.eq(0) for c in busy_c]
            writers.append((chunks, pos_c, cidx_c, busy_c))

        for t in range(self.sets):
            chunks, pos_c, cidx_c, busy_c = writers[t]
            r_row, r_x = self.r_row[t], self.r_x[t]
            # read: bank k serves slot s = (k - r_row) mod NB
            rot = Signal(lgNB, name=f"rot{t}")
            m.d.sync += rot.eq(r_row[:lgNB])
            rot1, rot2 = Signal(lgNB, name=f"rot{t}_d1"), Signal(lgNB, name=f"rot{t}_d2")
            m.d.sync += [rot1.eq(rot), rot2.eq(rot1)]
            # bank k's row: r_row + s for its slot s; with r_row = hi*NB + lo
            # that is row (hi + (k < lo)) of the bank
            lo, hi = r_row[:lgNB], r_row[lgNB:]
            hi_next = Signal(max(1, lgQ), name=f"rowhi{t}_next")
            m.d.comb += hi_next.eq(hi + 1)
            # the element: lane inside the part's word, part, chunk
            x_lane, x_part, x_chunk = r_x[:lgLW], r_x[lgLW:lgCE], r_x[lgCE:lgCE + lgNC]
            part0 = kept_apart_signal(max(1, lgCE - lgLW), name=f"r{t}_part_d0")
            part1 = Signal.like(part0, name=f"r{t}_part_d1")
            m.d.sync += [part0.eq(x_part), part1.eq(part0)]
            el = []
            for k in range(NB):
                q = Signal(max(1, lgQ), name=f"set{t}_q{k}")
                if lgQ:
                    # k < lo as the borrow of k - lo (no constant compare)
                    borrow = Signal(name=f"set{t}_k_lt_lo{k}")
                    m.d.comb += [borrow.eq((Const(k, lgNB + 1) - lo)[lgNB]),
                                 q.eq(Mux(borrow, hi_next, hi))]
                # read word (row, chunk, lane): a register copy per part
                # memory (hw.fanout: the parts' block RAMs sit apart)
                word = Cat(x_lane, x_chunk, q[:lgQ]) if lgQ else Cat(x_lane, x_chunk)
                raddrs = register_copies(m, word, CHUNK_PARTS, f"set{t}_raddr{k}")
                # write: this bank's rows, from the set's writer registers
                grp = k // BANKS_PER_CHUNK_COPY
                pos, cidx, busy = pos_c[grp], cidx_c[grp], busy_c[grp]
                wen = Signal(name=f"set{t}_wen{k}")
                m.d.comb += wen.eq(busy & (pos[:lgNB] == k))
                wrow = Cat(cidx[:lgNC], pos[lgNB:]) if lgNC else pos[lgNB:]
                parts = []
                chunk = chunks[grp]
                for h in range(CHUNK_PARTS):
                    # no_rw_check: Yosys adds no logic to give a read in the
                    # cycle of a write to the same word the old contents;
                    # see "Collisions" above
                    mem = Memory(shape=unsigned(dw), depth=depth, init=[],
                                 attrs={"ram_style": "block", "no_rw_check": 1})
                    m.submodules[f"set{t}_bank{k}_{h}"] = mem
                    for j in range(LW):
                        wp = mem.write_port()
                        lane = h * LW + j
                        m.d.comb += [wp.en.eq(wen),
                                     wp.addr.eq(Cat(Const(j, lgLW), wrow) if lgLW else wrow),
                                     wp.data.eq(chunk[lane * dw:(lane + 1) * dw])]
                    rp = mem.read_port()
                    m.d.comb += rp.addr.eq(raddrs[h])
                    # the read element registered as it leaves the block
                    # RAM (its clock-to-output delay is long: nothing
                    # between the two); no reset, so that the ECP5 flow
                    # can make it the block's own output register
                    # (fpga.bram_outreg)
                    e = Signal(signed(dw), name=f"set{t}_el{k}_{h}", reset_less=True)
                    m.d.sync += e.eq(rp.data)
                    parts.append(e)
                if CHUNK_PARTS == 1:
                    el.append(parts[0])
                else:
                    # (the part select: a copy per bank, next to its parts)
                    (psel,) = register_copies(m, part1, 1, f"set{t}_part{k}")
                    el.append(Array(parts)[psel])
            # back to slot order: slot s <- bank (rot + s) mod NB
            out = _rotate(el, rot2, 1)
            # (the output register has no reset: data, qualified by the
            # user's own valid flags; FPGA timing, the reset net reaches
            # fewer flip-flops)
            r_data = Signal(self.r_data[t].shape(), name=f"r_data{t}", reset_less=True)
            m.d.sync += [r_data[s].eq(out[s]) for s in range(S)]
            m.d.comb += self.r_data[t].eq(r_data)
        return m
