"""The scheduler: maps a pattern onto the fixed array.

Steps (ARCHITECTURE.md section 3):

1. **Reordering** (:func:`group_permutation`): tokens are placed grouped by
   index mod D.  A band of dilation D becomes an ordinary band inside each
   group; the same primitive with D = number of stripes is the striped
   placement.  Every later step works on *positions* in this order; the
   output permutation maps positions back to tokens.
2. **Key runs**: the pattern's strided intervals are mapped to positions and
   merged into maximal runs of consecutive key positions per query position.
   A 2D window thereby becomes 2a+1 bands (with the wrap already cut off),
   BigBird blocks become block runs, spans and causal clipping are just run
   bounds.
3. **Global queries** (up to ``global_rows``) leave the local tiles; their
   runs are covered by the global rows, which see the bottom local row's C
   key slots of every pass: each needed key is taken by the first pass that
   shows it (the ranges stay contiguous), leftovers get extra passes.
4. **Global keys** go to the global key columns (pass k of a tile carries
   global keys k*Gc..k*Gc+Gc-1).  A global key that another part already
   gives a row (e.g. inside its band) stays in that row's run and the row's
   enable bit for the column is off, so it is counted once and no run is
   split.  If the columns cost more passes than leaving the global keys in
   the runs, they stay local.
5. **Random keys** (the ``random`` part, when not also in another part) go
   to the random columns, up to Rc per pass and row; the rest stay local.
6. **Query tiling and window splitting** (:func:`cover`): query positions
   are cut into tiles of R rows; a pass with relative offset delta shows row
   i the keys i+delta .. i+delta+C-1 (relative to the query); a greedy sweep
   over delta gives every row, in each pass, one contiguous piece of one of
   its runs.  For a band this is ceil((width + R - 1)/C)-ish passes per tile,
   exactly the window splitting.

Every pair of the mask is covered exactly once; :func:`check_coverage`
proves it on the decoded program and mask records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hw.config import AcceleratorConfig
from hw.isa import Opcode, Program
from .pattern import (PART_GLOBAL_KEY, PART_RANDOM, Intervals, Pattern, global_token_set,
                      pattern_intervals)

__all__ = ["Schedule", "compile_pattern", "group_permutation", "map_intervals", "merge_runs",
           "cover", "CoverageError", "ScheduleError"]

_BIG = 1 << 40


class ScheduleError(ValueError):
    """The pattern cannot be scheduled on this configuration (e.g. too long)."""


class CoverageError(AssertionError):
    """The emitted schedule does not cover the mask exactly once."""


# ------------------------------------------------------------------ reordering
def group_permutation(n: int, groups: int) -> np.ndarray:
    """perm[pos] = token: tokens grouped by index mod ``groups``, in order.

    Used for dilation (groups = D) and for striped placement (groups =
    number of stripes).  groups = 1 is the identity."""
    return np.concatenate([np.arange(r, n, groups) for r in range(min(groups, n))]) \
        if groups > 1 else np.arange(n)


def _group_pos(n: int, groups: int):
    """(start of each group, pos(t) function) for :func:`group_permutation`."""
    sizes = np.array([len(range(r, n, groups)) for r in range(groups)], dtype=np.int64)
    start = np.r_[0, np.cumsum(sizes)[:-1]]
    return start, lambda t: start[t % groups] + t // groups


def map_intervals(iv: Intervals, n: int, groups: int):
    """Map strided token intervals to runs of positions under
    :func:`group_permutation`; returns (row_pos, lo_pos, hi_pos, part)."""
    if groups == 1:
        if np.any(iv.step != 1):
            raise AssertionError("strided interval without a group permutation")
        return iv.row, iv.lo, iv.hi, iv.part
    _, pos = _group_pos(n, groups)
    out = []
    single = (iv.lo == iv.hi) | (iv.step == groups)
    s = iv.select(single)
    out.append((pos(s.row), pos(s.lo), pos(s.hi), s.part))
    m = iv.select(~single)
    if np.any(m.step != 1):
        raise AssertionError("interval step is neither 1 nor the group count")
    for r in range(groups):
        t0 = m.lo + (r - m.lo) % groups
        t1 = m.hi - (m.hi - r) % groups
        ok = t0 <= t1
        out.append((pos(m.row[ok]), pos(t0[ok]), pos(t1[ok]), m.part[ok]))
    return tuple(np.concatenate(x) for x in zip(*out))


def merge_runs(row, lo, hi, n: int):
    """Union of (row, lo, hi) runs -> maximal disjoint runs, sorted by (row, lo)."""
    row, lo, hi = (np.asarray(x, dtype=np.int64) for x in (row, lo, hi))
    if row.size == 0:
        return row, lo, hi
    span = 2 * n + 4                       # separates rows so one cummax works for all
    o = np.argsort(row * span + lo, kind="stable")
    row, lo, hi = row[o], lo[o], hi[o]
    glo, ghi = row * span + lo, row * span + hi
    cm = np.maximum.accumulate(ghi)
    new = np.r_[True, glo[1:] > cm[:-1] + 1]
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], row.size] - 1
    return row[starts], lo[starts], cm[ends] - row[starts] * span


def _contains(runs, rows, keys, n: int):
    """bool: is key ``keys[j]`` inside a run of row ``rows[j]`` (runs merged, sorted)."""
    rr, rl, rh = runs
    if rr.size == 0:
        return np.zeros(np.shape(rows), dtype=bool)
    span = 2 * n + 4
    code = rr * span + rl
    q = np.asarray(rows) * span + np.asarray(keys)
    k = np.searchsorted(code, q, side="right") - 1
    kk = np.maximum(k, 0)
    return (k >= 0) & (rr[kk] == rows) & (rh[kk] >= keys)


# ------------------------------------------------------------------ covering
def cover(runs, n_tiles: int, R: int, C: int):
    """Greedy band cover, vectorized over tiles.

    ``runs`` are (row position, lo, hi) sorted by (row, lo).  Returns
    (tile, delta, take, lo, hi): per pass its tile, its relative offset
    delta (row i of the pass sees keys q+delta .. q+delta+C-1 of its query
    position q), whether each row takes part, and the covered key positions
    relative to the query.  Passes come out ordered by tile, then sweep step.
    """
    rr, rl, rh = runs
    nrows = n_tiles * R
    cnt = np.bincount(rr, minlength=nrows)
    M = int(cnt.max()) if cnt.size else 0
    L = np.full((nrows, M + 1), _BIG, dtype=np.int64)
    H = np.full((nrows, M + 1), _BIG, dtype=np.int64)
    k = np.arange(rr.size) - np.r_[0, np.cumsum(cnt)[:-1]][rr]
    L[rr, k] = rl - rr
    H[rr, k] = rh - rr
    ptr = np.zeros(nrows, dtype=np.int64)
    cl, ch = L[:, 0].copy(), H[:, 0].copy()
    out = []
    it = 0
    while True:
        clt = cl.reshape(n_tiles, R)
        delta = clt.min(axis=1)
        act = np.flatnonzero(delta < _BIG)
        if act.size == 0:
            break
        # only the active tiles from here on: tiles drop out as they finish
        end = delta[act] + C - 1
        a_lo = clt[act]
        a_hi = ch.reshape(n_tiles, R)[act]
        take = a_lo <= end[:, None]
        plo = np.where(take, a_lo, 1)
        phi = np.where(take, np.minimum(a_hi, end[:, None]), 0)
        out.append((act, delta[act], take, plo, phi, np.full(act.size, it)))
        done = take & (a_hi <= end[:, None])
        part = take & ~done
        flat = (act[:, None] * R + np.arange(R)[None, :])
        fp = flat[part]
        cl[fp] = np.broadcast_to(end[:, None] + 1, part.shape)[part]
        fd = flat[done]
        ptr[fd] += 1
        cl[fd] = L[fd, ptr[fd]]
        ch[fd] = H[fd, ptr[fd]]
        it += 1
    if not out:
        z = np.zeros(0, dtype=np.int64)
        return z, z, np.zeros((0, R), bool), np.zeros((0, R), np.int64), np.zeros((0, R), np.int64)
    tile, delta, take, lo, hi, its = (np.concatenate(x) for x in zip(*out))
    o = np.lexsort((its, tile))
    return tile[o], delta[o], take[o], lo[o], hi[o]


# ------------------------------------------------------------------ the schedule
@dataclass
class Schedule:
    """A compiled pattern: the program, the data plan and the output permutation.

    ``perm[pos]`` is the token at position ``pos`` (Q, K, V are streamed and
    outputs returned in position order).  Mask records and the random-key
    stream are given for one head; the host streams the same records for
    every head (the program repeats its per-head block with SET_HEAD h).
    """
    cfg: AcceleratorConfig
    pattern: Pattern
    perm: np.ndarray
    program: Program
    # mask records of one head, one per PASS: (P, R) col_lo/col_hi, (P, R, Gc)
    # gcol_en, (P, R, Rc) rcol_en, (P, Gr) grow_lo/grow_hi
    col_lo: np.ndarray
    col_hi: np.ndarray
    gcol_en: np.ndarray
    rcol_en: np.ndarray
    grow_lo: np.ndarray
    grow_hi: np.ndarray
    # random-key stream of one head: (n_rkv_loads, R, Rc) positions, -1 = unused
    rkv: np.ndarray
    instrs_per_head: int
    stats: dict = field(default_factory=dict)

    @property
    def passes_per_head(self) -> int:
        return len(self.col_lo)


class _Emit:
    """Column-wise instruction builder (fast for ~1e5 instructions)."""
    NAMES = ("head", "addr", "count", "row", "col", "kv_base", "first", "last", "grow")

    def __init__(self):
        self.op = []
        self.cols = {n: [] for n in self.NAMES}

    def __call__(self, op: Opcode, **kw):
        self.op.append(op.value if isinstance(op, Opcode) else op)
        for n in self.NAMES:
            self.cols[n].append(kw.get(n, 0))

    def program(self, cfg_hash) -> Program:
        return Program(cfg_hash, np.array(self.op, dtype=np.int64),
                       {n: np.array(v, dtype=np.int64) for n, v in self.cols.items()})


def compile_pattern(p: Pattern, cfg: AcceleratorConfig, iv: Intervals | None = None,
                    stripes: int = 1) -> Schedule:
    """Compile a pattern for ``cfg`` (see the module docstring for the steps)."""
    N, R, C = p.seq_len, cfg.rows, cfg.cols
    Gr, Gc, Rc = cfg.global_rows, cfg.global_cols, cfg.random_cols
    if N > cfg.max_seq_len:
        raise ScheduleError(f"seq_len = {N} exceeds the config's max_seq_len = "
                            f"{cfg.max_seq_len} (choose a bigger preset, e.g. salo-dac22)")
    if p.head_dim > cfg.max_head_dim:
        raise ScheduleError(f"head_dim = {p.head_dim} exceeds the config's max_head_dim = "
                            f"{cfg.max_head_dim}")
    if p.heads > 1 << 12:
        raise ScheduleError(f"heads = {p.heads} exceeds 4096")
    iv = pattern_intervals(p) if iv is None else iv
    groups = p.dilation if p.dilation > 1 else stripes
    perm = group_permutation(N, groups)
    inv = np.empty(N, dtype=np.int64)
    inv[perm] = np.arange(N)
    prow, plo, phi, ppart = map_intervals(iv, N, groups)
    runs_all = merge_runs(prow, plo, phi, N)

    # 3. global queries -> global rows
    gtok = global_token_set(p)
    gq_pos = inv[np.array(gtok[:Gr], dtype=np.int64)] if Gr and gtok else np.zeros(0, np.int64)
    is_gq = np.zeros(N, dtype=bool)
    is_gq[gq_pos] = True

    # 5. random keys that no other part gives: candidates for random columns
    nonrand = ppart != PART_RANDOM
    runs_nr = merge_runs(prow[nonrand], plo[nonrand], phi[nonrand], N)
    rc_row = rc_key = np.zeros(0, dtype=np.int64)
    if Rc and np.any(~nonrand):
        r_row, r_key = prow[~nonrand], plo[~nonrand]
        keep = ~_contains(runs_nr, r_row, r_key, N) & ~is_gq[r_row]
        pairs = np.unique(r_row[keep] * N + r_key[keep])
        rc_row, rc_key = pairs // N, pairs % N
    base_runs = runs_nr if rc_row.size else runs_all
    # the same without the "everyone attends the global keys" intervals: a global key
    # that another part (a band, a block ...) already gives a row stays in that row's
    # run and its global column is disabled for the row (counted once, no run split)
    sel = (ppart != PART_GLOBAL_KEY) & (nonrand if rc_row.size else True)
    base_runs_ng = merge_runs(prow[sel], plo[sel], phi[sel], N)

    def local_only(runs):
        keep = ~is_gq[runs[0]]
        return tuple(x[keep] for x in runs)

    n_tiles = -(-N // R)

    # 4. global keys -> global columns (if that is cheaper than leaving them local)
    gk_pos = np.sort(inv[np.array(gtok, dtype=np.int64)]) if (Gc and gtok) else np.zeros(0, np.int64)

    def plan_local(use_gcol, rc_local):
        runs = base_runs_ng if use_gcol else base_runs
        if rc_local[0].size:
            runs = merge_runs(np.r_[runs[0], rc_local[0]], np.r_[runs[1], rc_local[1]],
                              np.r_[runs[2], rc_local[1]], N)
        runs = local_only(runs)
        return runs, cover(runs, n_tiles, R, C)

    # (row, global key) pairs the global columns must give: the row attends the key
    # and no other part's run of the row holds it
    lrow = np.flatnonzero(~is_gq)
    g_need = None
    if gk_pos.size:
        rr, kk = np.repeat(lrow, gk_pos.size), np.tile(gk_pos, lrow.size)
        g_need = (_contains(runs_all, rr, kk, N) & ~_contains(base_runs_ng, rr, kk, N)) \
            .reshape(lrow.size, gk_pos.size)
        g_need_full = np.zeros((n_tiles * R, gk_pos.size), dtype=bool)
        g_need_full[lrow] = g_need
        g_need = g_need_full
    no_rc = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    # random candidates start as random-column keys; capacity decided after the cover
    use_gcol = bool(gk_pos.size)
    runs, cv = plan_local(use_gcol, no_rc)
    n_gpass = -(-gk_pos.size // Gc) if use_gcol else 0
    if use_gcol and gk_pos.size > Gc:
        tiles_need = g_need.reshape(n_tiles, R, -1).any(axis=(1, 2))
        pt = np.bincount(cv[0], minlength=n_tiles)
        # (a reload of the global columns, LOAD_GKV, overlaps the passes in
        # flight: hw/top.py; it costs 2 row beats, not a pass slot)
        cost_g = np.where(tiles_need, np.maximum(pt, n_gpass), pt).sum()
        runs2, cv2 = plan_local(False, no_rc)
        if np.bincount(cv2[0], minlength=n_tiles).sum() < cost_g:
            use_gcol, runs, cv, n_gpass = False, runs2, cv2, 0
    pt = np.bincount(cv[0], minlength=n_tiles)
    if use_gcol:
        tiles_need = g_need.reshape(n_tiles, R, -1).any(axis=(1, 2))
        pt_total = np.where(tiles_need, np.maximum(pt, n_gpass), pt)
    else:
        pt_total = pt
    # random columns: slot s of a row = pass s // Rc, column s % Rc, within capacity
    rc_pass = rc_col = None
    if rc_row.size:
        start = np.r_[0, np.flatnonzero(np.diff(rc_row)) + 1]
        rank = np.arange(rc_row.size) - np.repeat(start, np.diff(np.r_[start, rc_row.size]))
        cap = pt_total[rc_row // R] * Rc
        fits = rank < cap
        spill = (rc_row[~fits], rc_key[~fits])
        if spill[0].size:
            runs, cv = plan_local(use_gcol, spill)
            pt = np.bincount(cv[0], minlength=n_tiles)
            pt_total = np.maximum(pt_total, pt)
        rc_row, rc_key, rank = rc_row[fits], rc_key[fits], rank[fits]
        rc_pass, rc_col = rank // Rc, rank % Rc

    tile, delta, take, lo, hi = cv
    # serpentine: odd tiles sweep their passes backwards, so a tile starts where the
    # previous one ended and finds those K/V rows still in the buffer
    if tile.size:
        first_of = np.r_[0, np.flatnonzero(np.diff(tile)) + 1]
        idx = np.arange(tile.size) - np.repeat(first_of, np.diff(np.r_[first_of, tile.size]))
        o = np.lexsort((np.where(tile % 2 == 1, -idx, idx), tile))
        tile, delta, take, lo, hi = tile[o], delta[o], take[o], lo[o], hi[o]
    # extra passes (no local work) where global keys or random keys need more passes
    extra = pt_total - pt
    if extra.any():
        et = np.repeat(np.arange(n_tiles), extra)
        tile = np.r_[tile, et]
        delta = np.r_[delta, np.zeros(et.size, np.int64)]
        take = np.r_[take, np.zeros((et.size, R), bool)]
        lo = np.r_[lo, np.ones((et.size, R), np.int64)]
        hi = np.r_[hi, np.zeros((et.size, R), np.int64)]
        o = np.argsort(tile, kind="stable")
        tile, delta, take, lo, hi = tile[o], delta[o], take[o], lo[o], hi[o]
    P = tile.size
    tstart = np.r_[0, np.cumsum(pt_total)[:-1]]
    kth = np.arange(P) - tstart[tile]                       # pass index inside its tile
    kv_base = tile * R + delta
    # local column ranges: relative key o -> column C-1-(o-delta)
    col_lo = np.where(take, C - 1 - (hi - delta[:, None]), 1)
    col_hi = np.where(take, C - 1 - (lo - delta[:, None]), 0)
    # global columns: pass k of a tile carries global keys k*Gc .. k*Gc+Gc-1
    gkey = np.full((P, Gc), -1, dtype=np.int64)
    gcol_en = np.zeros((P, R, Gc), dtype=bool)
    if use_gcol:
        gi = kth[:, None] * Gc + np.arange(Gc)[None, :]
        okg = gi < gk_pos.size
        gkey[okg] = gk_pos[gi[okg]]
        rows_of = tile[:, None] * R + np.arange(R)[None, :]            # (P, R)
        gcol_en = g_need[rows_of[:, :, None], np.minimum(gi, gk_pos.size - 1)[:, None, :]] \
            & okg[:, None, :]
    rkv_pos = np.full((P, R, max(Rc, 0)), -1, dtype=np.int64)
    rcol_en = np.zeros((P, R, Rc), dtype=bool)
    if rc_row.size:
        pidx = tstart[rc_row // R] + rc_pass
        rkv_pos[pidx, rc_row % R, rc_col] = rc_key
        rcol_en[pidx, rc_row % R, rc_col] = True

    # 3. global rows over the pass sequence: first pass showing a needed key takes it
    grow_lo = np.ones((P, Gr), dtype=np.int64)
    grow_hi = np.zeros((P, Gr), dtype=np.int64)
    g_extra = []                                    # (kv_base, [(lo, hi) per row])
    if gq_pos.size:
        need = []
        for g in gq_pos:
            b = bytearray(N)
            sel = runs_all[0] == g
            for a, z in zip(runs_all[1][sel].tolist(), runs_all[2][sel].tolist()):
                b[a:z + 1] = b"\x01" * (z - a + 1)
            need.append(b)
        wstart = (kv_base + R - 1).tolist()
        top = C - 1 + R - 1
        for pi, a in enumerate(wstart):
            lo_c, hi_c = max(a, 0), min(a + C, N)
            if lo_c >= hi_c:
                continue
            for g, b in enumerate(need):
                f = b.find(1, lo_c, hi_c)
                if f < 0:
                    continue
                e = b.find(0, f, hi_c)
                e = hi_c if e < 0 else e
                b[f:e] = bytes(e - f)
                kb = a - (R - 1)
                grow_lo[pi, g] = kb + top - (e - 1)
                grow_hi[pi, g] = kb + top - f
        while True:
            firsts = [b.find(1) for b in need]
            firsts = [f for f in firsts if f >= 0]
            if not firsts:
                break
            a = min(firsts)
            hi_c = min(a + C, N)
            rng = []
            for b in need:
                f = b.find(1, a, hi_c)
                if f < 0:
                    rng.append((1, 0))
                    continue
                e = b.find(0, f, hi_c)
                e = hi_c if e < 0 else e
                b[f:e] = bytes(e - f)
                rng.append((a + C - 1 - (e - 1), a + C - 1 - f))
            g_extra.append((a - (R - 1), rng + [(1, 0)] * (Gr - len(rng))))

    # program for one head; KV residency follows the LOAD_KV semantics of the ISA
    em = _Emit()
    em(Opcode.SET_HEAD, head=0)
    for g, pos in enumerate(gq_pos.tolist()):
        em(Opcode.LOAD_GQ, row=g, addr=int(pos))
    cap = cfg.kv_capacity
    tags = [-1] * cap                                 # position held by each K/V slot

    def need_kv(a, z):
        """Load the positions of a..z that their slots (pos mod cap) do not hold.
        Plain Python: at most R+C-1 positions, called once per pass."""
        a, z = max(a, 0), min(z, N - 1)
        run_start = None
        for pos in range(a, z + 2):
            missing = pos <= z and tags[pos % cap] != pos
            if missing and run_start is None:
                run_start = pos
            elif not missing and run_start is not None:
                em(Opcode.LOAD_KV, addr=run_start, count=pos - run_start)
                for x in range(run_start, pos):
                    tags[x % cap] = x
                run_start = None

    # used key-slot hull per pass: local rows and global rows
    ii = np.arange(R)[None, :]
    u_lo = np.where(take, kv_base[:, None] + ii + C - 1 - col_hi, _BIG).min(axis=1)
    u_hi = np.where(take, kv_base[:, None] + ii + C - 1 - col_lo, -_BIG).max(axis=1)
    if Gr:
        gv = grow_lo <= grow_hi
        top = R - 1 + C - 1
        u_lo = np.minimum(u_lo, np.where(gv, kv_base[:, None] + top - grow_hi, _BIG).min(axis=1))
        u_hi = np.maximum(u_hi, np.where(gv, kv_base[:, None] + top - grow_lo, -_BIG).max(axis=1))
    grow_any = (grow_lo <= grow_hi).any(axis=1) if Gr else np.zeros(P, bool)
    rc_any = rcol_en.any(axis=(1, 2))
    cur_g = [-2] * Gc
    rkv_stream = []
    tl, kvl, ulo, uhi, kthl, gk = (tile.tolist(), kv_base.tolist(), u_lo.tolist(), u_hi.tolist(),
                                   kth.tolist(), gkey.tolist())
    ptl = pt_total.tolist()
    for pi in range(P):
        t = tl[pi]
        if kthl[pi] == 0:
            em(Opcode.LOAD_Q, addr=t * R, count=min(R, N - t * R))
        if ulo[pi] <= uhi[pi]:
            need_kv(ulo[pi], uhi[pi])
        for g in range(Gc):
            if gk[pi][g] >= 0 and gk[pi][g] != cur_g[g]:
                em(Opcode.LOAD_GKV, col=g, addr=gk[pi][g])
                cur_g[g] = gk[pi][g]
        if rc_any[pi]:
            em(Opcode.LOAD_RKV)
            rkv_stream.append(rkv_pos[pi])
        last = kthl[pi] == ptl[t] - 1
        em(Opcode.PASS, kv_base=kvl[pi], first=int(kthl[pi] == 0), last=int(last),
           grow=int(grow_any[pi]))
        if last:
            em(Opcode.STORE, addr=t * R, count=min(R, N - t * R))
    # extra global-row passes: local rows idle
    for kb, rng in g_extra:
        need_kv(kb + R - 1, kb + R - 1 + C - 1)
        em(Opcode.PASS, kv_base=kb, first=0, last=0, grow=1)
    if g_extra:
        ne = len(g_extra)
        col_lo = np.r_[col_lo, np.ones((ne, R), np.int64)]
        col_hi = np.r_[col_hi, np.zeros((ne, R), np.int64)]
        gcol_en = np.r_[gcol_en, np.zeros((ne, R, Gc), bool)]
        rcol_en = np.r_[rcol_en, np.zeros((ne, R, Rc), bool)]
        grow_lo = np.r_[grow_lo, np.array([[r[0] for r in rng] for _, rng in g_extra])]
        grow_hi = np.r_[grow_hi, np.array([[r[1] for r in rng] for _, rng in g_extra])]
    for g, pos in enumerate(gq_pos.tolist()):
        em(Opcode.STORE_G, row=g, addr=int(pos))
    em(Opcode.SYNC)
    head = em.program(cfg.hash())
    nh = len(head)
    H = p.heads
    ops = np.r_[np.tile(head.opcode, H), Opcode.END.value]
    fields = {}
    for n, v in head.fields.items():
        fields[n] = np.r_[np.tile(v, H), 0]
    fields["head"][np.arange(H) * nh] = np.arange(H)            # SET_HEAD h
    prog = Program(cfg.hash(), ops, fields)
    rkv = (np.array(rkv_stream, dtype=np.int64) if rkv_stream
           else np.zeros((0, R, Rc), dtype=np.int64))
    stats = {"tiles": int((pt_total > 0).sum()), "passes_per_head": int(len(col_lo)),
             "global_row_extra_passes": len(g_extra), "global_keys_in_columns": bool(use_gcol),
             "random_keys_in_columns": int(rc_row.size), "reorder_groups": int(groups),
             "global_queries_in_rows": int(gq_pos.size)}
    return Schedule(cfg, p, perm, prog, col_lo.astype(np.int64), col_hi.astype(np.int64),
                    gcol_en, rcol_en, grow_lo, grow_hi, rkv, nh, stats)
