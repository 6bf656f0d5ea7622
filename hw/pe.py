"""The processing element (PE) of the attention array.

One PE pairs one query with one key (and the key's value vector) per pass and
runs the four phases of ``docs/arithmetic.md`` section 4:

1. score MAC   (:class:`hw.score_mac.ScoreMac`)      q*k of t = 0 .. d-1 through the
                                                     pipelined multiplier, accumulated
                                                     M cycles later
2. exp         (:class:`hw.exp2.Exp2Pwl`)             score at t = d + M, result at t = d + L
3. row sum     (the formula of :class:`hw.align_add.AlignAdd`, in two halves):
                                                     exponent max and shift amounts at
                                                     t = d + L - 1, shifted sum at t = d + L
4. weighted sum(the formula of :class:`hw.weighted_acc.WeightedAcc`, in three
   stages): value element x on ``kv_in`` at t = 3d + x, p*v through the
   pipelined multiplier, the product shifted at t = 3d + x + M, aligned
   add with the left neighbour's partial at t = 3d + x + M + 1.  With
   ``wsum_stage`` = 1 the partial is shifted (and registered) at
   t' + M + 1 and added at t' + M + 2, t' = 3d + x + ``value_delay``: the
   PE takes its value element ``value_delay`` cycles after it was on
   ``kv_in`` (a register line in front of the p*v multiplier), because a
   chain of such PEs advances the weighted sum 2 cycles per PE while keys
   and values still move 1 cycle per PE (:func:`chain_row`: PE p of a
   chain gets ``value_delay`` = p)

``t`` is the PE's local time: the cycle its first query element is on
``q_in``.  ``M`` = :data:`hw.dsp.MUL_LATENCY` = 3: both multipliers (q*k
and p*v) are :class:`hw.dsp.PipelinedMultiplier` s, operands and product
registered (on an ECP5 the DSP block's own registers: FPGA timing, see
:mod:`hw.dsp`).  ``L`` = :attr:`PE.exp_latency` = M (the rest of the score
multiplier's pipeline after t = d) + ``Exp2Pwl.latency``.  The exp unit's
narrow slope*f product is built from LUTs (no DSP block).

Control travels with the data (no global sequencer):

* **horizontal control** ``q_valid/q_last/q_parity`` rides with the
  query element on ``q_in`` and leaves (registered) on ``q_*_out``;
* **weighted-sum control** ``ws_valid/ws_parity`` rides on the weighted-sum
  chain M cycles *ahead* of the partial: the value element on ``kv_in``
  must be present in the same cycle as ``ws_valid_in``; the partial
  ``ws_in`` of the same element M cycles later;
* the **row-sum** phase is triggered by the PE's own exp result (its inputs
  from the left neighbour arrive, registered, exactly in that cycle);
* ``pair_valid`` is sampled in the cycle of the last query element
  (``q_valid_in & q_last_in``); 0 forces the exact zero ``(0, exp_min)``
  through ``Exp2Pwl.zero_in`` (a masked pair adds nothing and does not raise
  the exponent).

Passes interleave: the key phase of pass n+1 overlaps the weighted-sum phase
of pass n, so the PE keeps ``(m, shift_partial, shift_product)`` of two
passes, indexed by the pass parity (written at the row-sum step of a pass,
read by its weighted-sum steps).  A new pass may start every ``2*d`` cycles;
this needs ``2*d >= L + 1``.

Row chain semantics (both SALO defects avoided): every PE, the left-most one
included, adds its own p to the row sum; a row-sum input with
``rs_valid_in = 0`` is taken as the exact zero ``(S=0, E=exp_min)`` (that is
how the array feeds column 0).  The exponent is replaced by ``exp_min``
there; the sum is added as it is, so ``rs_sum_in`` must be 0 in the cycle
after a cycle with ``rs_valid_in = 0`` (a PE's own ``rs_sum_out`` is: it
is 0 whenever it is not valid; :func:`chain_row` feeds a first PE the
constant 0).  Every weighted-sum step stores
``(partial_in >>> shift_partial) + ((m*v) >>> shift_product)``.

Registered (all outputs are registers, latency 1 from input to output):

* ``q_out, q_valid_out, q_last_out, q_parity_out`` and
  ``kv_out``: the inputs delayed by one cycle (right / diagonal neighbour);
* ``rs_exp_out, rs_valid_out``: the exponent half of the row-sum step, at
  local t = d + L (one cycle ahead of the sum); ``rs_exp_in``/``rs_valid_in``
  are expected with the same lead over ``rs_sum_in``;
* ``rs_sum_out, rs_parity_out``: the row-sum step result, at local
  t = d + L + 1 (one cycle after the step); a row end delays ``rs_exp_out``
  and ``rs_valid_out`` by one register to pair them with it.  ``rs_sum_out``
  is 0 in every other cycle (a synchronous reset from a register of the
  exp unit's valid; no reset of its own, so in the cycle after a reset it
  may still hold a sum);
* ``ws_valid_out, ws_parity_out``: ``ws_valid_in``/``ws_parity_in``
  :attr:`PE.ws_hop` = 1 + ``wsum_stage`` cycles later (they reach the right
  neighbour with its value element, delayed by its ``value_delay``);
* ``ws_out``: the weighted-sum step result, M + 2 + ``wsum_stage`` cycles
  after ``ws_valid_in`` (:attr:`PE.ws_latency`; 1 + ``wsum_stage`` cycles
  after ``ws_in``), i.e. :attr:`PE.ws_lead` = M + 1 cycles after
  ``ws_valid_out``: a row end delays the valid/parity by M + 1 registers
  to pair them with the data.

No output depends combinationally on an input.  The data registers
(``q_out``, ``kv_out``, ``rs_exp_out``, ``ws_out``, the pass slots, the
shift pipelines, the score accumulator and the multipliers' registers) have
no reset: every consumer qualifies them with a control flag that has one
(FPGA timing: the reset net reaches fewer flip-flops).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.dsp import MUL_LATENCY, PipelinedMultiplier
from hw.fanout import (delay_line, drive_from_data_register, kept_apart_signal, register_copies,
                       shift_right_in_groups)
from hw.exp2 import Exp2Pwl
from hw.score_mac import ScoreMac

__all__ = ["PE", "pe_params", "chain_row", "chain_value_delay"]


def pe_params(cfg) -> dict:
    """The keyword parameters of :class:`PE` taken from an
    :class:`hw.config.AcceleratorConfig`."""
    return dict(data_width=cfg.data_width, acc_width=cfg.acc_width,
                score_frac=cfg.score_frac, prob_width=cfg.prob_width,
                prob_frac=cfg.prob_frac, exp_width=cfg.exp_width,
                exp_segments=cfg.exp_segments, shift_width=cfg.shift_width,
                row_sum_width=cfg.row_sum_width, wsum_width=cfg.wsum_width,
                wsum_stage=cfg.wsum_stage)


class PE(wiring.Component):
    """One PE (see the module docstring for phases, timing and registers).

    Parameters (all from the config, see :func:`pe_params`): ``data_width``,
    ``acc_width``, ``score_frac``, ``prob_width``, ``prob_frac``,
    ``exp_width``, ``exp_segments``, ``shift_width``, ``row_sum_width``,
    ``wsum_width``, ``wsum_stage`` (0 or 1: a register between the
    weighted-sum step's shift and add).  ``value_delay``: registers in
    front of the p*v multiplier's value operand (the PE's position in a
    chain with ``wsum_stage``, :func:`chain_value_delay`; :func:`chain_row`
    checks it).  Edge options (default True; False omits the port and its
    register, for PEs whose neighbour does not exist): ``pass_q``
    (``q_*_out``), ``pass_kv`` (``kv_out``), ``rs_parity``
    (``rs_parity_out``, needed only at a row end), ``rs_chain_in``
    (``rs_*_in``: False for the first PE of a row, whose row sum starts from
    the exact zero).
    """

    #: cycles from t = d (the cycle after the last query element) to the
    #: row-sum step: the rest of the score multiplier's pipeline + the exp unit
    exp_latency = MUL_LATENCY + Exp2Pwl.latency
    #: cycles ``ws_valid_out``/``ws_parity_out`` lead ``ws_out`` (with or
    #: without ``wsum_stage``): the multiplier's pipeline and the product's shift
    ws_lead = MUL_LATENCY + 1

    @staticmethod
    def ws_latency_of(wsum_stage: int) -> int:
        """Cycles from ``ws_valid_in`` to ``ws_out`` of the same element
        (instance attribute ``ws_latency``)."""
        return MUL_LATENCY + 2 + wsum_stage

    @staticmethod
    def ws_hop_of(wsum_stage: int) -> int:
        """Cycles from ``ws_valid_in`` to ``ws_valid_out``: one hop of the
        weighted-sum chain (instance attribute ``ws_hop``)."""
        return 1 + wsum_stage

    #: cycles ``rs_exp_out``/``rs_valid_out`` lead ``rs_sum_out``
    rs_lead = 1

    def __init__(self, *, data_width: int, acc_width: int, score_frac: int,
                 prob_width: int, prob_frac: int, exp_width: int, exp_segments: int,
                 shift_width: int, row_sum_width: int, wsum_width: int,
                 wsum_stage: int = 0, value_delay: int = 0,
                 pass_q: bool = True, pass_kv: bool = True, rs_parity: bool = True,
                 rs_chain_in: bool = True):
        self.data_width = data_width
        self.acc_width = acc_width
        self.score_frac = score_frac
        self.prob_width = prob_width
        self.prob_frac = prob_frac
        self.exp_width = exp_width
        self.exp_segments = exp_segments
        self.shift_width = shift_width
        self.row_sum_width = row_sum_width
        self.wsum_width = wsum_width
        if wsum_stage not in (0, 1):
            raise ValueError(f"PE wsum_stage = {wsum_stage!r}: allowed 0 or 1")
        if value_delay < 0:
            raise ValueError(f"PE value_delay = {value_delay!r}: allowed >= 0")
        self.wsum_stage, self.value_delay = wsum_stage, value_delay
        self.ws_latency = self.ws_latency_of(wsum_stage)
        self.ws_hop = self.ws_hop_of(wsum_stage)
        self.exp_min = -(1 << (exp_width - 1))
        self.pass_q, self.pass_kv, self.has_rs_parity = pass_q, pass_kv, rs_parity
        self.rs_chain_in = rs_chain_in
        dw, ew = data_width, exp_width
        ports = {
            # horizontal: query element and its control
            "q_in": In(signed(dw)), "q_valid_in": In(1),
            "q_last_in": In(1), "q_parity_in": In(1),
            # diagonal (or vertical): key element in the K phase, value element in the V phase
            "kv_in": In(signed(dw)),
            # mask bit, sampled with the last query element
            "pair_valid": In(1),
            # row-sum chain
            "rs_sum_out": Out(unsigned(row_sum_width)), "rs_exp_out": Out(signed(ew)),
            "rs_valid_out": Out(1),
            # weighted-sum chain
            "ws_in": In(signed(wsum_width)), "ws_valid_in": In(1), "ws_parity_in": In(1),
            "ws_out": Out(signed(wsum_width)), "ws_valid_out": Out(1), "ws_parity_out": Out(1),
        }
        if pass_q:
            ports.update({"q_out": Out(signed(dw)), "q_valid_out": Out(1),
                          "q_last_out": Out(1),
                          "q_parity_out": Out(1)})
        if rs_chain_in:
            ports.update({"rs_sum_in": In(unsigned(row_sum_width)),
                          "rs_exp_in": In(signed(ew)), "rs_valid_in": In(1)})
        if pass_kv:
            ports["kv_out"] = Out(signed(dw))
        if rs_parity:
            ports["rs_parity_out"] = Out(1)
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        dw, ew, pw, sw = self.data_width, self.exp_width, self.prob_width, self.shift_width

        # ---- pass-through registers (horizontal and diagonal)
        if self.pass_q:
            drive_from_data_register(m, self.q_out, self.q_in, name="q_r")
            # the control flags are kept apart (hw.fanout): the rows of the
            # array are in lockstep, and Yosys would otherwise merge one
            # column's flag registers into one net reaching every row
            for flag in ("q_valid", "q_last", "q_parity"):
                r = kept_apart_signal(name=f"{flag}_r")
                m.d.sync += r.eq(getattr(self, f"{flag}_in"))
                m.d.comb += getattr(self, f"{flag}_out").eq(r)
        if self.pass_kv:
            drive_from_data_register(m, self.kv_out, self.kv_in, name="kv_r")

        # ---- phase 1: score MAC, t = 0 .. d-1 (score in mac.acc at t = d)
        m.submodules.mac = mac = ScoreMac(data_width=dw, acc_width=self.acc_width,
                                          product_reg=True, zero_port=True)
        m.d.comb += [mac.q.eq(self.q_in), mac.k.eq(self.kv_in), mac.en.eq(self.q_valid_in)]

        done_zero = Signal()     # masked pair of the pass that just completed
        done_par = Signal()
        last = self.q_valid_in & self.q_last_in
        with m.If(last):
            m.d.sync += [done_zero.eq(~self.pair_valid), done_par.eq(self.q_parity_in)]
        # t = d + mac.latency - 1: the score is complete in mac.acc
        # (done_zero/done_par hold until the next pass's last element, >= d cycles)
        done = last
        for n in range(mac.latency - 1):
            nxt = Signal(name=f"done_{n}")
            m.d.sync += nxt.eq(done)
            done = nxt
        sc_valid, sc_zero = Signal(), Signal()
        m.d.sync += [sc_valid.eq(done), sc_zero.eq(done_zero)]
        # the score accumulator is zeroed at the end of the cycle its score
        # is read (sc_valid's) and after a reset (FPGA timing: a synchronous
        # reset instead of a clear multiplexer in front of its adder; the
        # next pass's first product is accumulated >= d cycles later); a
        # register of its own, kept apart (hw.fanout: lockstep rows)
        mac_zero = kept_apart_signal(name="mac_zero", init=1)
        m.d.sync += mac_zero.eq(done)
        m.d.comb += mac.zero.eq(mac_zero)

        # ---- phase 2: exp, result at t = d + L
        m.submodules.exp = ex = Exp2Pwl(
            acc_width=self.acc_width, score_frac=self.score_frac, prob_width=pw,
            prob_frac=self.prob_frac, exp_width=ew, segments=self.exp_segments,
            lut_mult=True, late_exp=False)
        m.d.comb += [ex.score.eq(mac.acc), ex.valid_in.eq(sc_valid), ex.zero_in.eq(sc_zero)]
        par = done_par
        for n in range(self.exp_latency):
            nxt = Signal(name=f"exp_par_{n}")
            m.d.sync += nxt.eq(par)
            par = nxt

        # ---- phase 3: row-sum step, in two halves
        # exponent half at t = d + L - 1 (the exp unit's exponent is known a
        # cycle before its mantissa): E' = max(E, e) and the two shift amounts,
        # registered; rs_exp_out/rs_valid_out leave here (one cycle ahead of
        # rs_sum_out, so the right neighbour's exponent half sees them in time)
        e_in = Signal(signed(ew))
        if self.rs_chain_in:
            m.d.comb += e_in.eq(Mux(self.rs_valid_in, self.rs_exp_in, self.exp_min))
        else:
            m.d.comb += e_in.eq(self.exp_min)     # the row sum starts from the exact zero
        a_ge = e_in >= ex.exp_early
        sh_a = Signal(sw, reset_less=True)     # shift of the left partial (E' - E)
        sh_b = Signal(sw, reset_less=True)     # shift of this PE's mantissa (E' - e)
        drive_from_data_register(m, self.rs_exp_out, Mux(a_ge, e_in, ex.exp_early),
                                 name="rs_exp_r")
        m.d.sync += [
            self.rs_valid_out.eq(ex.valid_early),
            # exponent differences fit shift_width bits unsigned (the .eq
            # truncation drops only the sign bit of a non-negative difference)
            sh_a.eq(Mux(a_ge, 0, ex.exp_early - e_in)),
            sh_b.eq(Mux(a_ge, e_in - ex.exp_early, 0)),
        ]
        # sum half at t = d + L: S' = (S >>> sh_a) + (m >>> sh_b), registered.
        # The sum register is 0 in every cycle its sum is not valid, so a
        # left partial whose rs_valid_in was 0 is already the exact zero on
        # rs_sum_in and the step needs no select of its own (FPGA timing:
        # that select's register was shared by a column's PEs of all rows,
        # its route across the array in front of the shifter).  The zero is
        # a synchronous reset from a register of its own, high when the
        # sum is not valid (Yosys maps it to the flip-flops' LSR, no LUT;
        # the exp unit's valid, active low, took an inverter LUT); kept
        # apart (hw.fanout), else a column's PEs of all rows share it.  The
        # sum register has no reset (reset or clear would be a LUT again):
        # it is 0 one cycle after the clear register, which resets to 1.
        sum_clear = kept_apart_signal(name="rs_sum_clear", init=1)
        m.d.sync += sum_clear.eq(~ex.valid_early)
        left = self.rs_sum_in if self.rs_chain_in else 0
        rs_sum = Signal(self.row_sum_width, name="rs_sum", reset_less=True)
        m.d.sync += rs_sum.eq(Mux(sum_clear, 0, (left >> sh_a) + (ex.mant >> sh_b)))
        m.d.comb += self.rs_sum_out.eq(rs_sum)
        if self.has_rs_parity:
            m.d.sync += self.rs_parity_out.eq(par)

        # two pass slots: mantissa and the two shift amounts
        slot_m = [Signal(pw, name=f"m_{s}", reset_less=True) for s in range(2)]
        slot_sp = [Signal(sw, name=f"shift_partial_{s}", reset_less=True) for s in range(2)]
        slot_spr = [Signal(sw, name=f"shift_product_{s}", reset_less=True) for s in range(2)]
        for s in range(2):
            with m.If(ex.valid_out & (par == s)):
                m.d.sync += [slot_m[s].eq(ex.mant), slot_sp[s].eq(sh_a),
                             slot_spr[s].eq(sh_b)]

        # ---- phase 4: weighted-sum step for element x: value at t = 3d + x
        # stage A (t = 3d + x .. + MUL_LATENCY - 1): select the pass slot; m*v
        # in the pipelined multiplier, the shifts delayed alongside
        sel = self.ws_parity_in
        m.submodules.mv = mv = PipelinedMultiplier(a_shape=unsigned(pw), b_shape=signed(dw))
        # (value_delay: the weighted-sum control of a chain with wsum_stage
        # reaches this PE that many cycles after its value element)
        value = delay_line(m, self.kv_in, self.value_delay, "value", reset_less=True)
        m.d.comb += [mv.a.eq(Mux(sel, slot_m[1], slot_m[0])), mv.b.eq(value)]
        sh_part = Mux(sel, slot_sp[1], slot_sp[0])
        sh_prod = Mux(sel, slot_spr[1], slot_spr[0])
        for n in range(mv.latency):
            prod_d = Signal(sw, name=f"shift_product_d{n}", reset_less=True)
            m.d.sync += prod_d.eq(sh_prod)
            sh_prod = prod_d
        for n in range(mv.latency):
            part_d = Signal(sw, name=f"shift_partial_d{n}", reset_less=True)
            m.d.sync += part_d.eq(sh_part)
            sh_part = part_d
        # the last stage in two copies, one per half of the partial's
        # shifter (FPGA timing: one register's net reached the far half of
        # the shifter with ~4 ns of routing)
        part_copies = register_copies(m, sh_part, 2, "shift_partial_last", reset_less=True)
        # stage B (t = 3d + x + MUL_LATENCY): the product shifted, registered
        # (FPGA timing: one shifter per cycle, not two in front of the adder)
        prod = Signal(mv.p.shape(), name="product_shifted", reset_less=True)
        m.d.sync += prod.eq(mv.p >> sh_prod)
        # stage C (t = 3d + x + MUL_LATENCY + 1): aligned add with the left
        # partial, registered; with wsum_stage the shifted partial and the
        # product are registered first and the add is a cycle later (FPGA
        # timing: the shifter's three multiplexer levels and the carry chain
        # no longer share a cycle behind the left PE's register)
        part_shifted = shift_right_in_groups(self.ws_in, part_copies, self.wsum_width).as_signed()
        if self.wsum_stage:
            part_r = Signal(signed(self.wsum_width), name="partial_shifted", reset_less=True)
            prod_r = Signal(prod.shape(), name="product_shifted_d", reset_less=True)
            m.d.sync += [part_r.eq(part_shifted), prod_r.eq(prod)]
            part_shifted, prod = part_r, prod_r
        drive_from_data_register(m, self.ws_out, part_shifted + prod, name="ws_r")
        # (the weighted-sum control is kept apart, hw.fanout: every row's
        # first PE takes the same value-phase control, and Yosys would merge
        # a column's registers into one net reaching every row)
        for flag in ("ws_valid", "ws_parity"):
            src = getattr(self, f"{flag}_in")
            for n in range(self.ws_hop):
                r = kept_apart_signal(name=f"{flag}_r" if n == 0 else f"{flag}_r{n}")
                m.d.sync += r.eq(src)
                src = r
            m.d.comb += getattr(self, f"{flag}_out").eq(src)
        return m


def chain_value_delay(position: int, wsum_stage: int) -> int:
    """The ``value_delay`` of the PE at ``position`` (0 = first) of a row
    chain whose PEs have ``wsum_stage``: one cycle per weighted-sum stage
    of the PEs before it."""
    return position * wsum_stage


def chain_row(m, pes, *, q, q_valid, q_last, q_parity, v_valid, v_parity,
              stage_before: int | None = None, stage_prefix: str = "row"):
    """Wire ``pes`` left to right into one row chain inside module ``m``.

    PE 0 takes the query word and its control, starts the row sum from the
    exact zero (not valid, ``exp_min``) and the weighted sum from 0 with the
    value-phase control; every later PE takes the registered outputs of its
    left neighbour.  ``kv_in`` and ``pair_valid`` are left to the caller (they
    come from the diagonal or a test port).

    ``stage_before = p`` puts one register stage between PE p-1 and PE p on
    every chain (query and its control, row sum, weighted sum and their
    control): PE p and the PEs after it run one cycle later, as if an idle
    PE stood in between, so their ``kv_in`` and ``pair_valid`` must be one
    cycle later too.  Its flip-flops are free to sit anywhere between the
    two PEs (FPGA timing: the route from PE p-1's registers is no longer in
    front of PE p's shifter and adder); its registers are named
    ``<stage_prefix>_<chain>_stage``.  The control bits are kept apart
    (:mod:`hw.fanout`: the rows are in lockstep).  Otherwise adds no logic
    or registers.

    PEs built with ``wsum_stage`` = 1 must have ``value_delay`` = their
    position p in the chain (:func:`chain_value_delay`): the weighted-sum
    control reaches PE p p cycles after its value element."""
    for p, pe in enumerate(pes):
        if pe.value_delay != chain_value_delay(p, pe.wsum_stage):
            raise ValueError(
                f"PE {p} of a row chain has value_delay = {pe.value_delay}, needs "
                f"{chain_value_delay(p, pe.wsum_stage)} (wsum_stage = {pe.wsum_stage})")
    first = pes[0]
    m.d.comb += [first.q_in.eq(q), first.q_valid_in.eq(q_valid),
                 first.q_last_in.eq(q_last),
                 first.q_parity_in.eq(q_parity),
                 first.ws_in.eq(0), first.ws_valid_in.eq(v_valid),
                 first.ws_parity_in.eq(v_parity)]
    if first.rs_chain_in:
        m.d.comb += [first.rs_sum_in.eq(0), first.rs_exp_in.eq(first.exp_min),
                     first.rs_valid_in.eq(0)]
    chain = ("q", "q_valid", "q_last", "q_parity", "rs_sum", "rs_exp", "rs_valid",
             "ws", "ws_valid", "ws_parity")
    for p, (left, pe) in enumerate(zip(pes, pes[1:]), start=1):
        for name in chain:
            src = getattr(left, f"{name}_out")
            if p == stage_before:
                if len(src) == 1:
                    reg = kept_apart_signal(name=f"{stage_prefix}_{name}_stage")
                else:
                    # (data: no reset, its valid flag has one)
                    reg = Signal.like(src, name=f"{stage_prefix}_{name}_stage",
                                      reset_less=True)
                m.d.sync += reg.eq(src)
                src = reg
            m.d.comb += getattr(pe, f"{name}_in").eq(src)
