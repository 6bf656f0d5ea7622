"""Saturation of a signed value to a narrower signed width, without
comparators.

``Mux(v > hi, hi, Mux(v < lo, lo, v))`` against the constant limits of a
``width``-bit signed range makes Yosys build two magnitude comparators: on
an ECP5 two more carry chains behind the adder that produced ``v`` (the
PEs' score accumulators had one 18-hop chain after their adder, on the
critical path).  ``v`` is in range exactly when its bits from ``width - 1``
up are all equal (all copies of the sign), so the overflow flags are an OR
and an AND of those few bits.
"""

from __future__ import annotations

from amaranth.hdl import Mux, Value, signed

__all__ = ["saturate"]


def saturate(value, width: int) -> Value:
    """``value`` (a signed Value) clamped to the signed ``width``-bit range,
    as a ``signed(width)`` Value (combinational)."""
    v = Value.cast(value)
    if not v.shape().signed:
        raise ValueError(f"value shape {v.shape()!r} is invalid: allowed a signed shape")
    if width < 1:
        raise ValueError(f"width = {width} is invalid: allowed >= 1")
    if len(v) <= width:
        return v                            # always in range
    top = v[width - 1:]                     # the sign copies, if in range
    above = ~v[-1] & top.any()
    below = v[-1] & ~top.all()
    hi, lo = (1 << (width - 1)) - 1, -(1 << (width - 1))
    return Mux(above, hi, Mux(below, lo, v[:width].as_signed()))
