"""The float64 reference: dense masked softmax attention from an explicit
boolean mask.  Deliberately trivial; it shares no code with the scheduler or
the bit-exact models."""

from __future__ import annotations

import numpy as np

__all__ = ["masked_attention", "relative_rms_error"]


def masked_attention(q, k, v, mask, scale: float = 1.0, base: float = np.e):
    """o_i = sum_k base**(scale*q_i.k_k) v_k / sum_k base**(scale*q_i.k_k) over
    mask[i, k].  q, k, v: (..., N, d); mask: (N, N) bool.  Rows with no key
    give NaN (the caller decides whether that is an error)."""
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    s = scale * np.log(base) * (q @ np.swapaxes(k, -1, -2))
    s = np.where(mask, s, -np.inf)
    s = s - s.max(axis=-1, keepdims=True)
    w = np.exp(s)
    return (w @ v) / w.sum(axis=-1, keepdims=True)


def relative_rms_error(approx, exact) -> float:
    """||approx - exact||_2 / ||exact||_2 over all elements."""
    approx = np.asarray(approx, dtype=np.float64)
    exact = np.asarray(exact, dtype=np.float64)
    return float(np.sqrt(np.sum((approx - exact) ** 2) / np.sum(exact ** 2)))
