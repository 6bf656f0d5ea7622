"""Hand-written programs whose PASS reads K/V rows that are not resident.

Shared by the functional-simulator test (``ProgramError``) and the
accelerator-top test (error code ``KV_NOT_RESIDENT``), so both levels are
held to the same residency rule (``docs/isa.md``, LOAD_KV).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from hw.isa import assemble
from scheduler.pattern import parse_pattern
from scheduler.schedule import compile_pattern


def residency_cases(cfg, seed: int = 0):
    """[(name, schedule, q, k, v)]: except for the last case
    (``control_resident``, whose reads are all resident), each schedule's
    program ends in a PASS
    whose full mask (every local pair) reads a slot whose row does not hold
    the position: never loaded, reused by a load kv_capacity later, a
    negative or too large kv_base, or loaded before SET_HEAD of another head."""
    R, C, S, cap = cfg.rows, cfg.cols, cfg.key_slots, cfg.kv_capacity
    n = cap + S + 1
    if n > cfg.max_seq_len:
        raise ValueError(f"max_seq_len = {cfg.max_seq_len} leaves no room for a reused row")
    pat = parse_pattern({"seq_len": n, "head_dim": 4, "heads": 2,
                         "window": {"left": 1, "right": 1}})
    base = compile_pattern(pat, cfg)
    full = {"col_lo": np.zeros((1, R), np.int64),
            "col_hi": np.full((1, R), C - 1, np.int64),
            "gcol_en": np.zeros((1, R, cfg.global_cols), bool),
            "rcol_en": np.zeros((1, R, cfg.random_cols), bool),
            "grow_lo": np.ones((1, cfg.global_rows), np.int64),
            "grow_hi": np.zeros((1, cfg.global_rows), np.int64)}
    pas = "PASS kv_base={} first=1 last=1"
    lq = f"LOAD_Q addr=0 count={R}"
    lkv = f"LOAD_KV addr=0 count={S}"
    programs = {
        "kv_never_loaded": ["SET_HEAD head=0", lq, pas.format(0)],
        "kv_row_reused": ["SET_HEAD head=0", lq, lkv, f"LOAD_KV addr={cap} count=1",
                          pas.format(0)],
        "kv_base_negative": ["SET_HEAD head=0", lq, lkv, pas.format(-1)],
        "kv_base_too_large": ["SET_HEAD head=0", lq, lkv, pas.format(cfg.max_seq_len)],
        "kv_other_head": ["SET_HEAD head=0", lkv, "SET_HEAD head=1", lq, pas.format(0)],
        # control: the same reads, resident (not an error of this kind)
        "control_resident": ["SET_HEAD head=0", lq, lkv, pas.format(0)],
    }
    rng = np.random.default_rng(seed)
    q, k, v = (rng.integers(-40, 40, (2, n, 4)) for _ in range(3))
    out = []
    for name, lines in programs.items():
        prog = assemble("\n".join(lines + ["END"]), cfg)
        sched = dataclasses.replace(base, program=prog, rkv=base.rkv[:0], **full)
        out.append((name, sched, q, k, v))
    return out
