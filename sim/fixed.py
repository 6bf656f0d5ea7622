"""Fixed-point helpers shared by every bit-exact model.

All functions work on numpy int64 arrays (or Python ints) and broadcast.
"""

from __future__ import annotations

import numpy as np

__all__ = ["smin", "smax", "saturate", "ashr", "quantize", "dequantize"]


def smin(width: int) -> int:
    """Most negative value of a signed ``width``-bit word."""
    return -(1 << (width - 1))


def smax(width: int) -> int:
    """Largest value of a signed ``width``-bit word."""
    return (1 << (width - 1)) - 1


def saturate(x, width: int, signed: bool = True):
    """Clamp to the range of a ``width``-bit word (signed or unsigned)."""
    lo, hi = (smin(width), smax(width)) if signed else (0, (1 << width) - 1)
    return np.clip(x, lo, hi)


def ashr(x, shift):
    """Arithmetic right shift (floor division by 2**shift) for any shift >= 0.

    Hardware shifts by more than the word width give 0 (or -1 for negative
    words); clamping the shift to 63 gives the same on int64.
    """
    x = np.asarray(x, dtype=np.int64)
    return x >> np.minimum(np.asarray(shift, dtype=np.int64), 63)


def quantize(x, width: int, frac: int):
    """Round float ``x`` to the nearest signed fixed-point word, saturating."""
    q = np.round(np.asarray(x, dtype=np.float64) * (1 << frac))
    return saturate(q, width).astype(np.int64)


def dequantize(x, frac: int):
    """Float value of fixed-point integers with ``frac`` fraction bits."""
    return np.asarray(x, dtype=np.float64) / (1 << frac)
