"""Piecewise-linear 2**score unit of a PE (stage 2 of SALO's PE)."""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .exp_table import exp_pwl_table

__all__ = ["Exp2Pwl"]

#: ``lut_mult``: largest table input (chunk + segment bits), one LUT level
#: on an ECP5 (a LUT6 is four LUT4s and two wide multiplexers of one slice pair)
TABLE_INPUTS = 6


class Exp2Pwl(wiring.Component):
    """p = 2**(score / 2**score_frac) as (mantissa ``mant``, exponent ``exp``).

    Parameters (computed by the caller from the config): ``acc_width`` (score,
    signed), ``score_frac`` (fraction bits of the score), ``prob_width`` /
    ``prob_frac`` (mantissa, unsigned, in [1, 2) when non-zero), ``exp_width``
    (exponent, signed), ``segments`` (a power of two; coefficients from
    :func:`hw.exp_table.exp_pwl_table`).

    With n = score >> score_frac (floor), f the low score_frac bits, seg the
    top log2(segments) bits of f and f_low the rest::

        mant = min(base[seg] + ((slope[seg]*f_low + 2**(score_frac-1)) >> score_frac),
                   2**prob_width - 1)
        n > exp_max: (min(2**(prob_frac+1)-1, 2**prob_width-1), exp_max)
        n < exp_min or zero_in: exact zero (0, exp_min);  else exp = n

    Bit-exact vs :func:`sim.models.pe_probability` (valid = not zero_in).

    Timing: pipelined, ``latency`` = 2, one score per cycle.  Registered:
    stage 1 after the table lookup and the multiply (slope*f_low, base,
    the clipped exponent, the over/underflow flags, valid, zero); stage 2 the
    outputs ``mant``, ``exp``, ``valid_out``.  Inputs sampled at edge t appear
    on the outputs after edge t+1 (readable in cycle t+2 counting the input
    cycle as 0).  No enable: the pipeline always advances; ``valid_out`` is
    ``valid_in`` delayed by 2.  Reset clears the flags and the outputs
    (outputs 0); the stage-1 data registers (product, base, exponent) have
    no reset, so ``exp_early`` is only meaningful with ``valid_early``.
    ``exp_early``/``valid_early`` (combinational from the stage-1 registers)
    give the exponent and valid one cycle before ``exp``/``valid_out``;
    ``late_exp=False`` leaves out ``exp`` (users of ``exp_early`` only).

    ``lut_mult=True`` (the PE's setting) computes slope[seg]*f_low from
    constants, so no DSP block is spent on it (on ECP5 Yosys maps every
    variable multiplication, however narrow, to a MULT18X18D): when half of
    f_low and seg together are at most :data:`TABLE_INPUTS` bits, as two
    tables (slope[seg] times each half of f_low, one LUT level) and one
    adder; otherwise as one constant shift-and-add product per segment
    (signed-digit form, balanced adder tree) and a segment mux.  Same values,
    same timing.
    """

    latency = 2

    def __init__(self, *, acc_width: int, score_frac: int, prob_width: int,
                 prob_frac: int, exp_width: int, segments: int, lut_mult: bool = False,
                 late_exp: bool = True):
        if not 0 <= score_frac < acc_width:
            raise ValueError(f"score_frac = {score_frac} is invalid: allowed 0..acc_width-1"
                             f" = 0..{acc_width - 1}")
        if segments < 1 or segments & (segments - 1):
            raise ValueError(f"segments = {segments} is invalid: allowed a power of two")
        seg_bits = (segments - 1).bit_length()
        if seg_bits > score_frac:
            raise ValueError(f"segments = {segments} is invalid: needs log2(segments) <="
                             f" score_frac = {score_frac}")
        if not 1 <= prob_frac < prob_width:
            raise ValueError(f"prob_frac = {prob_frac} is invalid: allowed 1..prob_width-1")
        if exp_width < 2:
            raise ValueError(f"exp_width = {exp_width} is invalid: allowed >= 2")
        self.acc_width = acc_width
        self.score_frac = score_frac
        self.prob_width = prob_width
        self.prob_frac = prob_frac
        self.exp_width = exp_width
        self.segments = segments
        self.seg_bits = seg_bits
        self.lut_mult = bool(lut_mult)
        self.late_exp = bool(late_exp)
        ports = {
            "score": In(signed(acc_width)),
            "valid_in": In(1),
            "zero_in": In(1),
            "mant": Out(unsigned(prob_width)),
            "valid_out": Out(1),
            # the exponent is known one cycle before the mantissa
            "exp_early": Out(signed(exp_width)),
            "valid_early": Out(1),
        }
        if late_exp:
            ports["exp"] = Out(signed(exp_width))
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        sf, sb = self.score_frac, self.seg_bits
        low_bits = sf - sb
        exp_min = -(1 << (self.exp_width - 1))
        exp_max = (1 << (self.exp_width - 1)) - 1
        m_max = (1 << self.prob_width) - 1
        m_top = min((1 << (self.prob_frac + 1)) - 1, m_max)
        base_t, slope_t = exp_pwl_table(segments=self.segments, prob_frac=self.prob_frac)
        base_w = max(base_t).bit_length()
        slope_w = max(1, max(slope_t).bit_length())

        # ---- stage 0 (combinational): split the score, look up the segment
        n = self.score[sf:].as_signed()                   # integer part (floor)
        if sb:
            seg = self.score[low_bits:sf]
            base = Array(Const(b, base_w) for b in base_t)[seg]
            slope = Array(Const(s, slope_w) for s in slope_t)[seg]
        else:
            base, slope = Const(base_t[0], base_w), Const(slope_t[0], slope_w)

        # ---- stage 1 registers: product, base, exponent and range flags
        if low_bits:
            s1_prod = Signal(slope_w + low_bits, reset_less=True)
        # (initial value: a table entry, so the bits every entry shares are
        # constants, not flip-flops that Yosys would merge across all PEs;
        # the data registers have no reset: s1_valid qualifies them, and
        # the reset net reaches fewer flip-flops, FPGA timing)
        s1_base = Signal(base_w, init=base_t[0], reset_less=True)
        s1_exp = Signal(signed(self.exp_width), init=exp_min, reset_less=True)
        s1_over = Signal()
        s1_under = Signal()
        s1_valid = Signal()
        s1_zero = Signal()
        m.d.sync += [
            s1_base.eq(base),
            s1_exp.eq(Mux(n > exp_max, exp_max, Mux(n < exp_min, exp_min, n))),
            s1_over.eq(n > exp_max),
            s1_under.eq(n < exp_min),
            s1_valid.eq(self.valid_in),
            s1_zero.eq(self.zero_in),
        ]
        if low_bits:
            f_low = self.score[:low_bits]
            if self.lut_mult:
                def tree(terms):          # balanced adder tree (log depth)
                    while len(terms) > 1:
                        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i]
                                 for i in range(0, len(terms), 2)]
                    return terms[0]

                def const_mul(c):
                    # c*f as shifted copies of f with signed digits (non-adjacent
                    # form: fewest non-zero digits), summed in a balanced tree
                    pos, neg, b = [], [], 0
                    while c:
                        dig = (2 - (c & 3)) if c & 1 else 0
                        if dig == 1:
                            pos.append(f_low << b)
                        elif dig == -1:
                            neg.append(f_low << b)
                        c, b = (c - dig) >> 1, b + 1
                    if not pos:
                        return Const(0, 1)
                    return tree(pos) - tree(neg) if neg else tree(pos)
                chunk = -(-low_bits // 2)
                if sb + chunk <= TABLE_INPUTS:
                    # f_low in two chunks: each chunk's product with the
                    # segment's slope a table of the chunk and seg bits (one
                    # LUT level), the two added (FPGA timing: the shift-and-add
                    # trees are two carry chains in series, then the segment
                    # mux)
                    terms = []
                    for lo in range(0, low_bits, chunk):
                        hi = min(lo + chunk, low_bits)
                        values = [c * v for c in slope_t for v in range(1 << (hi - lo))]
                        idx = Cat(f_low[lo:hi], seg) if sb else f_low[lo:hi]
                        w = max(1, max(values).bit_length())
                        terms.append(Array(Const(v, w) for v in values)[idx] << lo)
                    prod = tree(terms)
                else:
                    prods = [const_mul(c) for c in slope_t]
                    prod = Array(prods)[seg] if sb else prods[0]
                m.d.sync += s1_prod.eq(prod)
            else:
                m.d.sync += s1_prod.eq(slope * f_low)

        # ---- stage 2: round, add, clamp, select; registered outputs
        if sf and low_bits:
            frac_term = (s1_prod + (1 << (sf - 1))) >> sf
        else:
            # no f_low bits: the rounded term is (0 + 2**(sf-1)) >> sf = 0
            frac_term = 0
        mant_raw = s1_base + frac_term                     # exact (Amaranth widens)
        mant_sat = Mux(mant_raw > m_max, m_max, mant_raw)
        # s1_exp is already clipped to [exp_min, exp_max]
        m.d.comb += [self.exp_early.eq(Mux(s1_zero | s1_under, exp_min, s1_exp)),
                     self.valid_early.eq(s1_valid)]
        if self.late_exp:
            m.d.sync += self.exp.eq(self.exp_early)
        with m.If(s1_zero | s1_under):
            m.d.sync += self.mant.eq(0)
        with m.Elif(s1_over):
            m.d.sync += self.mant.eq(m_top)
        with m.Else():
            m.d.sync += self.mant.eq(mant_sat)
        m.d.sync += self.valid_out.eq(s1_valid)
        return m
