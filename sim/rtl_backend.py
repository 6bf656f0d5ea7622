"""RTL backend: run compiled schedules on the generated Verilog (Verilator +
the cocotb system testbench ``tests/hw/tb_top.py``).

The host side of the protocol of :mod:`hw.top` lives here: :func:`make_job`
walks the program once and lays out the three input streams (instruction
words, mask records, Q/K/V rows) exactly as the data plan says, plus the
expected output order.  Expected *values* are never computed here: they are
the functional simulator's (:func:`sim.funcsim.simulate`), passed in.

Entry points:

* :func:`run_rtl` -- one schedule (all heads) -> outputs in token order
  (same shape/format as ``sim.funcsim.simulate``) and the counters;
* :func:`run_jobs` -- several jobs of one config in one simulator run (one
  Verilator build), used by the tests.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hw.config import AcceleratorConfig
from hw.isa import Opcode, Program, encode
from hw.isa import pack_mask_records as isa_pack_mask_records

__all__ = ["Job", "RtlResult", "make_job", "run_jobs", "run_rtl", "pack_mask_records",
           "DEFAULT_WATCHDOG", "top_factory"]

#: default watchdog limit (cycles of input starvation before an error)
DEFAULT_WATCHDOG = 4096
_TB_MODULE = "tests.hw.tb_top"


def top_factory(cfg: AcceleratorConfig):
    from hw.top import SaloTop
    return lambda: SaloTop(cfg)


# ----------------------------------------------------------------- packing
def pack_mask_records(sched, cfg: AcceleratorConfig) -> list[int]:
    """The mask records of one head (one per PASS) as integers laid out by
    :func:`hw.isa.mask_record_layout` (bit 0 = LSB); the packing is
    :func:`hw.isa.pack_mask_records`'s."""
    masks = {n: getattr(sched, n) for n in ("col_lo", "col_hi", "gcol_en", "rcol_en",
                                            "grow_lo", "grow_hi")}
    return [int.from_bytes(r.tobytes(), "little") for r in isa_pack_mask_records(masks, cfg)]


@dataclass
class Job:
    """Everything the testbench streams and checks for one run.

    words: instruction words; masks: mask records (ints); rows: (n, d) int
    Q/K/V rows in stream order; out_order: (n_out, 5) int rows
    (head, pos, tile, row, final) in emission order (tile = STORE ordinal
    within the head, row = row of that STORE; tile -1 and row g for STORE_G;
    final = 0 when a later STORE/STORE_G overwrites the same position);
    expected: (H, N, d) expected outputs in *position* order or None.
    """
    name: str
    cfg: AcceleratorConfig
    d: int
    words: list
    masks: list
    rows: np.ndarray
    out_order: np.ndarray
    expected: np.ndarray | None
    n_passes: int
    in_idle: float = 0.0
    out_backpressure: float = 0.0
    seed: int = 0
    watchdog: int = DEFAULT_WATCHDOG
    expect_error: str | None = None
    error_within: int = 0           # cycles from the start by which the error must show
    max_cycles: int = 0             # 0: derived from the program size
    perm: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


def make_job(sched, q_int, k_int, v_int, expected_tok=None, *, name="job",
             program: Program | None = None, **kw) -> Job:
    """Lay out the streams of ``sched`` for integer Q/K/V (heads, N, d) in
    token order; ``expected_tok`` (heads, N, d, token order) is the
    functional simulator's output."""
    cfg = sched.cfg
    prog = sched.program if program is None else program
    perm = np.asarray(sched.perm)
    Q, K, V = (np.asarray(x, dtype=np.int64)[:, perm] for x in (q_int, k_int, v_int))
    H, N, d = Q.shape
    R, Rc = cfg.rows, cfg.random_cols
    recs = pack_mask_records(sched, cfg)
    ops = prog.opcode.tolist()
    fld = {n: prog.field(n).tolist() for n in ("head", "addr", "count", "row", "col")}
    rows, masks, order = [], [], []
    h, rec, rk, store_i = 0, 0, 0, 0
    zero = np.zeros(d, dtype=np.int64)
    n_passes = 0
    for i, o in enumerate(ops):
        a, c = fld["addr"][i], fld["count"][i]
        if o == Opcode.SET_HEAD.value:
            h, rec, rk, store_i = fld["head"][i], 0, 0, 0
        elif o == Opcode.LOAD_Q.value:
            rows += list(Q[h, a:a + c])
        elif o == Opcode.LOAD_KV.value:
            for p in range(a, a + c):
                rows += [K[h, p], V[h, p]]
        elif o == Opcode.LOAD_GQ.value:
            rows.append(Q[h, a])
        elif o == Opcode.LOAD_GKV.value:
            rows += [K[h, a], V[h, a]]
        elif o == Opcode.LOAD_RKV.value:
            ent = sched.rkv[rk]
            rk += 1
            for ii in range(R):
                for r in range(Rc):
                    p = int(ent[ii, r])
                    rows += [K[h, p], V[h, p]] if p >= 0 else [zero, zero]
        elif o == Opcode.PASS.value:
            masks.append(recs[rec])
            rec += 1
            n_passes += 1
        elif o == Opcode.STORE.value:
            order += [(h, a + j, store_i, j) for j in range(c)]
            store_i += 1
        elif o == Opcode.STORE_G.value:
            order.append((h, a, -1, fld["row"][i]))
    n_passes += sum(1 for o in ops if o == Opcode.STORE_G.value)   # closing passes
    # a position written twice (e.g. a global query's local row, then its
    # global row) ends with the last write: only that one is final
    seen = set()
    final = []
    for h_, p_, _, _ in reversed(order):
        final.append((h_, p_) not in seen)
        seen.add((h_, p_))
    order = [o + (int(f),) for o, f in zip(order, reversed(final))]
    exp = None
    if expected_tok is not None:
        exp = np.asarray(expected_tok, dtype=np.int64)[:, perm]
    words = [int(w) for w in encode(prog, cfg)]
    return Job(name=name, cfg=cfg, d=d, words=words, masks=masks,
               rows=np.array(rows, dtype=np.int64).reshape(-1, d),
               out_order=np.array(order, dtype=np.int64).reshape(-1, 5), expected=exp,
               n_passes=n_passes, perm=perm, **kw)


@dataclass
class RtlResult:
    """What one job gave: outputs in token order (None when the job expected
    an error), the status counters, the error code name, cycles."""
    name: str
    out: np.ndarray | None
    counters: dict
    error: str
    done: bool
    cycles: int
    raw: dict


def _job_dir(cfg) -> Path:
    from sim.runner import build_root
    d = build_root() / "rtl_jobs" / f"{cfg.hash()}-{os.getpid()}-{time.monotonic_ns()}"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _write_job(job: Job, path: Path) -> dict:
    np.savez(path / f"{job.name}.npz",
             words=np.array(job.words, dtype=np.uint64),
             masks=np.array([f"{m:x}" for m in job.masks], dtype=object).astype(str),
             rows=job.rows, out_order=job.out_order,
             expected=(job.expected if job.expected is not None
                       else np.zeros((0, 0, 0), np.int64)))
    cyc = job.max_cycles or (200_000 + 40 * len(job.words) + 8 * job.n_passes * job.d
                             + 4 * len(job.rows) + 4 * len(job.out_order))
    return {"name": job.name, "file": str(path / f"{job.name}.npz"), "d": job.d,
            "in_idle": job.in_idle, "out_backpressure": job.out_backpressure,
            "seed": job.seed, "watchdog": job.watchdog, "expect_error": job.expect_error,
            "error_within": job.error_within, "max_cycles": int(cyc),
            "n_passes": job.n_passes, "check": job.expected is not None,
            "result": str(path / f"{job.name}.result.npz"),
            "progress": str(path / f"{job.name}.progress")}


def _follow(paths, stop: threading.Event, printer):
    """Print progress lines the testbench appends, until ``stop``."""
    pos = {p: 0 for p in paths}
    while True:
        for p in paths:
            try:
                with open(p) as f:
                    f.seek(pos[p])
                    chunk = f.read()
                    pos[p] = f.tell()
            except OSError:
                continue
            for line in chunk.splitlines():
                printer(line)
        if stop.is_set():
            return
        stop.wait(1.0)


def run_jobs(cfg: AcceleratorConfig, jobs: list[Job], *, progress=None,
             waves: bool | None = None) -> list[RtlResult]:
    """Run ``jobs`` (all for ``cfg``) in one cocotb run of the system
    testbench on one (cached) Verilator build.  The testbench checks each
    job's outputs against its ``expected`` (when given) and raises
    ``AssertionError`` naming head, tile, row, element and cycle of the
    first mismatches.  ``progress``: a callable taking one line, or None."""
    from sim.runner import run_cocotb
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        raise ValueError(f"job names must be unique: {names}")
    for j in jobs:
        if j.cfg != cfg:
            raise ValueError(f"job {j.name} is for another config")
    wdir = _job_dir(cfg)
    specs = [_write_job(j, wdir) for j in jobs]
    stop = threading.Event()
    th = None
    if progress is not None:
        th = threading.Thread(target=_follow, args=([s["progress"] for s in specs], stop,
                                                    progress), daemon=True)
        th.start()
    try:
        run_cocotb(top_factory(cfg), name="salo_top", key={"config": cfg.to_dict()},
                   test_module=_TB_MODULE, top_only=True, waves=waves,
                   params={"config": cfg.to_dict(), "jobs": specs})
    finally:
        stop.set()
        if th is not None:
            th.join()
    out = []
    for j, s in zip(jobs, specs):
        r = np.load(s["result"], allow_pickle=False)
        meta = json.loads(str(r["meta"]))
        res_out = None
        if j.expect_error is None and j.perm is not None:
            fin = j.out_order[:len(r["rows"]), 4] > 0
            got = r["rows"][fin]
            heads, pos = r["head"][fin], r["pos"][fin]
            H = j.expected.shape[0] if j.expected is not None else int(j.out_order[:, 0].max()) + 1
            N = len(j.perm)
            res_out = np.zeros((H, N, j.d), dtype=np.int64)
            tok = np.asarray(j.perm)[pos]
            res_out[heads, tok] = got
        out.append(RtlResult(j.name, res_out, meta["counters"], meta["error"], meta["done"],
                             meta["cycles"], meta))
    return out


def run_rtl(sched, q_int, k_int, v_int, *, expected=None, in_idle: float = 0.0,
            out_backpressure: float = 0.0, seed: int = 0, progress=print,
            watchdog: int = DEFAULT_WATCHDOG) -> RtlResult:
    """Run compiled schedule ``sched`` on the RTL for integer Q/K/V of shape
    (heads, N, d) in token order (as for :func:`sim.funcsim.simulate`).

    Returns an :class:`RtlResult` whose ``out`` is (heads, N, d) int64 in
    token order and whose ``counters`` hold the status port's performance
    counters.  ``expected`` (functional-simulator output, token order), when
    given, is checked inside the testbench (bit-exact, mismatches named).
    ``in_idle``/``out_backpressure``: probability of an idle input cycle per
    stream / of a back-pressured output cycle.  ``progress`` prints a line
    every ~5% of the passes (None: silent)."""
    job = make_job(sched, q_int, k_int, v_int, expected, name="run", in_idle=in_idle,
                   out_backpressure=out_backpressure, seed=seed, watchdog=watchdog)
    res = run_jobs(sched.cfg, [job], progress=progress)[0]
    if res.error != "NONE" or not res.done:
        raise RuntimeError(f"RTL run ended with error {res.error} (done={res.done}) after "
                           f"{res.cycles} cycles")
    return res
