"""Bit-exact numpy models of the PE datapath units.

Each function is the arithmetic contract of one RTL unit (``docs/arithmetic.md``);
all take the :class:`hw.config.AcceleratorConfig` and broadcast over leading
array dimensions.  Timing is not modelled here, only values.
"""

from __future__ import annotations

import numpy as np

from hw.config import AcceleratorConfig
from hw.exp_table import exp_pwl_table
from .fixed import ashr, saturate

__all__ = ["score_mac", "exp2_pwl", "align_add", "weighted_product",
           "pe_probability"]


def score_mac(q, k, cfg: AcceleratorConfig):
    """Score s = sum_e q[e]*k[e], accumulated in order e = 0..d-1 with
    saturation to ``acc_width`` after every step (last axis is e)."""
    q = np.asarray(q, dtype=np.int64)
    k = np.asarray(k, dtype=np.int64)
    shape = np.broadcast_shapes(q.shape, k.shape)[:-1]
    acc = np.zeros(shape, dtype=np.int64)
    for e in range(q.shape[-1]):
        acc = saturate(acc + q[..., e] * k[..., e], cfg.acc_width)
    return acc


def exp2_pwl(s, cfg: AcceleratorConfig):
    """p = 2**(s / 2**score_frac) as ``(mantissa, exponent)``.

    n = floor(s), f = frac(s); the mantissa is the piecewise-linear 2**f in
    [1, 2) with ``prob_frac`` fraction bits, the exponent is n.  n above
    ``exp_max`` saturates to the largest mantissa at ``exp_max``; n below
    ``exp_min`` flushes to the exact zero (0, exp_min).
    """
    s = np.asarray(s, dtype=np.int64)
    sf = cfg.score_frac
    base, slope = (np.array(t, dtype=np.int64) for t in
                   exp_pwl_table(segments=cfg.exp_segments, prob_frac=cfg.prob_frac))
    n = s >> sf
    f = s & ((1 << sf) - 1)
    low_bits = sf - cfg.exp_segment_bits
    seg = f >> low_bits
    f_low = f & ((1 << low_bits) - 1)
    m = base[seg] + ((slope[seg] * f_low + (1 << (sf - 1))) >> sf) if sf else base[seg]
    m = np.minimum(m, (1 << cfg.prob_width) - 1)
    top = (1 << (cfg.prob_frac + 1)) - 1
    m = np.where(n > cfg.exp_max, min(top, (1 << cfg.prob_width) - 1), m)
    m = np.where(n < cfg.exp_min, 0, m)
    e = np.clip(n, cfg.exp_min, cfg.exp_max)
    return m.astype(np.int64), e.astype(np.int64)


def pe_probability(s, valid, cfg: AcceleratorConfig):
    """exp2_pwl of the score, forced to the exact zero where ``valid`` is False
    (a masked pair contributes nothing and does not raise the exponent)."""
    m, e = exp2_pwl(s, cfg)
    valid = np.asarray(valid, dtype=bool)
    return np.where(valid, m, 0), np.where(valid, e, cfg.exp_min)


def align_add(a, ea, b, eb):
    """Exponent-aligned add: (a*2**ea) + (b*2**eb) -> (sum, e), e = max(ea, eb).

    The operand with the smaller exponent is shifted right arithmetically
    (floor) by the exponent difference.  Widths are chosen in the config so
    that no sum overflows; the caller states the width it relies on.
    """
    ea = np.asarray(ea, dtype=np.int64)
    eb = np.asarray(eb, dtype=np.int64)
    e = np.maximum(ea, eb)
    return ashr(a, e - ea) + ashr(b, e - eb), e


def weighted_product(m, v):
    """Exact p*v term of the weighted sum: unsigned mantissa times signed value."""
    return np.asarray(m, dtype=np.int64) * np.asarray(v, dtype=np.int64)
