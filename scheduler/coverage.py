"""Coverage proof: the emitted program computes every pair of the mask
exactly once and no other pair.

The pairs are read back from the *decoded program and mask records* (via the
functional simulator's trace, so the proof is about what the hardware will
execute, not about the scheduler's intentions):

* local row i of a pass: key positions kv_base+i+C-1-j for j in col_lo..col_hi,
* an enabled global column: its loaded global key,
* an enabled random column: its streamed random key,
* a global row: key positions kv_base+R-1+C-1-j for j in its range.

The pieces are sorted per query; an overlap is a double count, and their
union must equal the pattern's runs.  Heads are checked to run identical
blocks of the program.
"""

from __future__ import annotations

import numpy as np

from hw.isa import Opcode, Program
from sim.funcsim import trace_program
from .pattern import pattern_intervals
from .schedule import CoverageError, Schedule, map_intervals, merge_runs

__all__ = ["covered_pieces", "check_coverage", "coverage_counts"]


def covered_pieces(s: Schedule, head: int = 0, detail: bool = False):
    """(row, lo, hi) position runs computed by the program for ``head``, one
    entry per computed piece (duplicates kept).  With ``detail``, also
    (kind, kth): kind 0 local band, 1 global column, 2 random column, 3
    global row; kth the index of the local piece's pass inside its tile
    (-1 for the other kinds)."""
    cfg = s.cfg
    R, C, Gr, Gc, Rc = cfg.rows, cfg.cols, cfg.global_rows, cfg.global_cols, cfg.random_cols
    N = s.pattern.seq_len
    # heads run identical blocks (checked by check_coverage): trace one block
    nh = s.instrs_per_head
    blk = slice(head * nh, (head + 1) * nh)
    one = Program(s.program.cfg_hash, np.r_[s.program.opcode[blk], Opcode.END.value],
                  {k: np.r_[v[blk], 0] for k, v in s.program.fields.items()})
    tr = trace_program(one, cfg, s.passes_per_head, len(s.rkv), N)
    sel = tr.head == head
    rec = tr.rec[sel]
    kvb, qb, qc, seg = tr.kv_base[sel], tr.q_base[sel], tr.q_count[sel], tr.seg[sel]
    ii = np.arange(R)[None, :]
    lo = s.col_lo[rec]
    hi = s.col_hi[rec]
    on = lo <= hi
    if (on & ((ii >= qc[:, None]) | (seg[:, None] < 0))).any():
        raise CoverageError("a pass enables a local row that holds no query of a tile")
    rows = [np.broadcast_to(qb[:, None] + ii, on.shape)[on]]
    first_of = np.maximum.accumulate(np.where(tr.first[sel] > 0, np.arange(len(rec)), 0))
    kinds = [np.zeros(int(on.sum()), np.int64)]
    kths = [np.broadcast_to((np.arange(len(rec)) - first_of)[:, None], on.shape)[on]]
    los = [(kvb[:, None] + ii + C - 1 - hi)[on]]
    his = [(kvb[:, None] + ii + C - 1 - lo)[on]]
    if Gc:
        en = s.gcol_en[rec]                                       # (P, R, Gc)
        p, i, g = np.nonzero(en)
        k = tr.gkey[sel][p, g]
        rows.append(qb[p] + i); los.append(k); his.append(k)
        kinds.append(np.full(k.size, 1)); kths.append(np.full(k.size, -1))
    if Rc:
        en = s.rcol_en[rec]
        p, i, r = np.nonzero(en)
        k = s.rkv[tr.rkv[sel][p], i, r]
        rows.append(qb[p] + i); los.append(k); his.append(k)
        kinds.append(np.full(k.size, 2)); kths.append(np.full(k.size, -1))
    if Gr:
        glo, ghi = s.grow_lo[rec], s.grow_hi[rec]
        gon = (glo <= ghi) & (tr.grow[sel] > 0)[:, None]
        p, g = np.nonzero(gon)
        top = R - 1 + C - 1
        rows.append(tr.gq[sel][p, g]); los.append(kvb[p] + top - ghi[p, g])
        his.append(kvb[p] + top - glo[p, g])
        kinds.append(np.full(p.size, 3)); kths.append(np.full(p.size, -1))
        # a global row's pieces only count if that row is then stored by STORE_G,
        # and a query stored by STORE_G must not also get local pieces
        gstored = {a for h, _, _, a in tr.gstores if h == head}
        if set(np.unique(rows[0]).tolist()) & gstored:
            raise CoverageError("a query gets local pieces and a global-row result")
    parts = (rows, los, his, kinds, kths) if detail else (rows, los, his)
    return tuple(np.concatenate(x).astype(np.int64) for x in parts)


def check_coverage(s: Schedule, iv=None) -> dict:
    """Raise :class:`CoverageError` unless every mask pair is computed exactly
    once (and nothing else); returns a summary dict."""
    N = s.pattern.seq_len
    iv = pattern_intervals(s.pattern) if iv is None else iv
    H = s.pattern.heads
    nh = s.instrs_per_head
    body = s.program.opcode[:-1].reshape(H, nh)
    if not (body == body[0]).all():
        raise CoverageError("heads do not run identical program blocks")
    for name, v in s.program.fields.items():
        b = v[:-1].reshape(H, nh)
        if name != "head" and not (b == b[0]).all():
            raise CoverageError(f"heads differ in field {name}")
    row, lo, hi = covered_pieces(s, 0)
    if row.size and (lo.min() < 0 or hi.max() >= N or (lo > hi).any()):
        raise CoverageError("a computed key lies outside the sequence")
    span = 2 * N + 4
    o = np.argsort(row * span + lo, kind="stable")
    row, lo, hi = row[o], lo[o], hi[o]
    same = row[1:] == row[:-1]
    dup = same & (lo[1:] <= hi[:-1])
    if dup.any():
        k = int(np.flatnonzero(dup)[0])
        tok = s.perm[[row[k], lo[k + 1]]]
        raise CoverageError(f"pair (query {tok[0]}, key {tok[1]}) is computed twice")
    got = merge_runs(row, lo, hi, N)
    groups = _groups(s)
    want = merge_runs(*map_intervals(iv, N, groups)[:3], N)
    if not all(np.array_equal(a, b) for a, b in zip(got, want)):
        raise CoverageError("the computed pairs differ from the mask")
    return {"pairs": int((hi - lo + 1).sum()), "pieces": int(row.size)}


def _groups(s: Schedule) -> int:
    return int(s.stats["reorder_groups"])


def coverage_counts(s: Schedule, head: int = 0) -> np.ndarray:
    """(N, N) int: how often each (query token, key token) pair is computed
    (dense; for tests on small N)."""
    N = s.pattern.seq_len
    row, lo, hi = covered_pieces(s, head)
    cnt = np.zeros((N, N), dtype=np.int64)
    for r, a, b in zip(row.tolist(), lo.tolist(), hi.tolist()):
        if a < 0 or b >= N:
            raise CoverageError("a computed key lies outside the sequence")
        cnt[s.perm[r], s.perm[a:b + 1]] += 1
    return cnt
