"""Bit-exact model of the PE array, the row chains and the merge units.

Geometry (ARCHITECTURE.md section 2): local PE(i, j), i < R, j < C, pairs
query slot i with key slot ``i + C-1-j``; a pass therefore reads R+C-1 key
(and value) slots.  Row i's chain runs through its C local PEs left to right
(j = 0..C-1), then its ``global_cols`` global-key PEs, then its
``random_cols`` random-key PEs, then the row's merge unit.  Global query row
g has C PEs whose key at column j is the bottom local row's key, slot
``R-1 + C-1-j``.

The chain order fixes the bit-exact result because aligned adds truncate.
All functions broadcast over leading batch dimensions (several passes or
heads at once).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hw.config import AcceleratorConfig
from .fixed import saturate
from .models import align_add, pe_probability, score_mac, weighted_product

__all__ = ["PassInputs", "RowPartial", "local_key_slots", "global_row_key_slots",
           "row_chain", "run_pass", "merge", "empty_partial", "normalize"]


def local_key_slots(cfg: AcceleratorConfig) -> np.ndarray:
    """(R, C) array: key slot used by local PE(i, j), i.e. i + C-1-j."""
    i = np.arange(cfg.rows)[:, None]
    j = np.arange(cfg.cols)[None, :]
    return i + cfg.cols - 1 - j


def global_row_key_slots(cfg: AcceleratorConfig) -> np.ndarray:
    """(C,) array: key slot seen by global-row PE column j (bottom local row's)."""
    return cfg.rows - 1 + cfg.cols - 1 - np.arange(cfg.cols)


@dataclass
class RowPartial:
    """Unnormalized partial result of rows: out (..., d), sum (...), exp (...).

    The value is out * 2**exp / sum * 2**exp ... i.e. out/sum after both are
    scaled by the same 2**exp; ``sum`` has ``prob_frac`` fraction bits and
    ``out`` has ``prob_frac + data_frac``."""
    out: np.ndarray
    sum: np.ndarray
    exp: np.ndarray


@dataclass
class PassInputs:
    """Everything one pass of the array consumes (integers in config formats).

    Shapes (leading batch dims ``...`` allowed, d = head size):
    q (..., R, d); keys, values (..., R+C-1, d); local_valid (..., R, C);
    gkeys, gvalues (..., Gc, d); gcol_valid (..., R, Gc);
    rkeys, rvalues (..., R, Rc, d); rcol_valid (..., R, Rc);
    gq (..., Gr, d); grow_valid (..., Gr, C).
    Parts for absent hardware (count 0) may be None.
    """
    q: np.ndarray
    keys: np.ndarray
    values: np.ndarray
    local_valid: np.ndarray
    gkeys: np.ndarray | None = None
    gvalues: np.ndarray | None = None
    gcol_valid: np.ndarray | None = None
    rkeys: np.ndarray | None = None
    rvalues: np.ndarray | None = None
    rcol_valid: np.ndarray | None = None
    gq: np.ndarray | None = None
    grow_valid: np.ndarray | None = None


def row_chain(m, e, v, cfg: AcceleratorConfig) -> RowPartial:
    """Run probabilities (m, e) of shape (..., P) and values (..., P, d)
    through a row chain left to right: row sum and weighted sum with
    exponent alignment at every PE.  The chain starts from the exact zero."""
    m = np.asarray(m, dtype=np.int64)
    e = np.asarray(e, dtype=np.int64)
    v = np.asarray(v, dtype=np.int64)
    S = np.zeros(m.shape[:-1], dtype=np.int64)
    E = np.full(m.shape[:-1], cfg.exp_min, dtype=np.int64)
    O = np.zeros(v.shape[:-2] + v.shape[-1:], dtype=np.int64)
    for j in range(m.shape[-1]):
        S_new, E_new = align_add(S, E, m[..., j], e[..., j])
        O, _ = align_add(O, E[..., None], weighted_product(m[..., j, None], v[..., j, :]),
                         e[..., j, None])
        S, E = S_new, E_new
    return RowPartial(O, S, E)


def run_pass(p: PassInputs, cfg: AcceleratorConfig) -> tuple[RowPartial, RowPartial | None]:
    """One pass: returns (local rows' partial, global rows' partial or None)."""
    slots = local_key_slots(cfg)                       # (R, C)
    q = np.asarray(p.q, dtype=np.int64)
    keys = np.asarray(p.keys, dtype=np.int64)
    values = np.asarray(p.values, dtype=np.int64)
    k_pe = keys[..., slots, :]                         # (..., R, C, d)
    v_pe = values[..., slots, :]
    s = score_mac(q[..., :, None, :], k_pe, cfg)       # (..., R, C)
    m, e = pe_probability(s, p.local_valid, cfg)
    ms, es, vs = [m], [e], [v_pe]
    if cfg.global_cols:
        gk = np.asarray(p.gkeys, dtype=np.int64)       # (..., Gc, d)
        gv = np.asarray(p.gvalues, dtype=np.int64)
        s = score_mac(q[..., :, None, :], gk[..., None, :, :], cfg)   # (..., R, Gc)
        mg, eg = pe_probability(s, p.gcol_valid, cfg)
        ms.append(mg); es.append(eg)
        vs.append(np.broadcast_to(gv[..., None, :, :], mg.shape + gv.shape[-1:]))
    if cfg.random_cols:
        rk = np.asarray(p.rkeys, dtype=np.int64)       # (..., R, Rc, d)
        s = score_mac(q[..., :, None, :], rk, cfg)
        mr, er = pe_probability(s, p.rcol_valid, cfg)
        ms.append(mr); es.append(er); vs.append(np.asarray(p.rvalues, dtype=np.int64))
    local = row_chain(np.concatenate(ms, -1), np.concatenate(es, -1),
                      np.concatenate(vs, -2), cfg)
    glob = None
    if cfg.global_rows:
        gslots = global_row_key_slots(cfg)
        gq = np.asarray(p.gq, dtype=np.int64)          # (..., Gr, d)
        s = score_mac(gq[..., :, None, :], keys[..., None, gslots, :], cfg)  # (..., Gr, C)
        mq, eq = pe_probability(s, p.grow_valid, cfg)
        vq = np.broadcast_to(values[..., None, gslots, :], mq.shape + values.shape[-1:])
        glob = row_chain(mq, eq, vq, cfg)
    return local, glob


def empty_partial(shape, d: int, cfg: AcceleratorConfig) -> RowPartial:
    """The merge unit's reset state for rows of ``shape``: the exact zero."""
    return RowPartial(np.zeros(tuple(shape) + (d,), dtype=np.int64),
                      np.zeros(shape, dtype=np.int64),
                      np.full(shape, cfg.exp_min, dtype=np.int64))


def merge(acc: RowPartial, part: RowPartial) -> RowPartial:
    """Merge unit step (online softmax): align both partials to the larger
    exponent and add sums and outputs.  ``merge_*_width`` bits suffice."""
    S, E = align_add(acc.sum, acc.exp, part.sum, part.exp)
    O, _ = align_add(acc.out, acc.exp[..., None], part.out, part.exp[..., None])
    return RowPartial(O, S, E)


def normalize(acc: RowPartial, cfg: AcceleratorConfig) -> np.ndarray:
    """Final division: o = round(out * floor(2**K / sum) / 2**(K - X)),
    saturated to ``out_width`` (X = out_frac - data_frac extra output fraction
    bits, K = recip_frac); a row whose sum is 0 (no key) outputs 0.

    Exact in Python integers (the product exceeds 64 bits)."""
    K = cfg.recip_frac
    shift = K - cfg.out_frac_extra
    S = np.asarray(acc.sum, dtype=np.int64)
    recip = np.zeros(S.shape, dtype=object)
    nz = S > 0
    recip[nz] = [(1 << K) // int(x) for x in S[nz]]
    prod = np.asarray(acc.out, dtype=np.int64).astype(object) * recip[..., None]
    o = (prod + (1 << (shift - 1))) >> shift
    o = np.where(nz[..., None], o, 0)
    return saturate(o.astype(np.int64), cfg.out_width)
