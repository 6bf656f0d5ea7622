"""Writing a compiled schedule: program.bin, program.asm, plan.json, masks.bin, masks.npz.

plan.json is the *data plan*: what the host streams, in which order, and
where outputs go.  Its arrays that are too big for JSON (mask records, the
random-key stream) are in masks.npz, named in plan.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hw.isa import VERSION, disassemble, mask_record_layout, pack_mask_records, write_binary
from .cycles import estimate_cycles

__all__ = ["write_schedule", "load_schedule", "plan_dict", "PLAN_VERSION"]

PLAN_VERSION = 1


def plan_dict(sched, coverage: dict | None = None, cycles: dict | None = None) -> dict:
    """The data plan as a JSON-able dict."""
    cfg, p = sched.cfg, sched.pattern
    return {
        "plan_version": PLAN_VERSION, "isa_version": VERSION,
        "config_hash": cfg.hash(), "config": cfg.to_dict(),
        "pattern": {"name": p.name, "seq_len": p.seq_len, "head_dim": p.head_dim,
                    "heads": p.heads},
        "streams": {
            "order": "program order: each LOAD_Q / LOAD_KV / LOAD_GQ / LOAD_GKV reads rows of "
                     "the current head (SET_HEAD) at the positions it names; position pos is "
                     "token permutation[pos]; each LOAD_RKV reads the next entry of "
                     "random_key_positions; each PASS consumes the next mask record. Mask "
                     "records and the random-key stream restart at every SET_HEAD (every "
                     "head uses the same ones).",
            "q_scale": "host multiplies q by log2(e)/sqrt(d) and per-head scales (sim/driver.py)",
            "mask_records_per_head": sched.passes_per_head,
            "mask_record_bits": mask_record_layout(cfg).size,
            "mask_records_file": "masks.bin: packed records (hw.isa.pack_mask_records), "
                                 f"{-(-mask_record_layout(cfg).size // 8)} bytes each; the "
                                 "same as arrays in masks.npz (col_lo, col_hi, gcol_en, "
                                 "rcol_en, grow_lo, grow_hi)",
            "random_key_loads_per_head": int(len(sched.rkv)),
            "random_key_positions": "masks.npz rkv (loads, R, random_cols), -1 = unused",
        },
        "permutation": sched.perm.tolist(),
        "output": "output position pos (STORE / STORE_G addr) is token permutation[pos]",
        "stats": sched.stats,
        "coverage": coverage,
        "cycle_estimate": cycles,
    }


def write_schedule(sched, out_dir, coverage: dict | None = None,
                   host_words_per_cycle: int | None = None) -> dict:
    """Write all compile outputs into ``out_dir``; returns the cycle estimate."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cyc = estimate_cycles(sched, **({"host_words_per_cycle": host_words_per_cycle}
                                    if host_words_per_cycle else {}))
    write_binary(out / "program.bin", sched.program, sched.cfg)
    (out / "program.asm").write_text(disassemble(sched.program, sched.cfg))
    np.savez_compressed(out / "masks.npz", col_lo=sched.col_lo, col_hi=sched.col_hi,
                        gcol_en=sched.gcol_en, rcol_en=sched.rcol_en, grow_lo=sched.grow_lo,
                        grow_hi=sched.grow_hi, rkv=sched.rkv, permutation=sched.perm)
    masks = {k: getattr(sched, k) for k in ("col_lo", "col_hi", "gcol_en", "rcol_en",
                                            "grow_lo", "grow_hi")}
    (out / "masks.bin").write_bytes(pack_mask_records(masks, sched.cfg).tobytes())
    (out / "plan.json").write_text(json.dumps(plan_dict(sched, coverage, cyc), indent=1) + "\n")
    return cyc


def load_schedule(in_dir, cfg=None):
    """Read a compiled directory back into a :class:`Schedule` (program from
    program.bin, checked against the config hash; mask records and the
    permutation from masks.npz).  The pattern is a size-only stand-in (no
    parts): enough to simulate, not to re-prove coverage."""
    from hw.config import AcceleratorConfig
    from hw.isa import read_binary
    from .pattern import Pattern
    from .schedule import Schedule
    d = Path(in_dir)
    plan = json.loads((d / "plan.json").read_text())
    if plan.get("plan_version") != PLAN_VERSION:
        raise ValueError(f"{d}/plan.json: plan version {plan.get('plan_version')}, "
                         f"this tool reads {PLAN_VERSION}")
    cfg = cfg or AcceleratorConfig.from_dict(plan["config"])
    prog = read_binary(d / "program.bin", cfg)
    m = np.load(d / "masks.npz")
    pp = plan["pattern"]
    pat = Pattern(seq_len=pp["seq_len"], head_dim=pp["head_dim"], heads=pp["heads"],
                  name=pp["name"])
    nh = (len(prog) - 1) // pp["heads"]
    return Schedule(cfg, pat, m["permutation"], prog, m["col_lo"], m["col_hi"], m["gcol_en"],
                    m["rcol_en"], m["grow_lo"], m["grow_hi"], m["rkv"], nh, plan["stats"])
