"""cocotb testbench of :class:`hw.merge.MergeUnit` (run by tests/hw/test_merge.py).

Every expected value comes from the bit-exact models
``sim.array_model.empty_partial`` / ``merge`` / ``normalize``; the testbench
only generates stimuli, drives the protocol and compares.

Parameters (``sim.runner.tb_params()``): ``preset`` (hw.config preset name),
``div_steps`` (divider steps per cycle the DUT was built with), ``seed``.

Cycle convention: inputs are driven and outputs sampled at the falling edge
that starts cycle n; the DUT registers at the rising edge that ends it.  A
stream transfer happens in cycle n when ``output__valid`` and
``output__ready`` are both high in it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from hw.config import preset
from hw.merge import merge_output_layout, normalize_cycles
from sim.array_model import RowPartial, empty_partial, merge, normalize
from sim.runner import tb_params


# ----------------------------------------------------------------- stimulus
@dataclass
class Pass:
    s: int
    e: int
    o: list[int]
    acc_sum: int = 0          # model accumulator after this pass
    acc_exp: int = 0
    acc_out: list[int] = field(default_factory=list)


@dataclass
class Tile:
    index: int
    d: int
    passes: list[Pass]
    expected: list[int]       # normalize() of the final accumulator
    style: str


def model_tile(cfg, index, d, raw_passes, style) -> Tile:
    """Run the bit-exact models over the passes of one tile (rows shape (1,))."""
    acc = empty_partial((1,), d, cfg)
    passes = []
    for s, e, o in raw_passes:
        part = RowPartial(np.array([o], dtype=np.int64), np.array([s], dtype=np.int64),
                          np.array([e], dtype=np.int64))
        acc = merge(acc, part)
        S, E, O = int(acc.sum[0]), int(acc.exp[0]), [int(v) for v in acc.out[0]]
        # precondition of the test (not of the DUT): the model's accumulator
        # fits the merge widths the hardware is sized with
        assert 0 <= S < (1 << cfg.merge_sum_width), (index, S)
        lim = 1 << (cfg.merge_out_width - 1)
        assert all(-lim <= v < lim for v in O), (index, O)
        passes.append(Pass(s, e, list(o), S, E, O))
    expected = [int(v) for v in normalize(acc, cfg)[0]]
    return Tile(index, d, passes, expected, style)


def gen_tile(rng: random.Random, cfg, index: int, d: int, n_passes: int) -> Tile:
    emin, emax = cfg.exp_min, cfg.exp_max
    smax_in = (1 << cfg.row_sum_width) - 1
    olim = 1 << (cfg.wsum_width - 1)
    dlim = 1 << (cfg.data_width - 1)
    style = rng.choice(["uniform", "close", "extreme", "zeros", "mixed", "random-out",
                        "saturate"])
    base = rng.randint(emin, emax)
    raw = []
    for p in range(n_passes):
        # exponent
        if style == "uniform":
            e = rng.randint(emin, emax)
        elif style == "close":
            e = min(emax, max(emin, base + rng.randint(-2, 2)))
        elif style == "extreme":
            e = rng.choice([emin, emax, emin + 1, emax - 1])
        else:
            e = rng.choice([rng.randint(emin, emax), emin, emax, base])
        # sum
        r = rng.random()
        if style == "zeros" or r < 0.12:
            s, e = 0, emin                     # exact zero (all keys masked)
        elif r < 0.16:
            s = 0                              # zero sum with some exponent
        elif r < 0.22:
            s = smax_in
        else:
            s = rng.randint(1 << cfg.prob_frac, smax_in)
        # weighted-sum elements
        if s == 0 and e == emin:
            o = [0] * d
        elif style in ("random-out", "saturate") or rng.random() < 0.15:
            if style == "saturate" and rng.random() < 0.5:
                o = [rng.choice([-olim, olim - 1]) for _ in range(d)]
            else:
                o = [rng.randint(-olim, olim - 1) for _ in range(d)]
        else:
            # what a row chain delivers: S times a value in the data range
            o = [s * rng.choice([rng.randint(-dlim, dlim - 1), -dlim, dlim - 1])
                 for _ in range(d)]
        raw.append((s, e, o))
    return model_tile(cfg, index, d, raw, style)


# --------------------------------------------------------------- harness
class Harness:
    def __init__(self, dut, cfg, seed):
        self.dut = dut
        self.cfg = cfg
        self.prm = tb_params()
        self.rng = random.Random(seed)
        self.cycle = 0
        lay = merge_output_layout(head_dim_max=cfg.max_head_dim, out_width=cfg.out_width)
        self.f_data, self.f_index, self.f_last = lay["data"], lay["index"], lay["last"]
        self.xw = self.f_index.shape.width
        self.out_valid = getattr(dut, "output__valid")
        self.out_ready = getattr(dut, "output__ready")
        self.out_payload = getattr(dut, "output__payload")
        self.p_ready = 1.0
        self.stall_left = 0
        self.ready_now = 0
        self.outputs = []         # (cycle, data, index, last)
        self.checks = {}          # cycle -> [callable]
        self.failures = []
        self.error_seen_at = None
        self.busy_delays = 0      # cycles a first row sum waited for busy low

    def field(self, raw, f):
        v = (raw >> f.offset) & ((1 << f.shape.width) - 1)
        if f.shape.signed and v >> (f.shape.width - 1):
            v -= 1 << f.shape.width
        return v

    def idle_inputs(self):
        d = self.dut
        d.rs_valid.value = 0
        d.rs_first.value = 0
        d.rs_last.value = 0
        d.rs_sum.value = 0
        d.rs_exp.value = 0
        d.el_valid.value = 0
        d.el_data.value = 0

    async def reset(self, head_dim):
        d = self.dut
        if not getattr(self, "_clock", None):
            self._clock = Clock(d.clk, 10, unit="ns")
            self._clock.start()
        self.idle_inputs()
        d.head_dim.value = head_dim
        self.out_ready.value = 0
        d.rst.value = 1
        for _ in range(3):
            await FallingEdge(d.clk)
        d.rst.value = 0

    def choose_ready(self):
        if self.stall_left > 0:
            self.stall_left -= 1
            return 0
        if self.p_ready < 1.0 and self.rng.random() < 0.01:
            self.stall_left = self.rng.randint(5, 60)
            return 0
        return int(self.rng.random() < self.p_ready)

    async def tick(self, check_error=True):
        """Advance to the next falling edge: sample outputs, choose ready, run
        the internal checks due in this cycle.  Inputs for the new cycle are
        set by the caller after this returns."""
        await FallingEdge(self.dut.clk)
        self.cycle += 1
        n = self.cycle
        if check_error and int(self.dut.error.value) and self.error_seen_at is None:
            self.error_seen_at = n
        valid = int(self.out_valid.value)
        self.ready_now = self.choose_ready()
        self.out_ready.value = self.ready_now
        if valid and self.ready_now:
            raw = self.out_payload.value.to_unsigned()
            self.outputs.append((n, self.field(raw, self.f_data), self.field(raw, self.f_index),
                                 self.field(raw, self.f_last)))
        for fn in self.checks.pop(n, []):
            fn()

    def at(self, cycle, fn):
        self.checks.setdefault(cycle, []).append(fn)

    # internal-state checks (localize a merge mismatch to tile/pass/element)
    def check_sum(self, tile, p, bank, when):
        """The row sum of cycle ``when - 1``: its exponent is accumulated at
        ``when``, its sum ``rs_latency - 1`` cycles later."""
        def check(name, want, signed_):
            def fn():
                v = getattr(self.dut, f"{name}{bank}").value
                got = v.to_signed() if signed_ else v.to_unsigned()
                if got != want:
                    ps = tile.passes[p]
                    self.failures.append(
                        f"tile {tile.index} (d={tile.d}, {len(tile.passes)} passes, "
                        f"{tile.style}) pass {p}: accumulated {name} = {got} at cycle "
                        f"{self.cycle}, model merge gives {want} "
                        f"[row sum in ({ps.s}, {ps.e})]")
            return fn
        ps = tile.passes[p]
        self.at(when, check("exp", ps.acc_exp, True))
        self.at(when + self.prm["rs_latency"] - 1, check("sum", ps.acc_sum, False))

    def check_elem(self, tile, p, x, bank, when):
        def fn():
            ps = tile.passes[p]
            got = self.dut.mem[(bank << self.xw) | x].value.to_signed()
            if got != ps.acc_out[x]:
                self.failures.append(
                    f"tile {tile.index} (d={tile.d}, {len(tile.passes)} passes, {tile.style}) "
                    f"pass {p} element {x}: accumulator = {got} at cycle {self.cycle}, "
                    f"model merge gives {ps.acc_out[x]} [element in {ps.o[x]}, "
                    f"pass exp {ps.e}, acc exp {ps.acc_exp}]")
        self.at(when, fn)


async def run_tiles(h: Harness, tiles: list[Tile], *, timing: str, p_ready: float,
                    record=None, out_base: int = 0):
    """Drive ``tiles`` (all with the same d, DUT idle, head_dim set) under the
    protocol rules; compare every output element with the model.

    timing: "array" (row sums every 2d cycles, element 0 2d-2 cycles after
    its row sum), "tight" (random short spacings, limited only by the protocol),
    "sparse" (random idle gaps).  ``record``: dict filled with per-tile cycles
    of the last row sum, last element and outputs (latency measurements).
    """
    dut, rng = h.dut, h.rng
    d = tiles[0].d
    h.p_ready = p_ready
    # flattened pass list
    plist = [(t, p) for t in tiles for p in range(len(t.passes))]
    nxt = 0                     # next pass to send its row sum
    rs_due = h.cycle + 1
    queue = []                  # [tile, p, start_cycle, x] passes awaiting elements
    tail = 0                    # first cycle free for elements
    exp_out = [(t, x) for t in tiles for x in range(d)]
    got_before = out_base
    last_progress = h.cycle
    bank_of = lambda t: t.index % 2

    while True:
        await h.tick()
        n = h.cycle
        h.idle_inputs()
        progressed = False
        # ---- element of the head pass
        if queue and queue[0][2] <= n:
            ent = queue[0]
            t, p, _, x = ent
            dut.el_valid.value = 1
            dut.el_data.value = int(t.passes[p].o[x])
            # written at the end of n+2 (n+3 with min_head_dim >= 3)
            h.check_elem(t, p, x, bank_of(t), n + 3 + h.prm.get("deep", 0))
            if record is not None and p == len(t.passes) - 1:
                record.setdefault(t.index, {}).setdefault("el", []).append(n)
            ent[3] += 1
            if ent[3] == d:
                queue.pop(0)
            progressed = True
        # ---- row sum of the next pass
        if nxt < len(plist) and n >= rs_due:
            t, p = plist[nxt]
            allowed = len(queue) < 2          # after this cycle's pop (push & pop ok)
            if p == 0 and int(dut.busy.value):
                allowed = False
                h.busy_delays += 1
            if allowed:
                ps = t.passes[p]
                last = p == len(t.passes) - 1
                dut.rs_valid.value = 1
                dut.rs_sum.value = ps.s
                dut.rs_exp.value = ps.e
                dut.rs_first.value = int(p == 0)
                dut.rs_last.value = int(last)
                h.check_sum(t, p, bank_of(t), n + 1)
                if record is not None and last:
                    record.setdefault(t.index, {})["R"] = n
                if timing == "array":
                    gap = max(1, 2 * d - 2)
                    period = 2 * d
                elif timing == "tight":
                    gap = rng.choice([1, 1, 2, rng.randint(1, 3 * d + 2)])
                    period = rng.choice([1, 2, rng.randint(1, 2 * d + 2)])
                else:
                    gap = rng.randint(1, 4 * d + 40)
                    period = rng.randint(1, 2 * d + 2)
                    if last and rng.random() < 0.5:
                        period += rng.randint(0, 80)
                start = max(n + gap, tail)
                queue.append([t, p, start, 0])
                tail = start + d
                # min_head_dim >= 3: row sums at least 2 cycles apart
                rs_due = n + max(period, 1 + h.prm.get("deep", 0))
                nxt += 1
                progressed = True
        # ---- outputs
        while got_before < len(h.outputs):
            cyc, val, idx, lst = h.outputs[got_before]
            i = got_before - out_base
            got_before += 1
            progressed = True
            if i >= len(exp_out):
                h.failures.append(f"extra output {val} (index {idx}) at cycle {cyc}: "
                                  f"all {len(exp_out)} expected elements were already emitted")
                continue
            t, x = exp_out[i]
            want_last = int(x == d - 1)
            if (val, idx, lst) != (t.expected[x], x, want_last):
                h.failures.append(
                    f"tile {t.index} (d={d}, {len(t.passes)} passes, {t.style}) element {x}: "
                    f"output (data, index, last) = ({val}, {idx}, {lst}) at cycle {cyc}, "
                    f"model normalize gives ({t.expected[x]}, {x}, {want_last}) "
                    f"[merged sum {t.passes[-1].acc_sum}, exp {t.passes[-1].acc_exp}, "
                    f"out {t.passes[-1].acc_out[x]}]")
            if record is not None:
                record.setdefault(t.index, {}).setdefault("out", []).append(cyc)
        if progressed:
            last_progress = n
        done_in = nxt == len(plist) and not queue
        if done_in and got_before - out_base >= len(exp_out):
            break
        if h.failures and len(h.failures) > 20:
            break
        if n - last_progress > 5000:
            h.failures.append(
                f"no progress for 5000 cycles at cycle {n}: {nxt}/{len(plist)} row sums sent, "
                f"{len(queue)} passes await elements, "
                f"{got_before - out_base}/{len(exp_out)} outputs received, "
                f"busy={int(dut.busy.value)} idle={int(dut.idle.value)}")
            break
    # settle: the unit must go idle and emit nothing more
    for _ in range(8):
        await h.tick()
        h.idle_inputs()
    if len(h.outputs) != got_before:
        for cyc, val, idx, lst in h.outputs[got_before:]:
            h.failures.append(f"extra output {val} (index {idx}, last {lst}) at cycle {cyc}")
    if not int(dut.idle.value):
        h.failures.append(f"unit not idle at cycle {h.cycle} after all outputs")


def assert_clean(h: Harness, what: str):
    if h.error_seen_at is not None:
        h.failures.insert(0, f"error output went high at cycle {h.error_seen_at} "
                             f"although the protocol was respected")
    if h.failures:
        raise AssertionError(f"{what}: {len(h.failures)} mismatch(es), first ones:\n  "
                             + "\n  ".join(h.failures[:12]))


def head_dims(cfg):
    ds = [1, 2, 3, 5, cfg.max_head_dim]
    lo = tb_params().get("min_head_dim", 1)
    return sorted({x for x in ds if lo <= x <= cfg.max_head_dim})


# ------------------------------------------------------------------- tests
@cocotb.test()
async def random_passes(dut):
    """Random tiles of 1, 3, 20 and 1..6 passes for several d, back to back,
    random timing, random back-pressure; bit-exact against the models."""
    prm = tb_params()
    cfg = preset(prm["preset"])
    h = Harness(dut, cfg, prm["seed"])
    await h.reset(head_dims(cfg)[0])
    rng = h.rng
    tile_index = 0
    stats = {"tiles": 0, "passes": 0, "outputs": 0, "saturated": 0, "zero_sum_tiles": 0}
    sat_hi, sat_lo = (1 << (cfg.out_width - 1)) - 1, -(1 << (cfg.out_width - 1))
    for d in head_dims(cfg):
        # idle here: change d
        dut.head_dim.value = d
        segments = [(1, 36), (3, 18), (20, 6), (None, 24)]
        for n_passes, n_tiles in segments:
            left = n_tiles
            while left:
                chunk = min(left, rng.randint(1, 6))
                left -= chunk
                tiles = []
                for _ in range(chunk):
                    P = n_passes if n_passes is not None else rng.randint(1, 6)
                    tiles.append(gen_tile(rng, cfg, tile_index, d, P))
                    tile_index += 1
                timing = rng.choice(["array", "tight", "sparse"])
                p_ready = rng.choice([1.0, 0.9, 0.5, 0.15])
                base = len(h.outputs)
                await run_tiles(h, tiles, timing=timing, p_ready=p_ready, out_base=base)
                assert_clean(h, f"d={d}, {n_passes} passes/tile, timing {timing}, "
                                f"p(ready)={p_ready}")
                for t in tiles:
                    stats["tiles"] += 1
                    stats["passes"] += len(t.passes)
                    stats["outputs"] += d
                    stats["saturated"] += sum(v in (sat_hi, sat_lo) for v in t.expected)
                    stats["zero_sum_tiles"] += int(t.passes[-1].acc_sum == 0)
    dut._log.info(f"random_passes: {stats}, {h.cycle} cycles")
    # coverage of the cases the brief asks for (a run without them proves little)
    assert stats["saturated"] > 0, stats
    assert stats["zero_sum_tiles"] > 0, stats


@cocotb.test()
async def latency(dut):
    """No back-pressure, one tile at a time from idle: o[x] appears exactly
    as documented in MergeUnit: o[0] at max(t_0 + lam, R + rs_latency +
    normalize_cycles + out_latency), o[x] at max(t_x + lam, o[x-1] + 1) (t_x:
    element x of the last pass, R: its row sum, lam: ``MergeUnit.emit_latency``)."""
    prm = tb_params()
    lam = prm["emit_latency"]
    r0 = prm["rs_latency"] + prm["out_latency"]
    cfg = preset(prm["preset"])
    nc = normalize_cycles(recip_frac=cfg.recip_frac, div_steps_per_cycle=prm["div_steps"])
    h = Harness(dut, cfg, prm["seed"] + 1)
    await h.reset(head_dims(cfg)[0])
    rng = h.rng
    tile_index = 0
    seen = []
    for d in head_dims(cfg):
        dut.head_dim.value = d
        for n_passes in (1, 3):
            for timing in ("array", "sparse"):
                tiles = [gen_tile(rng, cfg, tile_index, d, n_passes)]
                tile_index += 1
                rec = {}
                base = len(h.outputs)
                await run_tiles(h, tiles, timing=timing, p_ready=1.0, record=rec,
                                out_base=base)
                assert_clean(h, f"latency d={d}")
                r = rec[tiles[0].index]
                want = []
                for x, tx in enumerate(r["el"]):
                    prev = want[-1] + 1 if want else r["R"] + r0 + nc
                    want.append(max(tx + lam, prev))
                if r["out"] != want:
                    raise AssertionError(
                        f"tile {tiles[0].index} d={d} passes={n_passes}: outputs at cycles "
                        f"{r['out']}, documented {want} (R={r['R']}, last-pass elements at "
                        f"{r['el']}, normalize_cycles={nc})")
                seen.append((d, n_passes, r["out"][0] - r["el"][0], r["out"][0] - r["el"][-1],
                             r["out"][0] - r["R"]))
    dut._log.info("latency (d, passes, o[0] - element 0 of last pass, o[0] - its last "
                  "element, o[0] - its row sum): "
                  f"{seen}; normalize_cycles={nc}")


@cocotb.test()
async def protocol_errors(dut):
    """``error`` goes high (and stays) on each protocol violation."""
    prm = tb_params()
    cfg = preset(prm["preset"])
    h = Harness(dut, cfg, prm["seed"] + 2)

    async def fresh():
        await h.reset(2)
        h.p_ready = 0.0            # no output transfers: banks stay busy
        await h.tick(check_error=False)
        assert int(dut.error.value) == 0

    async def rs(first, last):
        dut.rs_valid.value = 1
        dut.rs_sum.value = 1 << cfg.prob_frac
        dut.rs_exp.value = 0
        dut.rs_first.value = first
        dut.rs_last.value = last
        await h.tick(check_error=False)
        h.idle_inputs()

    async def el():
        dut.el_valid.value = 1
        dut.el_data.value = 5
        await h.tick(check_error=False)
        h.idle_inputs()

    # (a) an element with no pass awaiting elements
    await fresh()
    await el()
    await h.tick(check_error=False)
    assert int(dut.error.value) == 1, "element without a pass did not raise error"
    for _ in range(5):
        await h.tick(check_error=False)
    assert int(dut.error.value) == 1, "error is not sticky"
    # (b) a third row sum while two passes await their elements
    await fresh()
    await rs(1, 0)
    await rs(0, 0)
    await h.tick(check_error=False)
    assert int(dut.error.value) == 0, "two outstanding passes must be allowed"
    await rs(0, 0)
    await h.tick(check_error=False)
    assert int(dut.error.value) == 1, "third outstanding pass did not raise error"
    # (c) a row sum into a bank still holding an unfinished tile (busy)
    await fresh()
    for _ in range(2):                     # two 1-pass tiles, never emitted
        await rs(1, 1)
        await el()
        await el()
    for _ in range(4 * cfg.recip_frac):
        await h.tick(check_error=False)
    assert int(dut.busy.value) == 1, "busy must be high: both banks hold unemitted tiles"
    assert int(dut.error.value) == 0
    await rs(1, 1)
    await h.tick(check_error=False)
    assert int(dut.error.value) == 1, "row sum while busy did not raise error"


@cocotb.test()
async def array_cadence(dut):
    """The array's cadence for 1-pass tiles (row sum every 2d cycles, element
    0 g = 2d-2 cycles after its row sum), no back-pressure: when g <= 3d-lam
    and normalize_cycles <= min(2d, 3d-rs_latency-out_latency) (the documented
    condition) the
    controller never has to wait for ``busy``; outputs stay bit-exact
    either way."""
    prm = tb_params()
    cfg = preset(prm["preset"])
    nc = normalize_cycles(recip_frac=cfg.recip_frac, div_steps_per_cycle=prm["div_steps"])
    lam = prm["emit_latency"]
    r0 = prm["rs_latency"] + prm["out_latency"]
    h = Harness(dut, cfg, prm["seed"] + 3)
    await h.reset(1)
    tile_index = 0
    seen = []
    for d in head_dims(cfg) + [4, 8, 9, 12]:
        if d > cfg.max_head_dim:
            continue
        dut.head_dim.value = d
        tiles = [gen_tile(h.rng, cfg, tile_index + i, d, 1) for i in range(24)]
        tile_index += len(tiles)
        h.busy_delays = 0
        await run_tiles(h, tiles, timing="array", p_ready=1.0, out_base=len(h.outputs))
        assert_clean(h, f"array cadence d={d}")
        g = max(1, 2 * d - 2)        # run_tiles' 'array' timing
        stall_free = g <= 3 * d - lam and nc <= min(2 * d, 3 * d - r0)
        seen.append((d, stall_free, h.busy_delays))
        if stall_free and h.busy_delays:
            raise AssertionError(
                f"d={d}, normalize_cycles={nc}: the controller waited {h.busy_delays} cycles "
                f"for busy although g={g} <= 3d-{lam} and normalize_cycles <= "
                f"min(2d, 3d-{r0})")
    dut._log.info(f"array cadence (d, documented stall-free, cycles waited for busy): {seen}")
