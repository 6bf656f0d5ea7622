"""Driver: scale handling, quantization and the float reference for ``salo run``.

Scale handling (per head, chosen by the host, free in hardware):

* The hardware computes base-2 scores s = q.k, so the host multiplies q by
  c = log2(e)/sqrt(d) (ordinary softmax attention with the 1/sqrt(d) scale).
* The score only depends on the product of the q and k scales, so q is
  multiplied by ``a`` and k by ``1/a`` with a = sqrt(max|k| / max|c q|): both
  tensors then reach the same largest magnitude and lose the same relative
  precision to rounding.  If that magnitude exceeds the largest data word,
  ``a`` is reduced so q fits exactly (k may then saturate; scores that big
  saturate the exponent anyway).
* V is multiplied by ``b`` = (largest data word) / max|v|, using the whole
  data range; outputs are convex combinations of V rows and come back in
  the same format, so they are divided by ``b``.
* No per-row or per-tile score shift exists in hardware: the softmax is
  evaluated as 2**s directly, so base-2 scores must stay inside the exponent
  range exp_min..exp_max (scores above saturate, below flush to zero).  For
  inputs of unit variance the scores are a few units wide and fit.

The scales are real numbers (not powers of two): the host multiplies in
float before rounding, so a power of two would only waste range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hw.config import AcceleratorConfig
from scheduler.pattern import Intervals, dense_mask_rows
from .fixed import dequantize, quantize, smax
from .reference import masked_attention

__all__ = ["Scales", "quantize_inputs", "dequantize_output", "float_reference",
           "run_functional"]


@dataclass
class Scales:
    """Per-head scale factors applied before quantization."""
    q: np.ndarray
    k: np.ndarray
    v: np.ndarray


def quantize_inputs(q, k, v, cfg: AcceleratorConfig):
    """Float Q/K/V (heads, N, d), natural units -> integer words and scales."""
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    d = q.shape[-1]
    top = smax(cfg.data_width) / (1 << cfg.data_frac)     # largest data word
    qs = q * (np.log2(np.e) / np.sqrt(d))
    mq = np.maximum(np.abs(qs).max(axis=(1, 2)), 1e-300)
    mk = np.maximum(np.abs(k).max(axis=(1, 2)), 1e-300)
    mv = np.maximum(np.abs(v).max(axis=(1, 2)), 1e-300)
    a = np.sqrt(mk / mq)
    a = np.where(a * mq > top, top / mq, a)
    b = top / mv
    sc = Scales(a, 1.0 / a, b)
    qi = quantize(qs * a[:, None, None], cfg.data_width, cfg.data_frac)
    ki = quantize(k * sc.k[:, None, None], cfg.data_width, cfg.data_frac)
    vi = quantize(v * b[:, None, None], cfg.data_width, cfg.data_frac)
    return qi, ki, vi, sc


def dequantize_output(o_int, sc: Scales, cfg: AcceleratorConfig):
    """Integer outputs -> float in the units of V."""
    return dequantize(o_int, cfg.out_frac) / sc.v[:, None, None]


def float_reference(q, k, v, iv: Intervals, n: int, chunk_elems: int = 1 << 24):
    """Float64 softmax attention (scale 1/sqrt(d)) over the pattern's mask,
    computed in row chunks so long sequences fit in memory."""
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    d = q.shape[-1]
    out = np.empty_like(q)
    step = max(1, chunk_elems // n)
    for r in range(0, n, step):
        e = min(n, r + step)
        m = dense_mask_rows(iv, n, r, e)
        out[:, r:e] = masked_attention(q[:, r:e], k, v, m, scale=1 / np.sqrt(d))
    return out


def head_schedule(sched):
    """The one-head version of a schedule (heads run identical program blocks)."""
    import dataclasses
    from hw.isa import Opcode, Program
    nh = sched.instrs_per_head
    prog = Program(sched.program.cfg_hash, np.r_[sched.program.opcode[:nh], Opcode.END.value],
                   {k: np.r_[v[:nh], 0] for k, v in sched.program.fields.items()})
    return dataclasses.replace(sched, program=prog,
                               pattern=dataclasses.replace(sched.pattern, heads=1))


def _simulate_one(args):
    from .funcsim import simulate
    return simulate(*args)


def simulate_parallel(sched, qi, ki, vi, workers: int | None = None):
    """``sim.funcsim.simulate`` with the heads spread over worker processes
    (heads are independent, so the result is bit-identical to one process)."""
    import os
    from concurrent.futures import ProcessPoolExecutor
    from .funcsim import simulate
    H = qi.shape[0]
    workers = min(H, workers or os.cpu_count() or 1)
    if H == 1 or workers <= 1:
        return simulate(sched, qi, ki, vi)
    one = head_schedule(sched)
    jobs = [(one, qi[h:h + 1], ki[h:h + 1], vi[h:h + 1]) for h in range(H)]
    with ProcessPoolExecutor(max_workers=workers) as ex:
        return np.concatenate(list(ex.map(_simulate_one, jobs)))


def run_functional(sched, q, k, v, workers: int | None = 1):
    """Quantize, simulate bit-exactly, dequantize: float outputs (heads, N, d).
    ``workers`` > 1 (or None: one per CPU) simulates heads in parallel."""
    qi, ki, vi, sc = quantize_inputs(q, k, v, sched.cfg)
    return dequantize_output(simulate_parallel(sched, qi, ki, vi, workers), sc, sched.cfg)


#: the scaled-down sizes of the accuracy acceptance runs
ACCURACY_SEQ_LEN = 512
ACCURACY_GRID = (16, 16)


def scaled_workload(pattern, cfg: AcceleratorConfig, heads: int = 1):
    """A reference workload scaled for an accuracy run on ``cfg``: N = 512
    (2D: a 16x16 grid), head_dim capped at the config's max_head_dim."""
    import dataclasses
    p = pattern.with_grid(*ACCURACY_GRID) if pattern.grid else \
        pattern.with_seq_len(min(pattern.seq_len, ACCURACY_SEQ_LEN))
    return dataclasses.replace(p, head_dim=min(p.head_dim, cfg.max_head_dim), heads=heads)


def workload_error(pattern, cfg: AcceleratorConfig, seed: int = 0) -> float:
    """Relative RMS error of the functional simulator against the float
    reference for random N(0, 1) Q/K/V."""
    from scheduler.pattern import pattern_intervals
    from scheduler.schedule import compile_pattern
    iv = pattern_intervals(pattern)
    s = compile_pattern(pattern, cfg, iv)
    rng = np.random.default_rng(seed)
    shape = (pattern.heads, pattern.seq_len, pattern.head_dim)
    q, k, v = (rng.standard_normal(shape) for _ in range(3))
    out = run_functional(s, q, k, v)
    from .reference import relative_rms_error
    return relative_rms_error(out, float_reference(q, k, v, iv, pattern.seq_len))
