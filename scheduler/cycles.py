"""Cycle estimate of a compiled program (documented assumptions).

* **Passes**: in steady state a pass starts every ``2*d`` cycles (K and V
  phases of consecutive passes interleave on the diagonal ports,
  docs/arithmetic.md section 4), whatever its mask.
* **Fill/drain**: once per program, the last pass's result appears
  :data:`FEED_LATENCY` (buffer read to the array's ports) + ``3*d`` (V
  phase lag) + ``d`` (weighted-sum elements) + the row chain (R + C + Gc +
  Rc PEs, the array's column stage, the PE's p*v pipeline and, with
  ``wsum_stage``, one more cycle per PE of the row) +
  :data:`MERGE_LATENCY` cycles after it started.
* **Loads**: the host streams :data:`DEFAULT_HOST_WORDS_PER_CYCLE` data
  words per cycle (Q rows, K and V rows, global/random keys: d words each,
  K+V count twice).  Q and K/V buffers are double buffered, so the loads of
  a tile overlap the passes of the previous tile; a tile costs
  max(its passes * 2d, the loads issued during it).  Mask records arrive on
  their own narrow stream and are not charged.
* **Stores** leave through the output port concurrently and are not charged.
"""

from __future__ import annotations

import numpy as np

from hw.array import column_stage, wsum_stage_delay
from hw.isa import Opcode

__all__ = ["estimate_cycles", "DEFAULT_HOST_WORDS_PER_CYCLE", "MERGE_LATENCY", "FEED_LATENCY"]

#: assumed host stream width in data words per cycle
DEFAULT_HOST_WORDS_PER_CYCLE = 8
#: merge unit: last element at the row end to normalized element out (the
#: top's input register, ``hw.top.MERGE_INPUT_LATENCY``, plus ``emit_latency``
#: of its ``hw.merge.MergeUnit``, built with min_head_dim = 4, for the SALO
#: widths; one more with 16-bit data, whose normalization product has 12
#: pieces instead of 6)
MERGE_LATENCY = 14
#: pass start to the array's ports (``hw.top.FEED``: buffer read, word register,
#: buffer output register, port register)
FEED_LATENCY = 5
#: the PE's p*v pipeline and product shift (``hw.pe.PE.ws_lead``)
PE_WS_EXTRA = 4


def estimate_cycles(sched, host_words_per_cycle: int = DEFAULT_HOST_WORDS_PER_CYCLE) -> dict:
    """Estimate the cycles of the whole program (all heads)."""
    cfg = sched.cfg
    d = sched.pattern.head_dim
    nh = sched.instrs_per_head
    ops = sched.program.opcode[:nh]
    cnt = sched.program.field("count")[:nh]
    # per-head instruction block: split at LOAD_Q (tile boundaries)
    tile_id = np.cumsum(ops == Opcode.LOAD_Q.value)
    words = np.zeros(len(ops), dtype=np.int64)
    words[ops == Opcode.LOAD_Q.value] = cnt[ops == Opcode.LOAD_Q.value] * d
    words[ops == Opcode.LOAD_KV.value] = 2 * cnt[ops == Opcode.LOAD_KV.value] * d
    words[ops == Opcode.LOAD_GKV.value] = 2 * d
    words[ops == Opcode.LOAD_GQ.value] = d
    words[ops == Opcode.LOAD_RKV.value] = 2 * d * cfg.rows * cfg.random_cols
    passes = (ops == Opcode.PASS.value).astype(np.int64)
    nt = int(tile_id.max()) + 1
    load_c = -(-np.bincount(tile_id, words, minlength=nt).astype(np.int64) // host_words_per_cycle)
    comp_c = np.bincount(tile_id, passes, minlength=nt).astype(np.int64) * 2 * d
    # loads of tile t+1 overlap compute of tile t; the first tile's loads are exposed
    per_tile = np.maximum(comp_c[:-1], load_c[1:]).sum() + comp_c[-1]
    head_cycles = int(load_c[0] + per_tile)
    # the row chain's end to the merged element: column stage, p*v pipeline,
    # the weighted-sum stages (one per PE with wsum_stage), merge
    tail = column_stage(cfg) + PE_WS_EXTRA + wsum_stage_delay(cfg, cfg.row_pes) + MERGE_LATENCY
    fill = FEED_LATENCY + 4 * d + cfg.rows + cfg.row_pes + tail
    total = sched.pattern.heads * head_cycles + fill
    n_pass = int(passes.sum()) * sched.pattern.heads
    pass_only = n_pass * 2 * d
    return {"cycles": int(total), "passes": n_pass, "cycles_per_head": head_cycles,
            "pass_cycles": int(pass_only), "fill_drain_cycles": int(fill),
            "load_stall_cycles": int(total - pass_only - fill),
            "host_words_per_cycle": host_words_per_cycle,
            "assumptions": "2*d cycles per pass; loads double buffered at "
                           f"{host_words_per_cycle} words/cycle; fill/drain "
                           f"{FEED_LATENCY}+4d+R+P_row+{tail} once"}
