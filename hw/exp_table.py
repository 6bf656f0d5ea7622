"""The piecewise-linear table for 2**f, f in [0, 1).

One table serves the RTL exp unit (as constants) and the bit-exact model, so
the two can never disagree about coefficients.

For ``segments`` = S segments, segment s covers f in [s/S, (s+1)/S).  Each
segment uses the minimax line parallel to its chord (the chord lowered by
half its largest deviation from the convex curve), quantized to
``prob_frac`` fraction bits:

    m = base[s] + ((slope[s] * f_low + 2**(score_frac-1)) >> score_frac)

where ``f_low`` is the offset inside the segment in units of 2**-score_frac.
"""

from __future__ import annotations

import math
from functools import lru_cache

__all__ = ["exp_pwl_table", "pwl_error_bound"]


@lru_cache(maxsize=None)
def exp_pwl_table(*, segments: int, prob_frac: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Return ``(base, slope)``: per-segment intercept at the segment start and
    slope per unit f, both as integers with ``prob_frac`` fraction bits."""
    if segments < 1 or segments & (segments - 1):
        raise ValueError(f"segments = {segments} is invalid: allowed a power of two >= 1")
    one = 1 << prob_frac
    base, slope = [], []
    for s in range(segments):
        x0, x1 = s / segments, (s + 1) / segments
        y0, y1 = 2.0 ** x0, 2.0 ** x1
        k = (y1 - y0) / (x1 - x0)
        # the chord lies above 2**x; its largest deviation is where 2**x*ln2 == k
        xs = math.log2(k / math.log(2))
        dev = (y0 + k * (xs - x0)) - 2.0 ** xs
        base.append(round((y0 - dev / 2) * one))
        slope.append(round(k * one))
    return tuple(base), tuple(slope)


def pwl_error_bound(*, segments: int, prob_frac: int) -> float:
    """Documented bound on the exp unit's relative error.

    Fit error of the minimax line (at most (ln2/S)**2/16 relative, with a 10%
    margin for the parallel-chord shortcut) plus rounding: half an LSB for the
    intercept, half for the slope term, one for the final rounding, each at
    most 2**-prob_frac relative to a mantissa >= 1.
    """
    fit = 1.1 * (math.log(2) / segments) ** 2 / 16
    return fit + 2.0 * 2.0 ** -prob_frac
