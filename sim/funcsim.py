"""Bit-exact functional simulator of a compiled program.

It executes the instruction stream with the hardware arithmetic of
``sim.array_model`` (``run_pass``, ``merge``, ``normalize``; nothing is
re-derived here), in two phases:

1. :func:`trace_program` walks the instructions once (cheap Python on ints)
   and resolves, for every PASS, which data it sees: head, query tile, K/V
   positions (checked against what the LOAD_KV instructions put in the K/V
   buffer slots, slot = position mod ``cfg.kv_capacity``; SET_HEAD empties
   the K/V buffer and the global-key registers), global keys and
   queries, random keys, mask record and merge flags.  Protocol errors (a pass reading a K/V row that is not
   resident, a tile without ``first``, a mask-record shortage ...) raise
   :class:`ProgramError`.
2. :func:`simulate` gathers the inputs of many passes at once, runs them as
   one batch through ``run_pass`` and merges the partials in program order
   (merging is not associative bit-exactly, so the order is kept: all
   segments advance together, one merge step at a time).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hw.config import AcceleratorConfig
from hw.isa import Opcode, Program
from .array_model import (PassInputs, RowPartial, empty_partial, global_row_key_slots, merge,
                          normalize, run_pass)

__all__ = ["ProgramError", "Trace", "trace_program", "simulate", "pass_masks"]


class ProgramError(ValueError):
    """The program violates the execution protocol of the ISA."""


@dataclass
class Trace:
    """Per-PASS resolved operands (program order, all heads) and store events."""
    head: np.ndarray        # (P,)
    q_base: np.ndarray      # (P,) first query position of the tile
    q_count: np.ndarray     # (P,)
    kv_base: np.ndarray     # (P,)
    kv_tags: np.ndarray     # (P, R+C-1) position held by the slot of each key slot
    first: np.ndarray
    last: np.ndarray
    grow: np.ndarray
    rec: np.ndarray         # (P,) mask record index (within the head's records)
    gkey: np.ndarray        # (P, Gc) global key positions, -1 = none
    gq: np.ndarray          # (P, Gr) global query positions, -1 = none
    gseg: np.ndarray        # (P, Gr) global accumulator epoch of each global row
    rkv: np.ndarray         # (P,) index into the random-key stream, -1 = none
    seg: np.ndarray         # (P,) local merge segment (tile), -1 = none
    stores: list            # (segment, head, addr, count)
    gstores: list           # (head, row, epoch, addr)


def trace_program(prog: Program, cfg: AcceleratorConfig, records_per_head: int,
                  rkv_per_head: int, seq_len: int) -> Trace:
    """Resolve every PASS's operands; raise :class:`ProgramError` on protocol errors."""
    R, C, Gr, Gc = cfg.rows, cfg.cols, cfg.global_rows, cfg.global_cols
    ops = prog.opcode.tolist()
    f = {n: prog.field(n).tolist() for n in ("head", "addr", "count", "row", "col", "kv_base",
                                             "first", "last", "grow")}
    head, qb, qc = 0, -1, 0
    cap = cfg.kv_capacity
    tags = np.full(cap, -1, dtype=np.int64)
    slot_off = np.arange(R + C - 1)
    gkey = [-1] * Gc
    gq = [-1] * Gr
    gep = [-1] * Gr
    epoch = 0
    rec = 0
    rkv_next = 0
    rkv_pending = -1
    seg, nseg = -1, 0
    out = {k: [] for k in ("head", "q_base", "q_count", "kv_base", "kv_tags", "first",
                           "last", "grow", "rec", "gkey", "gq", "gseg", "rkv", "seg")}
    stores, gstores = [], []
    done_seg = -1
    ended = False
    # opcode values as plain ints: enum attribute access is slow in this hot loop
    OP_END = Opcode.END.value
    OP_LOAD_GKV = Opcode.LOAD_GKV.value
    OP_LOAD_GQ = Opcode.LOAD_GQ.value
    OP_LOAD_KV = Opcode.LOAD_KV.value
    OP_LOAD_Q = Opcode.LOAD_Q.value
    OP_LOAD_RKV = Opcode.LOAD_RKV.value
    OP_PASS = Opcode.PASS.value
    OP_SET_HEAD = Opcode.SET_HEAD.value
    OP_STORE = Opcode.STORE.value
    OP_STORE_G = Opcode.STORE_G.value
    for i, o in enumerate(ops):
        if ended:
            raise ProgramError(f"instruction {i}: after END")
        if o == OP_SET_HEAD:
            head, rec, rkv_next = f["head"][i], 0, 0
            # K/V rows and global keys belong to the head that loaded them
            tags[:] = -1
            gkey = [-1] * Gc
        elif o == OP_LOAD_Q:
            qb, qc = f["addr"][i], f["count"][i]
            if not 1 <= qc <= R or qb + qc > seq_len:
                raise ProgramError(f"instruction {i}: LOAD_Q rows {qb}..{qb + qc - 1} invalid")
        elif o == OP_LOAD_KV:
            a, c = f["addr"][i], f["count"][i]
            if c < 1 or a + c > seq_len or c > cfg.kv_buffer_rows:
                raise ProgramError(f"instruction {i}: LOAD_KV rows {a}..{a + c - 1} invalid")
            run = np.arange(a, a + c)
            tags[run % cap] = run
        elif o == OP_LOAD_GQ:
            g = f["row"][i]
            if g >= Gr:
                raise ProgramError(f"instruction {i}: LOAD_GQ row {g} >= global_rows {Gr}")
            gq[g], gep[g] = f["addr"][i], epoch
            epoch += 1
        elif o == OP_LOAD_GKV:
            g = f["col"][i]
            if g >= Gc:
                raise ProgramError(f"instruction {i}: LOAD_GKV col {g} >= global_cols {Gc}")
            gkey[g] = f["addr"][i]
        elif o == OP_LOAD_RKV:
            if rkv_next >= rkv_per_head:
                raise ProgramError(f"instruction {i}: LOAD_RKV beyond the random-key stream")
            rkv_pending = rkv_next
            rkv_next += 1
        elif o == OP_PASS:
            if rec >= records_per_head:
                raise ProgramError(f"instruction {i}: PASS beyond the mask records "
                                   f"({records_per_head} per head)")
            if f["first"][i]:
                if qb < 0:
                    raise ProgramError(f"instruction {i}: PASS first=1 without LOAD_Q")
                seg, nseg = nseg, nseg + 1
            out["head"].append(head); out["q_base"].append(qb); out["q_count"].append(qc)
            out["kv_base"].append(f["kv_base"][i])
            out["kv_tags"].append(tags[(f["kv_base"][i] + slot_off) % cap])
            out["first"].append(f["first"][i])
            out["last"].append(f["last"][i]); out["grow"].append(f["grow"][i])
            out["rec"].append(rec); out["gkey"].append(list(gkey)); out["gq"].append(list(gq))
            out["gseg"].append(list(gep)); out["rkv"].append(rkv_pending); out["seg"].append(seg)
            rec += 1
            rkv_pending = -1
            if f["last"][i]:
                if seg < 0:
                    raise ProgramError(f"instruction {i}: PASS last=1 outside a tile")
                done_seg, seg = seg, -1
        elif o == OP_STORE:
            if done_seg < 0:
                raise ProgramError(f"instruction {i}: STORE before any tile finished")
            stores.append((done_seg, head, f["addr"][i], f["count"][i]))
        elif o == OP_STORE_G:
            g = f["row"][i]
            if g >= Gr or gep[g] < 0:
                raise ProgramError(f"instruction {i}: STORE_G row {g} never loaded")
            gstores.append((head, g, gep[g], f["addr"][i]))
        elif o == OP_END:
            ended = True
    if not ended:
        raise ProgramError("program does not end with END")
    arr = {k: np.array(v, dtype=np.int64) for k, v in out.items()}
    P = len(out["head"])
    arr["kv_tags"] = arr["kv_tags"].reshape(P, R + C - 1)
    arr["gkey"] = arr["gkey"].reshape(P, Gc)
    arr["gq"] = arr["gq"].reshape(P, Gr)
    arr["gseg"] = arr["gseg"].reshape(P, Gr)
    return Trace(**arr, stores=stores, gstores=gstores)


def pass_masks(sched_masks: dict, rec: np.ndarray, cfg: AcceleratorConfig):
    """Expand mask records ``rec`` into the model's boolean masks:
    local (P, R, C), gcol (P, R, Gc), rcol (P, R, Rc), grow (P, Gr, C)."""
    j = np.arange(cfg.cols)
    lo, hi = sched_masks["col_lo"][rec], sched_masks["col_hi"][rec]
    local = (j >= lo[..., None]) & (j <= hi[..., None])
    glo, ghi = sched_masks["grow_lo"][rec], sched_masks["grow_hi"][rec]
    grow = (j >= glo[..., None]) & (j <= ghi[..., None])
    return local, sched_masks["gcol_en"][rec], sched_masks["rcol_en"][rec], grow


def _gather_rows(x, head, pos, n):
    """x: (H, N, d); rows ``pos`` (any shape) of heads ``head`` (broadcast),
    zeros where pos is outside 0..n-1."""
    ok = (pos >= 0) & (pos < n)
    g = x[head, np.clip(pos, 0, n - 1)]
    return np.where(ok[..., None], g, 0)


def _merge_segments(part: RowPartial, seg: np.ndarray, nseg: int, shape, d, cfg):
    """Merge partials ``part`` (M, *shape) into ``nseg`` accumulators in order;
    ``seg`` (M,) is the accumulator of each partial (any order of segments,
    program order within one)."""
    acc = empty_partial((nseg,) + tuple(shape), d, cfg)
    if seg.size == 0:
        return acc
    order = np.argsort(seg, kind="stable")
    s_sorted = seg[order]
    start = np.searchsorted(s_sorted, np.arange(nseg))
    length = np.searchsorted(s_sorted, np.arange(nseg), side="right") - start
    for k in range(int(length.max())):
        s = np.flatnonzero(length > k)
        idx = order[start[s] + k]
        cur = RowPartial(acc.out[s], acc.sum[s], acc.exp[s])
        new = merge(cur, RowPartial(part.out[idx], part.sum[idx], part.exp[idx]))
        acc.out[s], acc.sum[s], acc.exp[s] = new.out, new.sum, new.exp
    return acc


def simulate(sched, q_int, k_int, v_int, program: Program | None = None,
             batch_elems: int = 1 << 23) -> np.ndarray:
    """Run ``sched.program`` (or ``program``) on integer Q/K/V of shape
    (heads, N, d) in *token* order; returns integer outputs (heads, N, d) in
    token order.  ``batch_elems`` bounds the per-batch K gather
    (passes * R * C * d)."""
    cfg: AcceleratorConfig = sched.cfg
    R, C, Gr, Gc, Rc = cfg.rows, cfg.cols, cfg.global_rows, cfg.global_cols, cfg.random_cols
    prog = sched.program if program is None else program
    H, N, d = q_int.shape
    if (H, N, d) != (sched.pattern.heads, sched.pattern.seq_len, sched.pattern.head_dim):
        pt = sched.pattern
        raise ValueError(f"Q/K/V shape {(H, N, d)} does not match the pattern's (heads, "
                         f"seq_len, head_dim) = {(pt.heads, pt.seq_len, pt.head_dim)}")
    perm = sched.perm
    # position order: what the host streams
    Q, K, V = (np.ascontiguousarray(np.asarray(x, dtype=np.int64)[:, perm]) for x in
               (q_int, k_int, v_int))
    tr = trace_program(prog, cfg, sched.passes_per_head, len(sched.rkv), N)
    P = len(tr.head)
    masks = {"col_lo": sched.col_lo, "col_hi": sched.col_hi, "gcol_en": sched.gcol_en,
             "rcol_en": sched.rcol_en, "grow_lo": sched.grow_lo, "grow_hi": sched.grow_hi}
    nseg = 1 + max((s for s in tr.seg.tolist()), default=-1)
    loc_out = np.zeros((P, R, d), dtype=np.int64)
    loc_sum = np.zeros((P, R), dtype=np.int64)
    loc_exp = np.zeros((P, R), dtype=np.int64)
    g_out = np.zeros((P, Gr, d), dtype=np.int64)
    g_sum = np.zeros((P, Gr), dtype=np.int64)
    g_exp = np.zeros((P, Gr), dtype=np.int64)
    step = max(1, batch_elems // (R * C * d))
    ar_r = np.arange(R)
    ar_k = np.arange(R + C - 1)
    for s in range(0, P, step):
        sl = slice(s, min(P, s + step))
        h = tr.head[sl]
        local, gcol, rcol, grow = pass_masks(masks, tr.rec[sl], cfg)
        # a pass outside a tile must not have local work (its results would be lost)
        lost = (tr.seg[sl] < 0)[:, None] & (local.any(-1) | gcol.any(-1) | rcol.any(-1))
        if lost.any():
            raise ProgramError("a PASS outside a tile (no first=1 before it) has local work")
        qpos = tr.q_base[sl, None] + ar_r
        qpos = np.where(ar_r < tr.q_count[sl, None], qpos, -1)
        kpos = tr.kv_base[sl, None] + ar_k
        resident = (tr.kv_tags[sl] == kpos) & (kpos >= 0)      # -1 marks an empty row
        kpos_r = np.where(resident, kpos, -1)
        # every slot a valid pair reads must be resident
        used = np.zeros(kpos.shape, dtype=bool)
        for j in range(C):                  # PE(i, j) reads slot i + C-1-j
            used[:, C - 1 - j:C - 1 - j + R] |= local[:, :, j]
        if Gr:
            gs = global_row_key_slots(cfg)
            used[:, gs] |= (grow & (tr.grow[sl] > 0)[:, None, None]).any(axis=1)
        bad = used & ~resident
        if bad.any():
            pi = s + int(np.flatnonzero(bad.any(1))[0])
            raise ProgramError(f"PASS #{pi} reads K/V positions that are not resident")
        pin = PassInputs(q=_gather_rows(Q, h[:, None], qpos, N),
                         keys=_gather_rows(K, h[:, None], kpos_r, N),
                         values=_gather_rows(V, h[:, None], kpos_r, N),
                         local_valid=local)
        if Gc:
            gk = tr.gkey[sl]
            if (gcol & (gk < 0)[:, None, :]).any():
                raise ProgramError("a global column is enabled but no key was loaded")
            pin.gkeys = _gather_rows(K, h[:, None], gk, N)
            pin.gvalues = _gather_rows(V, h[:, None], gk, N)
            pin.gcol_valid = gcol
        if Rc:
            ri = tr.rkv[sl]
            rpos = np.full((len(ri), R, Rc), -1, dtype=np.int64)
            if len(sched.rkv):
                rpos = np.where(ri[:, None, None] >= 0, sched.rkv[np.maximum(ri, 0)], -1)
            if (rcol & (rpos < 0)).any():
                raise ProgramError("a random column is enabled but no key was loaded")
            pin.rkeys = _gather_rows(K, h[:, None, None], rpos, N)
            pin.rvalues = _gather_rows(V, h[:, None, None], rpos, N)
            pin.rcol_valid = rcol
        if Gr:
            gqp = tr.gq[sl]
            growm = grow & (tr.grow[sl] > 0)[:, None, None]
            if (growm.any(-1) & (gqp < 0)).any():
                raise ProgramError("a global row is enabled but no query was loaded")
            pin.gq = _gather_rows(Q, h[:, None], gqp, N)
            pin.grow_valid = growm
        lp, gp = run_pass(pin, cfg)
        loc_out[sl], loc_sum[sl], loc_exp[sl] = lp.out, lp.sum, lp.exp
        if Gr:
            g_out[sl], g_sum[sl], g_exp[sl] = gp.out, gp.sum, gp.exp
    out = np.zeros((H, N, d), dtype=np.int64)
    written = np.zeros((H, N), dtype=bool)
    # local merges: one accumulator per tile segment
    inseg = tr.seg >= 0
    acc = _merge_segments(RowPartial(loc_out[inseg], loc_sum[inseg], loc_exp[inseg]),
                          tr.seg[inseg], nseg, (R,), d, cfg)
    res = normalize(acc, cfg) if nseg else np.zeros((0, R, d), np.int64)
    for sg, h, addr, cnt in tr.stores:
        out[h, addr:addr + cnt] = res[sg, :cnt]
        written[h, addr:addr + cnt] = True
    # global rows: one accumulator per LOAD_GQ epoch, merging the grow passes
    if Gr and tr.gstores:
        ne = int(tr.gseg.max()) + 1
        sel_p, sel_g = np.nonzero((tr.grow > 0)[:, None] & (tr.gseg >= 0))
        gacc = _merge_segments(RowPartial(g_out[sel_p, sel_g], g_sum[sel_p, sel_g],
                                          g_exp[sel_p, sel_g]),
                               tr.gseg[sel_p, sel_g], ne, (), d, cfg)
        gres = normalize(gacc, cfg)
        for h, _, ep, addr in tr.gstores:
            out[h, addr] = gres[ep]
            written[h, addr] = True
    if not written.all():
        h, n = np.argwhere(~written)[0]
        raise ProgramError(f"output position {n} of head {h} is never stored")
    res_tok = np.empty_like(out)
    res_tok[:, perm] = out
    return res_tok
