"""Exponent-aligned adder (row-sum step of a PE, merge units)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.hdl import signed as _signed  # the parameter `signed` shadows the name
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["AlignAdd"]


class AlignAdd(wiring.Component):
    """(a * 2**ea) + (b * 2**eb) -> (sum * 2**exp), exp = max(ea, eb).

    ``sum = (a >>> (exp-ea)) + (b >>> (exp-eb))``: the operand with the
    smaller exponent is shifted right (arithmetic/floor shift when
    ``signed``, logical otherwise); a shift by the operand width or more gives
    0 (or -1 for a negative signed operand).  Bit-exact vs
    :func:`sim.models.align_add` as long as the sum fits ``out_width`` (the
    caller sizes it; the exact sum is truncated to ``out_width`` bits).

    Parameters: ``a_width``, ``b_width`` (operands), ``out_width`` (``sum``),
    ``exp_width`` (``ea``, ``eb``, ``exp`` signed; ``shift_a``, ``shift_b``
    unsigned), ``signed`` (operands and sum signed or unsigned).

    Outputs ``shift_a`` = exp-ea and ``shift_b`` = exp-eb (the exponent
    differences; a PE records them to reuse in the weighted-sum phase).
    ``exp_out=False`` leaves out the ``exp`` port, for users that take the
    exponent from elsewhere (no dead logic, nothing for lint to flag).

    Timing: combinational, latency 0, nothing registered (the user registers).
    """

    latency = 0

    def __init__(self, *, a_width: int, b_width: int, out_width: int, exp_width: int,
                 signed: bool, exp_out: bool = True):
        for nm, v in (("a_width", a_width), ("b_width", b_width),
                      ("out_width", out_width), ("exp_width", exp_width)):
            if v < 1:
                raise ValueError(f"{nm} = {v} is invalid: allowed >= 1")
        self.a_width, self.b_width, self.out_width = a_width, b_width, out_width
        self.exp_width = exp_width
        self.is_signed = bool(signed)
        self.exp_out = bool(exp_out)
        shape = _signed if signed else unsigned
        ports = {
            "a": In(shape(a_width)),
            "ea": In(_signed(exp_width)),
            "b": In(shape(b_width)),
            "eb": In(_signed(exp_width)),
            "sum": Out(shape(out_width)),
            "shift_a": Out(unsigned(exp_width)),
            "shift_b": Out(unsigned(exp_width)),
        }
        if exp_out:
            ports["exp"] = Out(_signed(exp_width))
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        a_ge = Signal()
        m.d.comb += a_ge.eq(self.ea >= self.eb)
        # exponent differences of two exp_width-bit signed numbers fit
        # exp_width bits unsigned (0..2**exp_width-1); the .eq truncation
        # drops only the sign bit of a non-negative difference
        if self.exp_out:
            m.d.comb += self.exp.eq(Mux(a_ge, self.ea, self.eb))
        m.d.comb += [
            self.shift_a.eq(Mux(a_ge, 0, self.eb - self.ea)),
            self.shift_b.eq(Mux(a_ge, self.ea - self.eb, 0)),
            # `>>` of a signed value is arithmetic; shifts >= the width fill
            # with the sign (signed) or zeros (unsigned)
            self.sum.eq((self.a >> self.shift_a) + (self.b >> self.shift_b)),
        ]
        return m

