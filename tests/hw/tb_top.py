"""cocotb system testbench of :class:`hw.top.SaloTop` (driven by
``sim.rtl_backend.run_jobs``; used by ``tests/hw/test_top*.py`` and by the
RTL backend).

Parameters (``tb_params()``): ``config`` and a list of ``jobs``, each naming
an ``.npz`` file written by the backend (instruction words, mask records,
Q/K/V rows in stream order, expected emission order and the functional
simulator's outputs) and its run settings.  All jobs run in this one cocotb
test, one after the other, with a reset in between.

Per cycle (one loop, the streams are AXI-Stream style):

* **drivers** for ``instructions``, ``masks``, ``rows_in``: a beat is held
  until it transfers (valid never drops before ready); between beats a
  stream idles with probability ``in_idle`` (random per stream and cycle);
* **monitor** on ``results`` with random back-pressure (``ready`` low with
  probability ``out_backpressure``);
* **scoreboard**: the k-th result beat must be the k-th (head, position) of
  the program's STORE/STORE_G order and its d elements must equal the
  functional simulator's (for the final write of each position: a global
  query's local-row result is overwritten by its STORE_G, as on the host);
  elements >= d must be zero.  A mismatch names the
  head, tile (STORE ordinal in the head), row, element and cycle.

Every failure of every job is collected; the test fails at the end listing
them.  Results (rows, heads, positions, cycles, counters, error, done) go to
the job's ``.result.npz`` for the backend.
"""

from __future__ import annotations

import json
import random

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly

from hw.config import AcceleratorConfig
from hw.top_status import COUNTERS, ErrorCode, decode_result
from sim.runner import tb_params

MAX_LISTED = 10


def _u(handle) -> int:
    """Unsigned value of a port (1-bit ports read as a Logic, wider as a LogicArray)."""
    v = handle.value
    return v.to_unsigned() if hasattr(v, "to_unsigned") else int(v)


def _pack_row(vals, dw: int) -> int:
    mask = (1 << dw) - 1
    w = 0
    for i, v in enumerate(vals):
        w |= (int(v) & mask) << (i * dw)
    return w


class Source:
    """AXI-Stream style source: holds a beat until it transfers."""

    def __init__(self, dut, prefix: str, beats: list[int], idle: float, rng: random.Random):
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.beats = beats
        self.idle = idle
        self.rng = rng
        self.i = 0
        self.offering = False

    def drive(self):
        if not self.offering and self.i < len(self.beats):
            if self.idle == 0.0 or self.rng.random() >= self.idle:
                self.offering = True
                self.payload.value = self.beats[self.i]
        self.valid.value = 1 if self.offering else 0

    def sample(self):
        if self.offering and _u(self.ready):
            self.i += 1
            self.offering = False


async def _reset(dut):
    await FallingEdge(dut.clk)          # leave a ReadOnly phase of the previous job
    dut.rst.value = 1
    for prefix in ("instructions", "masks", "rows_in"):
        getattr(dut, f"{prefix}__valid").value = 0
    dut.results__ready.value = 0
    for _ in range(3):
        await FallingEdge(dut.clk)
    dut.rst.value = 0


async def run_job(dut, cfg: AcceleratorConfig, spec: dict) -> list[str]:
    """Run one job; returns the list of failure messages (empty = passed)."""
    z = np.load(spec["file"], allow_pickle=False)
    d = spec["d"]
    D, dw = cfg.max_head_dim, cfg.data_width
    rng = random.Random(spec["seed"])
    words = [int(w) for w in z["words"]]
    masks = [int(m, 16) for m in z["masks"]]
    rows = [_pack_row(r, dw) for r in z["rows"]]
    order = z["out_order"]
    expected = z["expected"] if spec["check"] else None
    fails: list[str] = []

    await _reset(dut)
    dut.head_dim.value = d
    dut.watchdog_limit.value = spec["watchdog"]
    srcs = [Source(dut, "instructions", words, spec["in_idle"], rng),
            Source(dut, "masks", masks, spec["in_idle"], rng),
            Source(dut, "rows_in", rows, spec["in_idle"], rng)]
    bp = spec["out_backpressure"]
    got_rows, got_head, got_pos, got_cyc = [], [], [], []
    n_pass_total = max(1, spec["n_passes"])
    next_report = 0.05
    prog_f = open(spec["progress"], "a") if spec.get("progress") else None
    cycle = 0
    done = err = 0
    max_cycles = spec["max_cycles"]
    err_bound = spec["error_within"] or max_cycles
    while True:
        await FallingEdge(dut.clk)
        for s in srcs:
            s.drive()
        ready = 1 if (bp == 0.0 or rng.random() >= bp) else 0
        dut.results__ready.value = ready
        await ReadOnly()
        for s in srcs:
            s.sample()
        if ready and _u(dut.results__valid):
            head, pos, row = decode_result(cfg, _u(dut.results__payload))
            got_rows.append(row)
            got_pos.append(pos)
            got_head.append(head)
            got_cyc.append(cycle)
        done = _u(dut.done)
        err = _u(dut.error)
        cycle += 1
        if prog_f is not None and cycle % 2048 == 0:
            npass = _u(dut.passes)
            if npass >= next_report * n_pass_total:
                prog_f.write(f"[{spec['name']}] cycle {cycle}: {srcs[0].i}/{len(words)} "
                             f"instructions, {npass}/{n_pass_total} passes "
                             f"({100.0 * npass / n_pass_total:.0f}%)\n")
                prog_f.flush()
                next_report = npass / n_pass_total + 0.05
        if done or err:
            break
        if cycle >= max_cycles:
            fails.append(f"no END and no error after {cycle} cycles (hang): "
                         f"{srcs[0].i}/{len(words)} instructions, {srcs[1].i}/{len(masks)} "
                         f"mask records, {srcs[2].i}/{len(rows)} rows, "
                         f"{len(got_rows)}/{len(order)} results")
            break
    if prog_f is not None:
        prog_f.close()
    err_name = ErrorCode(err).name
    counters = {name: _u(getattr(dut, name)) for name in COUNTERS}

    if spec["expect_error"] is not None:
        if err_name != spec["expect_error"]:
            fails.append(f"expected error {spec['expect_error']}, got {err_name} "
                         f"(done={done}) at cycle {cycle}")
        elif cycle > err_bound:
            fails.append(f"error {err_name} only at cycle {cycle} > bound {err_bound}")
        else:
            # the error state is stable: no stream moves any more
            for _ in range(20):
                await FallingEdge(dut.clk)
                for s in srcs:
                    s.drive()
                await ReadOnly()
                for s in srcs:
                    if s.offering and _u(s.ready):
                        fails.append(f"error state: {s.valid._name} accepted a beat")
                if _u(dut.error) != err:
                    fails.append("error code changed after the error")
                    break
    else:
        if err:
            fails.append(f"error {err_name} at cycle {cycle} after {srcs[0].i} instructions")
        # counts: every stream consumed completely, every result exactly once, in order
        for s, what in zip(srcs, ("instructions", "mask records", "rows")):
            if s.i != len(s.beats):
                fails.append(f"{what}: consumed {s.i} of {len(s.beats)}")
        if len(got_rows) != len(order):
            fails.append(f"results: got {len(got_rows)} rows, expected {len(order)}")
        # the pass counter counts each PASS and each STORE_G's closing pass
        if counters["passes"] != spec["n_passes"]:
            fails.append(f"counter passes = {counters['passes']}, the program has "
                         f"{spec['n_passes']} (PASS + STORE_G)")
        listed = 0
        for k in range(min(len(got_rows), len(order))):
            h, p, tile, row, final = (int(x) for x in order[k])
            where = (f"head {h} tile {tile} row {row}" if tile >= 0
                     else f"head {h} global row {row}")
            if (got_head[k], got_pos[k]) != (h, p):
                if listed < MAX_LISTED:
                    fails.append(f"result #{k} at cycle {got_cyc[k]}: (head, pos) = "
                                 f"({got_head[k]}, {got_pos[k]}), expected ({h}, {p}) "
                                 f"[{where}]")
                listed += 1
                continue
            g = got_rows[k]
            if any(g[d:]):
                if listed < MAX_LISTED:
                    fails.append(f"result #{k} ({where}, pos {p}) cycle {got_cyc[k]}: "
                                 f"elements >= d not zero: {g[d:]}")
                listed += 1
            # a row overwritten later by the program (a global query's local
            # row) has no functional-simulator value of its own
            if expected is not None and final:
                e = expected[h, p]
                for x in range(d):
                    if g[x] != int(e[x]):
                        if listed < MAX_LISTED:
                            fails.append(f"mismatch {where} (pos {p}) element {x} at cycle "
                                         f"{got_cyc[k]}: expected {int(e[x])}, got {g[x]}")
                        listed += 1
        if listed > MAX_LISTED:
            fails.append(f"... {listed - MAX_LISTED} more mismatches")
    meta = {"name": spec["name"], "error": err_name, "done": bool(done), "cycles": cycle,
            "counters": counters, "fails": fails}
    np.savez(spec["result"], rows=np.array(got_rows, dtype=np.int64).reshape(-1, D)[:, :d],
             head=np.array(got_head, dtype=np.int64), pos=np.array(got_pos, dtype=np.int64),
             cycle=np.array(got_cyc, dtype=np.int64), meta=np.array(json.dumps(meta)))
    dut._log.info(f"JOB {spec['name']}: {'ok' if not fails else 'FAILED'} error={err_name} "
                  f"done={done} cycles={cycle} counters={json.dumps(counters)}")
    return fails


@cocotb.test()
async def run_jobs(dut):
    prm = tb_params()
    cfg = AcceleratorConfig.from_dict(prm["config"])
    Clock(dut.clk, 10, unit="ns").start()
    failures = []
    for spec in prm["jobs"]:
        fails = await run_job(dut, cfg, spec)
        failures += [f"[{spec['name']}] {f}" for f in fails]
    assert not failures, f"{len(failures)} failure(s):\n  " + "\n  ".join(failures)
