"""Weighted-sum step of a PE: aligned partial plus aligned p*v."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["WeightedAcc"]


class WeightedAcc(wiring.Component):
    """``partial_out = (partial_in >>> shift_partial) + ((mant*value) >>> shift_product)``.

    The row-chain weighted-sum step of ``docs/arithmetic.md``:
    O'[x] = (O[x] >>> (E'-E)) + ((m_j*v_j[x]) >>> (E'-e_j)); the two shifts
    are the ones recorded from the row-sum step (:class:`hw.align_add.AlignAdd`
    ``shift_a``/``shift_b``).  ``>>>`` is an arithmetic (floor) shift; a shift
    by the operand width or more gives 0 or -1.  The product mant*value is
    exact (``prob_width + data_width`` bits, signed); the exact sum is
    truncated to ``out_width`` bits (the caller sizes it, e.g. ``wsum_width``).

    Parameters: ``prob_width`` (``mant``, unsigned), ``data_width``
    (``value``, signed), ``in_width`` (``partial_in``, signed), ``out_width``
    (``partial_out``, signed), ``shift_width`` (both shifts, unsigned).

    Timing: combinational, latency 0, nothing registered (the user registers).
    """

    latency = 0

    def __init__(self, *, prob_width: int, data_width: int, in_width: int,
                 out_width: int, shift_width: int):
        for nm, v in (("prob_width", prob_width), ("data_width", data_width),
                      ("in_width", in_width), ("out_width", out_width),
                      ("shift_width", shift_width)):
            if v < 1:
                raise ValueError(f"{nm} = {v} is invalid: allowed >= 1")
        self.prob_width, self.data_width = prob_width, data_width
        self.in_width, self.out_width, self.shift_width = in_width, out_width, shift_width
        super().__init__({
            "partial_in": In(signed(in_width)),
            "shift_partial": In(unsigned(shift_width)),
            "mant": In(unsigned(prob_width)),
            "value": In(signed(data_width)),
            "shift_product": In(unsigned(shift_width)),
            "partial_out": Out(signed(out_width)),
        })

    def elaborate(self, platform):
        m = Module()
        product = Signal(signed(self.prob_width + self.data_width))
        m.d.comb += [
            # unsigned * signed: Amaranth extends the unsigned operand, exact
            product.eq(self.mant * self.value),
            self.partial_out.eq((self.partial_in >> self.shift_partial)
                                + (product >> self.shift_product)),
        ]
        return m
