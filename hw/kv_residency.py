"""K/V residency checker: which position each K/V buffer row holds, and
whether a pass reads only rows that hold the positions it names.

The K/V buffer of :mod:`hw.top` keeps position ``p`` in bank ``p mod banks``,
row ``(p div banks) mod bank_depth`` (``banks * bank_depth`` = the config's
``kv_capacity``).  A later load of ``p + k * kv_capacity`` reuses that row, and
rows loaded before a SET_HEAD belong to another head.  Without a check, a
PASS whose ``kv_base`` points at rows that were never loaded, were reused or
lie outside ``0 .. 2**index_width - 1`` would compute with stale data and
give silent garbage; this unit turns that into an error.

Per row it stores a tag (the position's bits above the row index) and a
valid bit.  A check looks at the ``slots`` consecutive positions
``base .. base + slots - 1`` (the key slots of one pass) and flags those of
the ``used`` slots whose row does not hold exactly that position.

Ports:

* ``write_en``, ``write_pos``: mark ``write_pos`` resident (registered per
  bank on the way in: takes effect two cycles later, so a check presented
  one cycle after the write sees it);
* ``clear``: forget every row (SET_HEAD; registered alike); wins over a
  write in the same cycle;
* ``check_en``, ``check_base`` (signed), ``check_used`` (bit s = slot s is
  read by a valid pair): the check;
* ``fault``: registered, high :attr:`KvResidency.latency` = 4 cycles after a
  check that found a used slot not resident.

Latency: ``fault`` 4 cycles after ``check_en``.  Registered: per bank a
kept-apart copy of the write (enable, position) and of the clear (FPGA
routing: the tags are spread out), the tags, the valid bits, the position
bits above the bank index per bank, its tag bits in kept-apart copies (one
per :data:`ROWS_PER_COPY` rows' tag compares) (first cycle),
per bank the tag compare of every row (second cycle), the per-bank hit of
a check (third cycle: a ``bank_depth``:1 multiplexer of the compares) and
``fault`` (fourth cycle: the per-bank hits rotated onto the slots, masked
with the used slots).  The check reads the tags of its second cycle.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.fanout import register_copies

__all__ = ["KvResidency"]

#: tag compares served by one copy of a bank's check position
ROWS_PER_COPY = 4


class KvResidency(wiring.Component):
    """Residency tags of a banked K/V ring buffer (see the module docstring).

    Parameters: ``banks`` and ``bank_depth`` (powers of two), ``slots``
    (positions one check covers, <= banks), ``index_width`` (bits of a
    position: positions are 0 .. 2**index_width - 1), ``base_width`` (bits
    of the signed check base).
    """

    #: cycles from ``check_en`` to ``fault``
    latency = 4

    def __init__(self, *, banks: int, bank_depth: int, slots: int, index_width: int,
                 base_width: int):
        for name, v in (("banks", banks), ("bank_depth", bank_depth)):
            if v < 1 or v & (v - 1):
                raise ValueError(f"{name} = {v} is invalid: allowed a power of two")
        if not 1 <= slots <= banks:
            raise ValueError(f"slots = {slots} is invalid: allowed 1..banks={banks}")
        if base_width < index_width + 1:
            raise ValueError(f"base_width = {base_width} is invalid: allowed at least "
                             f"index_width+1 = {index_width + 1} (signed positions)")
        self.banks, self.bank_depth, self.slots = banks, bank_depth, slots
        self.index_width, self.base_width = index_width, base_width
        super().__init__({
            "write_en": In(1), "write_pos": In(index_width), "clear": In(1),
            "check_en": In(1), "check_base": In(signed(base_width)), "check_used": In(slots),
            "fault": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        NB, BD, S = self.banks, self.bank_depth, self.slots
        lg_nb, lg_bd = (NB - 1).bit_length(), (BD - 1).bit_length()
        lg_cap = lg_nb + lg_bd
        iw = self.index_width
        tag_w = max(0, iw - lg_cap)

        valid = [[Signal(name=f"valid{k}_{r}") for r in range(BD)] for k in range(NB)]
        # (no reset: a tag is read only with its valid bit; FPGA timing,
        # the reset net reaches fewer flip-flops)
        tags = [[Signal(tag_w, name=f"tag{k}_{r}", reset_less=True) for r in range(BD)]
                for k in range(NB)]

        wp = self.write_pos
        w_bank = wp[:lg_nb]
        for k in range(NB):
            (wen,) = register_copies(m, self.write_en & (w_bank == k), 1, f"wen{k}")
            (wpos,) = register_copies(m, wp[lg_nb:iw], 1, f"wpos{k}")
            (clear,) = register_copies(m, self.clear, 1, f"clear{k}")
            for r in range(BD):
                with m.If(clear):
                    m.d.sync += valid[k][r].eq(0)
                with m.Elif(wen & (wpos[:lg_bd] == r)):
                    m.d.sync += [valid[k][r].eq(1), tags[k][r].eq(wpos[lg_bd:])]

        # bank k serves position base + ((k - base) mod NB): its bits above
        # the bank index are those of base, plus one where k < base mod NB
        # (one shared incrementer instead of an adder per bank)
        base = self.check_base
        hi_w = self.base_width - lg_nb
        b_hi = Signal(signed(hi_w))
        b_hi1 = Signal(signed(hi_w + 1))
        m.d.comb += [b_hi.eq(base >> lg_nb), b_hi1.eq(b_hi + 1)]
        hits = Signal(NB)                           # registered: stage 2
        for k in range(NB):
            # registered: stage 0 (FPGA timing); its tag bits in copies, one
            # per ROWS_PER_COPY rows' tag compares (their tags are spread
            # out; one register reaching all was 4-5 ns of routing)
            pos_hi_next = Signal(signed(hi_w + 1), name=f"pos_hi{k}_next")
            m.d.comb += pos_hi_next.eq(Mux(base[:lg_nb] > k, b_hi1, b_hi)
                                       if k < NB - 1 else b_hi)
            row = Signal(lg_bd, name=f"pos_row{k}", reset_less=True)
            in_range = Signal(name=f"pos_in_range{k}", reset_less=True)   # 0 <= pos < 2**iw
            m.d.sync += [row.eq(pos_hi_next[:lg_bd]),
                         in_range.eq(~pos_hi_next[iw - lg_nb:].any())]
            cmp_copies = register_copies(m, pos_hi_next[lg_bd:iw - lg_nb],
                                         -(-BD // ROWS_PER_COPY), f"pos_tag{k}",
                                         reset_less=True)
            # every row's tag compared, then the row's result selected (FPGA
            # timing: a 1-bit multiplexer after the compares instead of a
            # tag-wide one in front of a compare)
            # the compares registered before the multiplexer (FPGA timing:
            # compare and BD:1 multiplexer in one cycle was 6 logic levels)
            row_hit = Signal(BD, name=f"row_hit{k}", reset_less=True)
            row1 = Signal(lg_bd, name=f"pos_row{k}_d1", reset_less=True)
            in_range1 = Signal(name=f"pos_in_range{k}_d1", reset_less=True)
            m.d.sync += [row_hit.eq(Cat(*[valid[k][r]
                                          & (tags[k][r] == cmp_copies[r // ROWS_PER_COPY])
                                          for r in range(BD)])),
                         row1.eq(row), in_range1.eq(in_range)]
            m.d.sync += hits[k].eq((row_hit >> row1)[0] & in_range1)
        # the check's enable, used slots and rotation follow it down the
        # stages (0: position registered, 1: compares, 2: hits)
        en = [Signal(name=f"en{i}") for i in range(3)]
        used = [Signal(S, name=f"used{i}") for i in range(3)]
        rot = [Signal(max(1, lg_nb), name=f"rot{i}") for i in range(3)]
        m.d.sync += [en[0].eq(self.check_en), used[0].eq(self.check_used),
                     rot[0].eq(base[:lg_nb] if lg_nb else 0)]
        for i in range(1, 3):
            m.d.sync += [en[i].eq(en[i - 1]), used[i].eq(used[i - 1]), rot[i].eq(rot[i - 1])]
        # slot s lives in bank (base + s) mod NB: rotate the bank results
        ok2 = Cat(hits, hits)
        slot_ok = Signal(S)
        m.d.comb += slot_ok.eq((ok2 >> rot[2])[:S])
        m.d.sync += self.fault.eq(en[2] & (used[2] & ~slot_ok).any())
        return m
