"""Row-end merge unit: online-softmax merge of the passes of a tile, then the
final division (normalization) and a ready/valid output stream.

Bit-exact contract: :func:`sim.array_model.merge` (per pass) and
:func:`sim.array_model.normalize` (per tile); see ``docs/arithmetic.md``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.align_add import AlignAdd
from hw.dsp import MUL_LATENCY, PipelinedMultiplier
from hw.fanout import kept_apart_signal, register_copies, shift_right_in_groups
from hw.saturate import saturate

__all__ = ["MergeUnit", "merge_params", "merge_output_layout", "normalize_cycles"]


def _clog2(n: int) -> int:
    return max(0, (n - 1).bit_length())


#: bits of an unsigned operand piece of the normalization product (an 18x18
#: signed DSP multiplier)
_MUL_CHUNK = 17


def merge_params(cfg, *, div_steps_per_cycle: int | None = None) -> dict:
    """The keyword parameters of :class:`MergeUnit` taken from an
    :class:`hw.config.AcceleratorConfig` (``div_steps_per_cycle``: the
    config's ``div_steps`` unless given)."""
    if div_steps_per_cycle is None:
        div_steps_per_cycle = cfg.div_steps
    return dict(head_dim_max=cfg.max_head_dim, out_width=cfg.out_width,
                out_frac_extra=cfg.out_frac_extra,
                exp_width=cfg.exp_width, in_sum_width=cfg.row_sum_width,
                in_out_width=cfg.wsum_width, acc_sum_width=cfg.merge_sum_width,
                acc_out_width=cfg.merge_out_width, recip_frac=cfg.recip_frac,
                div_steps_per_cycle=div_steps_per_cycle)


def merge_output_layout(*, head_dim_max: int, out_width: int) -> data.StructLayout:
    """Payload of :attr:`MergeUnit.output`: ``data`` (signed ``out_width``,
    the normalized output element), ``index`` (element index 0..d-1) and
    ``last`` (``index == d-1``).  Packed LSB first in that order."""
    return data.StructLayout({
        "data": signed(out_width),
        "index": unsigned(max(1, _clog2(head_dim_max))),
        "last": unsigned(1),
    })


def normalize_cycles(*, recip_frac: int, div_steps_per_cycle: int = 2) -> int:
    """Cycles from the start of a tile's reciprocal to its use: one load
    cycle, ceil((recip_frac + 1) / div_steps_per_cycle) step cycles and one
    cycle to copy the quotient into the bank's reciprocal register (the
    divider itself takes the next tile in that cycle)."""
    return 2 + -(-(recip_frac + 1) // div_steps_per_cycle)


def _index_is_last(m, x, step, d_minus_1, name):
    """A register that is high while the element counter ``x`` equals
    ``d_minus_1`` (FPGA timing: the counter's users see a flip-flop, not a
    comparison with ``d``).  ``step``: ``x`` moves on this cycle, to 0 when
    the flag is high and to ``x + 1`` otherwise.  The three candidate
    comparisons are equalities of registers (``x + 1 == d - 1`` as ``x ==
    d - 2``, d - 2 registered: no adder, so Yosys builds no carry chain
    that ``step`` could end up in front of); ``step`` merely picks one.
    While ``x`` holds, the flag is recomputed, so a change of
    ``d_minus_1`` (only while the unit is idle) is followed two cycles
    later."""
    flag = Signal(name=f"{name}_last")
    d_minus_2 = Signal.like(d_minus_1, name=f"{name}_d_minus_2")
    m.d.sync += d_minus_2.eq(d_minus_1 - 1)
    # (AND-OR, not multiplexers: Yosys's opt_share turns a multiplexer of
    # two compares with a shared operand into one compare of multiplexed
    # operands)
    to_zero, to_next, holds = Signal(), Signal(), Signal()
    m.d.comb += [to_zero.eq(d_minus_1 == 0), to_next.eq(x == d_minus_2),
                 holds.eq(x == d_minus_1)]
    m.d.sync += flag.eq((step & flag & to_zero) | (step & ~flag & to_next) | (~step & holds))
    return flag


class MergeUnit(wiring.Component):
    """Merge unit at the end of one row chain (local or global row).

    Parameters (all from :class:`hw.config.AcceleratorConfig`)
    ----------------------------------------------------------
    head_dim_max : ``max_head_dim``
    out_width : ``out_width`` (output element width)
    out_frac_extra : ``out_frac_extra`` (output fraction bits beyond V's; the
        rounding shift is recip_frac - out_frac_extra)
    exp_width : ``exp_width``
    in_sum_width : ``row_sum_width`` (row-end sum, unsigned)
    in_out_width : ``wsum_width`` (row-end weighted-sum element, signed)
    acc_sum_width : ``merge_sum_width`` (accumulated sum, unsigned)
    acc_out_width : ``merge_out_width`` (accumulated elements, signed)
    recip_frac : ``recip_frac`` (K of the reciprocal floor(2**K / S))
    div_steps_per_cycle : restoring-divider steps (quotient bits) per cycle,
        default 2; trades divider logic depth (that many subtract-compare
        stages of ``acc_sum_width`` bits in series) for normalization time.
    min_head_dim : smallest d the unit is used with (default 1).  From 3 on
        the element merge takes two cycles (shift registered, then add and
        write: FPGA timing) and :attr:`emit_latency` is one more; so does the
        row-sum merge (the shifted sums registered, then added: S is written
        at the end of R+2, :attr:`rs_latency` is one more, and row sums must
        be at least 2 cycles apart); ``head_dim`` must then never be below
        it (the accelerator top guarantees d >= 4 and row sums 2d apart).

    Ports
    -----
    head_dim : In, unsigned ``head_dim_width`` -- d, 1..head_dim_max; must be
        constant while any pass is in flight.
    rs_valid, rs_sum, rs_exp, rs_first, rs_last : In -- the row sum of one
        pass (``rs_sum`` unsigned ``in_sum_width``, ``rs_exp`` signed
        ``exp_width``) with its pass flags: ``rs_first`` merges into the exact
        zero (0, exp_min) instead of the accumulator (first pass of a tile);
        ``rs_last`` closes the tile: after this pass is merged the tile is
        normalized and emitted.  One-cycle strobe.
    el_valid, el_data : In -- the d weighted-sum elements of the pass
        (``el_data`` signed ``in_out_width``), element 0 first, on d
        consecutive cycles, at least 1 cycle after their pass's row sum.  The
        exponent of these elements is the one that came with the row sum.
        Elements are matched with row sums in order.
    output : Out(:class:`amaranth.lib.stream.Signature` of
        :func:`merge_output_layout`) -- the normalized elements o[0..d-1] of
        each tile, in order, tile after tile; ``output.p.last`` marks o[d-1].
        Honours ``output.ready`` (back-pressure); payload and valid are
        registered.
    busy : Out -- the accumulator bank the next tile will use still holds an
        unfinished tile (not yet fully emitted); a row sum arriving while
        ``busy`` is high is an overrun (see timing rules).
    idle : Out -- nothing in flight (no pass awaiting elements, no tile
        awaiting normalization or emission, output register empty).
    error : Out, sticky until reset -- a protocol violation was seen: a row
        sum while ``busy``, a third row sum while two passes still await
        their elements, or an element with no pass awaiting elements; it
        rises 2 cycles after the violating input (registered, then the
        sticky register).  Results after an error are undefined.

    Operation and storage
    ---------------------
    The accumulator is double-buffered: two banks, each with a registered
    (S, E) pair and ``head_dim_max`` elements of O in one
    :class:`amaranth.lib.memory.Memory` (depth 2 * 2**ceil(log2(head_dim_max)),
    one write port, a transparent read port for the read-modify-write and a
    second read port for the normalization).  Tiles alternate banks; the
    passes of tile t+1 merge into one bank while tile t is normalized and
    emitted from the other.

    * Row sum (cycle R): E of the bank <- max(E, rs_exp) (E = exp_min when
      ``rs_first``) at the end of cycle R, the two shift amounts registered;
      S <- (S >>> (E'-E)) + (rs_sum >>> (E'-rs_exp)) (S = 0 when
      ``rs_first``) at the end of cycle R+1.  With ``min_head_dim`` >= 3:
      the bank's old S (0 when ``rs_first``; the S written at the end of R
      forwarded) registered at the end of R, both shifted sums at the end
      of R+1, S written at the end of R+2.  The pass's two shift amounts
      (accumulator, pass) are queued for its elements (2-entry queue: up to
      two passes may have delivered their row sum and still await their
      elements, as in the array where pass n+1's row sum precedes pass n's
      elements).
    * Element x (cycle t): the memory read is issued in cycle t, its data
      registered at the end of t+1, the aligned add and the memory write
      happen in cycle t+2 (read port transparent for a write in cycle t, the
      write of cycle t+1 forwarded from a register, so back-to-back passes
      with d = 1 are fine).  With ``min_head_dim`` >= 3 the shift and the
      add take a cycle each (write in t+3, no forwarding); with
      ``min_head_dim`` >= 4 no word is read in the cycle it is written and
      the read port is not transparent (no bypass multiplexer behind the
      block RAM).
    * Reciprocal: when the last pass's row sum is merged, a restoring divider
      computes floor(2**K / S) (0 when S = 0): it starts at R+rs_latency (if idle;
      banks are served in order) and is busy 1 + ceil((K+1)/steps) cycles;
      the quotient is copied into the bank's reciprocal register in the
      next cycle, so the reciprocal is usable from cycle
      R + rs_latency + ``normalize_cycles(recip_frac, div_steps_per_cycle)``
      (= 2 + ceil((K+1)/steps)).
    * Emission: element x of a tile is read for normalization as soon as
      the last pass's element x is written and the reciprocal is ready (the
      emission follows the merge of the last pass element by element, in
      order): read (1 cycle), read data registered, the multiplier
      operands registered again in 18-bit pieces, the partial products of
      O * recip registered twice (:class:`hw.dsp.PipelinedMultiplier`: on
      an ECP5 the operand and first product registers are the 18x18 DSP
      blocks' own, the second is next to the adders), the partial products
      and the rounding constant summed by a tree of two-input adders
      (:attr:`add_levels` register levels, 3 for 6 pieces), shift and
      saturate (registered into ``output``): FPGA timing, every multiplier
      and wide adder ends in a register.  Without back-pressure, with the
      last pass's element x arriving at cycle t_x (t_x = t_0 + x) and
      lam = :attr:`emit_latency` (12 with 6 pieces): o[0] is valid at cycle
      max(t_0 + lam, R + rs_latency + normalize_cycles + out_latency)
      (:attr:`rs_latency` = 2, :attr:`out_latency` = 9 with 6 pieces) and o[x] at
      max(t_x + lam, (cycle of o[x-1]) + 1), i.e. lam cycles after its
      input element when the divider is not the bottleneck.  Under
      back-pressure the read/multiply/round pipeline stalls as a whole (no
      element is lost or duplicated); the merge side never stalls.  Its
      clock enable (output register empty, or ``output.ready``) is formed
      per register group from a copy of the output valid bit; the drain's
      "element written" flag is a register.
    * Reset: the control registers (valid bits, flags, counters, bank
      state) have one; the data registers (sums, reciprocals, divider,
      element pipeline, normalization products, ``output.p.data``) do not
      (every use is qualified by a flag that has one; FPGA timing, the
      reset net reaches fewer flip-flops).

    Timing rules for the caller (controller)
    ----------------------------------------
    * A tile's bank is free again in the cycle after its o[d-1] is
      transferred (valid & ready).  The first row sum of tile t+2 (same bank
      as tile t) must not arrive before that: ``busy`` is high exactly while
      the bank the next row sum would use is not free.  Without back-pressure
      tile t's bank is free at max(L + lam + 1, R + rs_latency + normalize_cycles
      + out_latency + d)
      (L = t_{d-1}, the last element of the last pass) if the divider was
      idle at R+rs_latency (it serves the tiles in order, one at a time).
    * Sustained rate without back-pressure: tiles of one pass each, a pass
      every 2d cycles (the array's cadence), element 0 of a pass at most
      g cycles after its row sum: the controller never sees ``busy`` when
      g <= 3d - lam and normalize_cycles <= min(2d, 3d - rs_latency -
      out_latency) (tested with
      g = 2d - 2; small preset with the default 2 steps/cycle:
      normalize_cycles = 22, so d >= 11).  Longer tiles only relax this.
    * At most two passes may be waiting for their elements; a pass's elements
      arrive on d consecutive cycles.
    * Elements of consecutive passes may follow each other without a gap;
      row sums may arrive in any cycle (also while elements arrive; with
      ``min_head_dim`` >= 3 at least 2 cycles apart).
    * ``head_dim`` may change only while ``idle``.
    """

    #: cycles from a row sum to its accumulated sum (the divider may start
    #: then; class value: ``min_head_dim < 3``, one more from 3 on)
    rs_latency = 2

    def __init__(self, *, head_dim_max: int, out_width: int, out_frac_extra: int, exp_width: int,
                 in_sum_width: int, in_out_width: int, acc_sum_width: int,
                 acc_out_width: int, recip_frac: int, div_steps_per_cycle: int = 2,
                 min_head_dim: int = 1):
        if head_dim_max < 1:
            raise ValueError(f"head_dim_max = {head_dim_max} is invalid: allowed >= 1")
        if not 1 <= div_steps_per_cycle <= recip_frac + 1:
            raise ValueError(f"div_steps_per_cycle = {div_steps_per_cycle} is invalid: "
                             f"allowed 1..recip_frac+1 = 1..{recip_frac + 1}")
        if acc_sum_width < in_sum_width or acc_out_width < in_out_width:
            raise ValueError("accumulator widths must be at least the input widths")
        self.head_dim_max = head_dim_max
        if not 1 <= min_head_dim <= head_dim_max:
            raise ValueError(f"min_head_dim = {min_head_dim} is invalid: allowed "
                             f"1..head_dim_max = 1..{head_dim_max}")
        self.min_head_dim = min_head_dim
        # d >= 3: the element merge may take two cycles (shift, then add and
        # write) without forwarding: a word is read again at least 3 cycles
        # after it was read
        self.deep = min_head_dim >= 3
        self.rs_latency = type(self).rs_latency + int(self.deep)
        # the normalization product O * recip: 18x18 pieces (17-bit unsigned
        # chunks, the top chunk of O signed) summed with the rounding
        # constant by a tree of two-input adders, one register level each
        # (FPGA timing: one carry chain per cycle)
        n_pieces = -(-acc_out_width // _MUL_CHUNK) * -(-(recip_frac + 1) // _MUL_CHUNK)
        #: register levels of the adder tree (ceil(log2(pieces + 1)))
        self.add_levels = _clog2(n_pieces + 1)
        #: cycles from an emission read to the output register: read data,
        #: operand pieces, the multipliers, the adder tree, shift/saturate
        self.out_latency = 3 + MUL_LATENCY + self.add_levels
        #: cycles from an element of a tile's last pass to its output
        #: element (one more with ``min_head_dim >= 3``)
        self.emit_latency = 3 + self.out_latency + int(self.deep)
        if not 0 <= out_frac_extra < recip_frac:
            raise ValueError(f"out_frac_extra = {out_frac_extra} is invalid: "
                             f"allowed 0..recip_frac-1 = 0..{recip_frac - 1}")
        self.out_width = out_width
        self.out_frac_extra = out_frac_extra
        self.exp_width = exp_width
        self.in_sum_width = in_sum_width
        self.in_out_width = in_out_width
        self.acc_sum_width = acc_sum_width
        self.acc_out_width = acc_out_width
        self.recip_frac = recip_frac
        self.div_steps_per_cycle = div_steps_per_cycle
        self.index_width = max(1, _clog2(head_dim_max))
        self.head_dim_width = max(1, head_dim_max.bit_length())
        self.normalize_cycles = normalize_cycles(recip_frac=recip_frac,
                                                 div_steps_per_cycle=div_steps_per_cycle)
        layout = merge_output_layout(head_dim_max=head_dim_max, out_width=out_width)
        super().__init__({
            "head_dim": In(unsigned(self.head_dim_width)),
            "rs_valid": In(1),
            "rs_sum": In(unsigned(in_sum_width)),
            "rs_exp": In(signed(exp_width)),
            "rs_first": In(1),
            "rs_last": In(1),
            "el_valid": In(1),
            "el_data": In(signed(in_out_width)),
            "output": Out(stream.Signature(layout)),
            "busy": Out(1),
            "idle": Out(1),
            "error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        K = self.recip_frac
        xw = self.index_width
        ew = self.exp_width
        exp_min = -(1 << (ew - 1))
        # registered (FPGA timing; head_dim changes only while idle, and
        # elements arrive at least a cycle after their row sum), a copy for
        # the element side and one for the drain, kept apart (hw.fanout:
        # Yosys merged the merge units' registers into one net reaching
        # all of them)
        d_minus_1_next = Signal(self.head_dim_width)
        m.d.comb += d_minus_1_next.eq(self.head_dim - 1)
        d_minus_1_el, d_minus_1_drain = register_copies(m, d_minus_1_next, 2, "d_minus_1",
                                                        reset_less=True)

        err = Signal()
        m.d.comb += self.error.eq(err)

        # ---------------------------------------------------------- bank state
        # (data registers without reset, here and below: every use is
        # qualified by a flag that has one; FPGA timing, the reset net
        # reaches fewer flip-flops)
        S = [Signal(unsigned(self.acc_sum_width), name=f"sum{b}", reset_less=True)
             for b in range(2)]
        E = [Signal(signed(ew), name=f"exp{b}", init=exp_min) for b in range(2)]
        pending = [Signal(name=f"pending{b}") for b in range(2)]       # last rs seen, not emitted
        sum_final = [Signal(name=f"sum_final{b}") for b in range(2)]   # awaiting the divider
        recip = [Signal(unsigned(K + 1), name=f"recip{b}", reset_less=True) for b in range(2)]
        recip_ok = [Signal(name=f"recip_ok{b}") for b in range(2)]
        # elements of the bank's last pass written so far (the emission may
        # follow the merge of the last pass element by element)
        fin_cnt = [Signal(range(self.head_dim_max + 1), name=f"fin_cnt{b}") for b in range(2)]

        def sel(sigs, b):
            return Mux(b, sigs[1], sigs[0])

        wb = Signal()           # bank of the tile receiving row sums
        m.d.comb += self.busy.eq(sel(pending, wb))

        # ------------------------------------------------ pass queue (2 entries)
        desc_layout = data.StructLayout({
            "bank": 1, "first": 1, "last": 1,
            # the element shifts (accumulator, pass): the row sum's exponent
            # alignment, kept for the pass's elements (FPGA timing: not
            # computed in front of the element shifter)
            "sha": unsigned(ew), "shb": unsigned(ew),
        })
        descs = [Signal(desc_layout, name=f"pass{i}") for i in range(2)]
        rp = Signal()           # queue write slot
        ep = Signal()           # queue read slot (pass receiving elements)
        count = Signal(range(3))

        # ------------------------------------------------------------ row sums
        # two halves (FPGA timing): in the row sum's cycle the exponent
        # E' = max(E, rs_exp) and the two shift amounts (E updated, shifts
        # registered); in the next cycle S' = (S >>> sh_a) + (rs_sum >>> sh_b).
        # A row sum in the next cycle sees the new E and, one cycle later,
        # the new S: no forwarding needed (with min_head_dim >= 3 see below).
        # The alignment twice, against E and against the exact zero of a
        # first pass (E = exp_min), rs_first selecting the results (FPGA
        # timing: rs_first in front of the exponent compare's carry chain
        # was the merge unit's longest path); only exponent halves are used.
        # E of bank wb in a register of its own (FPGA timing: no bank select
        # behind wb's register in front of the exponent comparison).
        e_cur = Signal(signed(ew), name="exp_cur", init=exp_min)
        align = {}
        for name, acc_e in (("align_sum", e_cur), ("align_first", Const(exp_min, signed(ew)))):
            align[name] = al = AlignAdd(
                a_width=self.acc_sum_width, b_width=self.in_sum_width,
                out_width=self.acc_sum_width, exp_width=ew, signed=False)
            m.submodules[name] = al
            m.d.comb += [al.ea.eq(acc_e), al.eb.eq(self.rs_exp), al.a.eq(0), al.b.eq(0)]
        al_s = Signal(data.StructLayout({"exp": signed(ew), "shift_a": unsigned(ew),
                                         "shift_b": unsigned(ew)}), name="align_rs")
        for field in ("exp", "shift_a", "shift_b"):
            m.d.comb += al_s[field].eq(Mux(self.rs_first, getattr(align["align_first"], field),
                                           getattr(align["align_sum"], field)))
        r2_valid, r2_last, r2_bank = Signal(), Signal(), Signal()
        r2_sum = Signal(unsigned(self.in_sum_width), reset_less=True)
        m.d.sync += [r2_valid.eq(self.rs_valid), r2_last.eq(self.rs_last), r2_bank.eq(wb),
                     r2_sum.eq(self.rs_sum)]
        # the shift amounts in a copy per byte of the shifted sum (FPGA
        # timing: one register's net across a 22-bit shifter was routed 7 ns
        # long)
        r2_sha = register_copies(m, al_s.shift_a, -(-self.acc_sum_width // 8), "r2_sha",
                                 reset_less=True)
        r2_shb = register_copies(m, al_s.shift_b, -(-self.in_sum_width // 8), "r2_shb",
                                 reset_less=True)
        s_new = Signal(unsigned(self.acc_sum_width))
        s_a = Signal(unsigned(self.acc_sum_width))
        s_b = Signal(unsigned(self.acc_sum_width))
        m.d.comb += s_b.eq(shift_right_in_groups(r2_sum, r2_shb, self.in_sum_width))
        if self.deep:
            # a third cycle (FPGA timing): the two shifted sums registered,
            # added in the next cycle.  The accumulator's old sum (0 for a
            # first pass) is selected and registered in the row sum's cycle
            # already, so the second cycle holds the shifter only, not the
            # bank select behind a register with the sum's width as fan-out.
            # It is the S of the second cycle: the sum written at the end of
            # the row sum's cycle (a row sum of the same bank 2 cycles
            # earlier) is forwarded.  The bank select is a copy of wb
            # (wb's own loads are the exponent alignment's).
            wb_sum = kept_apart_signal(name="wb_sum")
            with m.If(self.rs_valid & self.rs_last):
                m.d.sync += wb_sum.eq(~wb_sum)
            r2_old = Signal(unsigned(self.acc_sum_width), reset_less=True)
            sv_valid, sv_last, sv_bank = Signal(), Signal(), Signal()
            sv_a = Signal.like(s_a, reset_less=True)
            sv_b = Signal.like(s_b, reset_less=True)
            s_fwd = Signal()
            m.d.comb += [s_fwd.eq(sv_valid & (sv_bank == wb_sum)),
                         s_a.eq(shift_right_in_groups(r2_old, r2_sha, self.acc_sum_width))]
            m.d.sync += [r2_old.eq(Mux(self.rs_first, 0, Mux(s_fwd, s_new, sel(S, wb_sum)))),
                         sv_valid.eq(r2_valid), sv_last.eq(r2_last), sv_bank.eq(r2_bank),
                         sv_a.eq(s_a), sv_b.eq(s_b)]
            s_valid, s_last, s_bank = sv_valid, sv_last, sv_bank
            m.d.comb += s_new.eq(sv_a + sv_b)
        else:
            r2_first = Signal()
            m.d.sync += r2_first.eq(self.rs_first)
            m.d.comb += s_a.eq(shift_right_in_groups(Mux(r2_first, 0, sel(S, r2_bank)), r2_sha,
                                                     self.acc_sum_width))
            s_valid, s_last, s_bank = r2_valid, r2_last, r2_bank
            m.d.comb += s_new.eq(s_a + s_b)
        with m.If(s_valid):
            for b in range(2):
                with m.If(s_bank == b):
                    m.d.sync += S[b].eq(s_new)
                    with m.If(s_last):
                        m.d.sync += sum_final[b].eq(1)

        push = Signal()
        pop = Signal()
        m.d.comb += push.eq(self.rs_valid)
        with m.If(self.rs_valid):
            for b in range(2):
                with m.If(wb == b):
                    m.d.sync += E[b].eq(al_s.exp)
                    with m.If(self.rs_last):
                        m.d.sync += pending[b].eq(1)
            # (after a last row sum wb moves to the other bank, whose E is
            # not written in this cycle)
            m.d.sync += e_cur.eq(Mux(self.rs_last, Mux(wb, E[0], E[1]), al_s.exp))
            for i in range(2):
                with m.If(rp == i):
                    m.d.sync += [
                        descs[i].bank.eq(wb), descs[i].first.eq(self.rs_first),
                        descs[i].last.eq(self.rs_last),
                        descs[i].sha.eq(al_s.shift_a), descs[i].shb.eq(al_s.shift_b),
                    ]
            m.d.sync += rp.eq(~rp)
            with m.If(self.rs_last):
                m.d.sync += wb.eq(~wb)
        # the violations are registered, then set the sticky flag (FPGA
        # timing: the element handshake and the pass count were 5 LUT
        # levels in front of it); the flag rises 2 cycles after the
        # violating input
        err_rs, err_el = Signal(), Signal()
        m.d.sync += err_rs.eq(self.rs_valid & (sel(pending, wb) | ((count == 2) & ~pop)))
        with m.If(err_rs | err_el):
            m.d.sync += err.eq(1)

        # ------------------------------------------------------------ elements
        depth = 2 << xw
        m.submodules.mem = mem = Memory(shape=signed(self.acc_out_width), depth=depth, init=[])
        wp = mem.write_port()
        # transparent (a bypass multiplexer behind the block RAM, FPGA timing:
        # its clock-to-output is ~5.8 ns) only where a word can be read in
        # the cycle it is written: the write is 2 (deep: 3) cycles after the
        # read, the same word is read again d cycles after it was read
        rd_acc = mem.read_port(
            transparent_for=(wp,) if self.min_head_dim <= 2 + int(self.deep) else ())
        rd_out = mem.read_port()

        el_x = Signal(xw)
        el_step = Signal()          # el_x moves on (to 0 after d-1)
        el_last = _index_is_last(m, el_x, el_step, d_minus_1_el, "el")
        cur = Signal(desc_layout)
        m.d.comb += cur.eq(Mux(ep, descs[1], descs[0]))
        s1_valid = Signal()
        s1_x = Signal(xw)
        s1_data = Signal(signed(self.in_out_width), reset_less=True)
        s1_desc = Signal(desc_layout)

        m.d.comb += [
            rd_acc.addr.eq(Cat(el_x, cur.bank)),
            rd_acc.en.eq(self.el_valid),
        ]
        # s1's data registers load every cycle (FPGA timing: the element
        # accepted -- a pass awaiting elements -- is not their clock enable);
        # every later use is gated by a valid bit
        m.d.sync += [s1_valid.eq(el_step), s1_x.eq(el_x), s1_data.eq(self.el_data),
                     s1_desc.eq(cur)]
        m.d.sync += err_el.eq(self.el_valid & ~count.any())
        with m.If(self.el_valid):
            with m.If(count.any()):
                m.d.comb += el_step.eq(1)
                with m.If(el_last):
                    m.d.comb += pop.eq(1)
                    m.d.sync += [el_x.eq(0), ep.eq(~ep)]
                with m.Else():
                    m.d.sync += el_x.eq(el_x + 1)
        with m.If(push & ~pop):
            with m.If(count != 2):
                m.d.sync += count.eq(count + 1)
        with m.Elif(pop & ~push):
            m.d.sync += count.eq(count - 1)

        # s1 -> s2: the element pre-shifted (by its pass's queued shift) and
        # the forwarding condition are computed from the s1 registers; the
        # accumulator word read for s1 is registered as it leaves the block
        # RAM.  s2: the aligned add (accumulator shifted + pre-shifted element)
        # and the memory write.  The write of the element just before (one
        # cycle earlier, not yet visible to s1's read) is forwarded.
        s2_valid = Signal()
        s2_x = Signal(xw)
        s2_desc = Signal(desc_layout)
        s2_acc = Signal(signed(self.acc_out_width), reset_less=True)
        s2_sha = Signal(unsigned(ew))
        s2_b = Signal(signed(self.in_out_width), reset_less=True)  # element >>> shift_b
        s1_addr, s2_addr = Signal(xw + 1), Signal(xw + 1)
        m.d.comb += [s1_addr.eq(Cat(s1_x, s1_desc.bank)), s2_addr.eq(Cat(s2_x, s2_desc.bank))]
        m.d.sync += [s2_valid.eq(s1_valid), s2_x.eq(s1_x), s2_desc.eq(s1_desc),
                     s2_acc.eq(rd_acc.data),
                     s2_sha.eq(s1_desc.sha), s2_b.eq(s1_data >> s1_desc.shb)]
        new_acc = Signal(signed(self.acc_out_width))
        if self.deep:
            # s2: accumulator shifted, registered; s3: add and write (no
            # forwarding: d >= 3 puts a word's next read after its write).
            # A pass's first element clears the shifted word, not the word
            # in front of the shifter (FPGA timing: the flag then reaches the
            # register's synchronous reset, not the first of the shifter's
            # logic levels); the data register has no reset of its own
            s3_valid, s3_last, s3_bank = Signal(), Signal(), Signal()
            s3_addr = Signal(xw + 1)
            s3_acc = Signal(signed(self.acc_out_width), reset_less=True)
            s3_b = Signal(signed(self.in_out_width), reset_less=True)
            m.d.sync += [s3_valid.eq(s2_valid), s3_last.eq(s2_desc.last),
                         s3_bank.eq(s2_desc.bank), s3_addr.eq(s2_addr),
                         s3_acc.eq(Mux(s2_desc.first, 0, s2_acc >> s2_sha)), s3_b.eq(s2_b)]
            m.d.comb += new_acc.eq(s3_acc + s3_b)
            w_valid, w_last, w_bank, w_addr = s3_valid, s3_last, s3_bank, s3_addr
        else:
            s2_fwd = Signal()
            lw_data = Signal(signed(self.acc_out_width), reset_less=True)  # last write
            acc_in = Signal(signed(self.acc_out_width))
            m.d.sync += s2_fwd.eq(s2_valid & (s2_addr == s1_addr))
            m.d.comb += [acc_in.eq(Mux(s2_desc.first, 0, Mux(s2_fwd, lw_data, s2_acc))),
                         new_acc.eq((acc_in >> s2_sha) + s2_b)]
            m.d.sync += lw_data.eq(new_acc)
            w_valid, w_last, w_bank, w_addr = s2_valid, s2_desc.last, s2_desc.bank, s2_addr
        m.d.comb += [
            wp.addr.eq(w_addr),
            wp.data.eq(new_acc),
            wp.en.eq(w_valid),
        ]

        # ------------------------------------------------ reciprocal (divider)
        steps = self.div_steps_per_cycle
        n_cycles = -(-(K + 1) // steps)
        pad = n_cycles * steps - (K + 1)     # leading zero numerator bits
        db = Signal()                        # bank served next / now
        # (kept apart, hw.fanout, like its copy div_busy_data below: Yosys
        # would otherwise merge the two into the kept one)
        div_busy = kept_apart_signal(name="div_busy")
        div_cnt = Signal(range(n_cycles + 1))
        divisor = Signal(unsigned(self.acc_sum_width), reset_less=True)
        rem = Signal(unsigned(self.acc_sum_width), reset_less=True)
        quo = Signal(unsigned(K + 1), reset_less=True)
        # registered at the start (FPGA timing: nothing but the subtract-compare
        # chain in a step cycle): the first step, a zero divisor
        div_first = Signal()
        div_zero = Signal()
        div_done = Signal()                  # quo holds the finished reciprocal
        done_bank = Signal()                 # of bank done_bank
        assert 0 <= pad < steps              # the numerator's 1 is in the first cycle

        # the start (idle, the bank's sum final) sets only the control flags
        # (FPGA timing: it is no clock enable of the data registers); while
        # idle the data registers load every cycle, so also in the start's:
        # the divisor and its zero flag from the bank served next, the
        # remainder and step count cleared (the quotient, below, is copied
        # in the cycle after the last step, before a new division shifts it)
        # div_busy_data is a copy of div_busy for the data registers' load
        # select (FPGA timing: kept apart, hw.fanout, so it sits by the
        # subtract-compare chain; div_busy's own net reached the chain's
        # first LUT with 3.7 ns of routing)
        div_busy_data = kept_apart_signal(name="div_busy_data")
        with m.If(~div_busy & sel(sum_final, db)):
            m.d.sync += [div_busy.eq(1), div_busy_data.eq(1)]
            for b in range(2):
                with m.If(db == b):
                    m.d.sync += sum_final[b].eq(0)
        with m.If(~div_busy):
            m.d.sync += div_cnt.eq(0)
        with m.Else():
            m.d.sync += div_cnt.eq(div_cnt + 1)
            with m.If(div_cnt == n_cycles - 1):
                m.d.sync += [div_busy.eq(0), div_busy_data.eq(0), db.eq(~db), div_done.eq(1),
                             done_bank.eq(db)]
        # the step chain (combinational; registered only while busy)
        r = rem
        q = quo
        for j in range(steps):
            # global step index = div_cnt*steps + j; numerator 2**K has its
            # only 1 bit at step `pad`
            nb = Signal(name=f"div_nb{j}")
            m.d.comb += nb.eq(div_first if j == pad else 0)
            t = Cat(nb, r)                           # 2*r + nb, acc_sum_width+1 bits
            ge = t >= divisor
            r_next = Signal(unsigned(self.acc_sum_width), name=f"div_rem{j}")
            m.d.comb += r_next.eq(Mux(ge, t - divisor, t))
            # (unnamed: the bit shifted out at the top is dropped)
            r, q = r_next, Cat(ge, q)
        with m.If(~div_busy_data):
            m.d.sync += [
                rem.eq(0),
                divisor.eq(sel(S, db)), div_first.eq(1),
                div_zero.eq(~sel(S, db).any()),
            ]
        with m.Else():
            m.d.sync += [rem.eq(r), div_first.eq(0)]
        # the quotient shifts every cycle, also while idle (FPGA timing: no
        # clear or enable; a division shifts in all K+1 + pad of its bits,
        # so what the register held before it starts is shifted out)
        m.d.sync += quo.eq(q)
        # the reciprocal is copied from the quotient register in the cycle
        # after the last step (FPGA timing: the reciprocal registers sit by
        # the normalization multipliers, away from the subtract-compare
        # chain); a division starting in that cycle replaces quo and
        # div_zero only at its end
        with m.If(div_done):
            m.d.sync += div_done.eq(0)
            for b in range(2):
                with m.If(done_bank == b):
                    m.d.sync += [recip[b].eq(Mux(div_zero, 0, quo)), recip_ok[b].eq(1)]

        # ------------------------------------------- emission (stall pipeline)
        out = self.output
        # the pipeline moves on (adv) when the output register is empty or
        # taken; adv is formed per group of registers from a copy of the
        # output valid bit (FPGA timing: the downstream ready reaches each
        # group's clock enables through one LUT of its own, not through one
        # net to all of the pipeline's, hundreds).  The copies load alike,
        # so every group's adv is the same.
        valid_copies = []

        def advance(name):
            v = out.valid if not valid_copies else kept_apart_signal(name=f"out_valid_{name}")
            a = Signal(name=f"adv_{name}")
            m.d.comb += a.eq(~v | out.ready)
            valid_copies.append((v, a))
            return a
        adv_out = advance("out")
        adv_drain = advance("drain")
        ob = Signal()                   # bank being (or next to be) emitted
        drain_x = Signal(xw)
        drain_step = Signal()       # drain_x moves on (to 0 after d-1)
        drain_last = _index_is_last(m, drain_x, drain_step, d_minus_1_drain, "drain")
        # drain_x < fin_cnt[ob] (element drain_x of bank ob written),
        # registered (FPGA timing: no bank select and comparison in front of
        # the drain's registers); its next value from the cases of the drain
        # (holds; moves on; moves to the other bank) and the count's
        # increment, using drain_x <= fin_cnt[ob] (the drain never passes
        # the count)
        drain_more = Signal()
        fin_inc = [Signal(name=f"fin_inc{b}") for b in range(2)]
        m.d.comb += [fin_inc[b].eq(w_valid & w_last & (w_bank == b)) for b in range(2)]
        more_hold = drain_more | sel(fin_inc, ob)
        more_step = (drain_x + 1 < sel(fin_cnt, ob)) | sel(fin_inc, ob)
        more_swap = Mux(ob, fin_cnt[0], fin_cnt[1]).any() | Mux(ob, fin_inc[0], fin_inc[1])
        m.d.sync += drain_more.eq(Mux(drain_step, Mux(drain_last, more_swap, more_step),
                                      more_hold))
        can_issue = Signal()
        m.d.comb += [
            can_issue.eq(sel(recip_ok, ob) & drain_more),
            rd_out.addr.eq(Cat(drain_x, ob)),
            rd_out.en.eq(adv_drain),
        ]
        sa_valid = Signal()
        sa_x = Signal(xw)
        sa_bank = Signal()
        sa_last = Signal()
        with m.If(adv_drain):
            m.d.sync += sa_valid.eq(can_issue)
            with m.If(can_issue):
                m.d.comb += drain_step.eq(1)
                m.d.sync += [sa_x.eq(drain_x), sa_bank.eq(ob), sa_last.eq(drain_last)]
                with m.If(drain_last):
                    m.d.sync += [drain_x.eq(0), ob.eq(~ob)]
                    for b in range(2):
                        with m.If(ob == b):
                            m.d.sync += fin_cnt[b].eq(0)
                with m.Else():
                    m.d.sync += drain_x.eq(drain_x + 1)

        # normalization product O * recip, pipelined for FPGA timing (every
        # multiplier output and every wide adder ends in a register):
        #   sa: memory data registered; sm0..: the multipliers' stages
        #   (partial products of <= 18x18: DSP blocks); sd: two partial sums registered (the
        #   rounding constant folded in); sb: the product registered
        shift = K - self.out_frac_extra
        aw, bw = self.acc_out_width, K + 1
        prod_shape = signed(aw + bw + 1)
        chunk = _MUL_CHUNK
        a_parts = [(lo, min(lo + chunk, aw)) for lo in range(0, aw, chunk)]
        b_parts = [(lo, min(lo + chunk, bw)) for lo in range(0, bw, chunk)]

        def stage(name, adv, valid, x, bank, last):
            regs = (Signal(name=f"{name}_valid"), Signal(xw, name=f"{name}_x"),
                    Signal(name=f"{name}_bank"), Signal(name=f"{name}_last"))
            with m.If(adv):
                m.d.sync += [regs[0].eq(valid), regs[1].eq(x), regs[2].eq(bank),
                             regs[3].eq(last)]
            return regs
        adv_sa2 = advance("sa2")
        sa2 = stage("sa2", adv_sa2, sa_valid, sa_x, sa_bank, sa_last)
        sa2_data = Signal(signed(aw), reset_less=True)
        sa2_recip = Signal(unsigned(bw), reset_less=True)
        with m.If(adv_sa2):
            m.d.sync += [sa2_data.eq(rd_out.data), sa2_recip.eq(sel(recip, sa_bank))]
        # the pieces' multipliers, each with its own adv (on an ECP5 the
        # first two stages are the DSP block's own registers, stalled with
        # the pipeline through their clock enable)
        pps = []
        mul_advs = []
        for ai, (alo, ahi) in enumerate(a_parts):
            top_a = ahi == aw
            for bi, (blo, bhi) in enumerate(b_parts):
                a_shape = signed(ahi - alo) if top_a else unsigned(ahi - alo)
                mul = PipelinedMultiplier(a_shape=a_shape, b_shape=unsigned(bhi - blo),
                                          enable=True)
                m.submodules[f"mul{ai}_{bi}"] = mul
                mul_advs.append(advance(f"mul{ai}_{bi}"))
                m.d.comb += [mul.a.eq(sa2_data[alo:ahi]), mul.b.eq(sa2_recip[blo:bhi]),
                             mul.en.eq(mul_advs[-1])]
                pps.append((alo + blo, mul.p))
        # sm0..: the MUL_LATENCY register stages of the valid, index and flags
        # alongside the multipliers (with the first multiplier's adv)
        mul_stages = []
        prev = sa2
        for k in range(MUL_LATENCY):
            prev = stage(f"sm{k}", mul_advs[0], *prev)
            mul_stages.append(prev)
        # the pieces and the rounding constant summed pairwise, a register
        # level per tree level (self.add_levels); each sum with its own adv,
        # the level's stage of the valid, index and flags with its first one's
        terms = [pp << off for off, pp in pps] + [Const(1 << (shift - 1), prod_shape)]
        add_stages = []
        for level in range(self.add_levels):
            sums = []
            for i in range(0, len(terms), 2):
                ps = Signal(prod_shape, name=f"psum{level}_{i // 2}", reset_less=True)
                adv_ps = advance(f"psum{level}_{i // 2}")
                with m.If(adv_ps):
                    m.d.sync += ps.eq(terms[i] + terms[i + 1] if i + 1 < len(terms)
                                      else terms[i])
                if i == 0:
                    prev = stage(f"add{level}", adv_ps, *prev)
                    add_stages.append(prev)
                sums.append(ps)
            terms = sums
        assert len(terms) == 1
        sb_valid, sb_x, sb_bank, sb_last = prev
        sb_prod = terms[0]

        rounded = Signal(signed(prod_shape.width - shift + 1))
        m.d.comb += rounded.eq(sb_prod >> shift)
        sat = Signal(signed(self.out_width))
        m.d.comb += sat.eq(saturate(rounded, self.out_width))
        out_bank = Signal()
        out_data = Signal.like(out.p.data, name="out_data", reset_less=True)
        m.d.comb += out.p.data.eq(out_data)
        with m.If(adv_out):
            m.d.sync += [
                out_data.eq(sat), out.p.index.eq(sb_x), out.p.last.eq(sb_last),
                out_bank.eq(sb_bank),
            ]
        for v, a in valid_copies:
            with m.If(a):
                m.d.sync += v.eq(sb_valid)
        with m.If(out.valid & out.ready & out.p.last):
            for b in range(2):
                with m.If(out_bank == b):
                    m.d.sync += [pending[b].eq(0), recip_ok[b].eq(0)]

        # count the written elements of last passes (after the drain's clear;
        # the two never touch the same bank in one cycle)
        for b in range(2):
            with m.If(fin_inc[b]):
                m.d.sync += fin_cnt[b].eq(fin_cnt[b] + 1)

        m.d.comb += self.idle.eq(
            ~count.any() & ~r2_valid & ~s_valid & ~s1_valid & ~s2_valid & ~w_valid & ~pending[0] & ~pending[1] & ~div_busy
            & ~div_done
            & ~sa_valid & ~sa2[0] & ~Cat(*[st[0] for st in mul_stages + add_stages]).any()
            & ~out.valid)
        return m
