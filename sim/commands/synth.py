"""``salo synth``: FPGA synthesis, place and route and a resource/Fmax report."""

from __future__ import annotations

import argparse
import json
import shlex


def _sizes(text: str):
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        try:
            r, c = part.split("x")
            out.append((int(r), int(c)))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"bad size {part!r} in {text!r}: expected RxC[,RxC...], e.g. 4x4,8x8,8x16") from None
    return out


def register(sub):
    from fpga.designs import DESIGNS
    from fpga.flow import (DEFAULT_PLACER, DEFAULT_PNR_OPTS, DEFAULT_PNR_SETTINGS,
                           DEFAULT_ROUTER, PLACERS, ROUTERS, TARGETS)
    p = sub.add_parser(
        "synth", help="synthesize (and place and route) the accelerator for an FPGA",
        description="Synthesize a design with Yosys and place and route it with "
                    "nextpnr-ecp5 (YoWASP, from PyPI), then print Fmax per clock, "
                    "LUT/FF/DSP/BRAM used and available, the critical path and tool "
                    "wall times, and write report.json and the tool logs into the "
                    "output folder. Xilinx (xc7) gives a synthesis-only resource "
                    "estimate. The design is wrapped in a 5-pin serial shell so it "
                    "fits any package; the report says which design was synthesized.",
        epilog="Examples: salo synth --preset fpga; "
               "salo synth --preset fpga --design mac-grid --target xc7; "
               "salo synth --preset fpga --sweep 4x4,8x8,8x16 --md docs/fpga-scaling.md")
    p.add_argument("--config", metavar="CFG", help="accelerator config JSON file")
    p.add_argument("--preset", metavar="NAME", help="named preset (default: fpga)")
    p.add_argument("--target", default="ecp5-85f", choices=list(TARGETS),
                   help="FPGA target (default ecp5-85f)")
    p.add_argument("--design", default="auto", choices=list(DESIGNS),
                   help="what to synthesize: auto = the accelerator top if it exists, "
                        "else the largest component that elaborates (default auto)")
    p.add_argument("-o", "--out", metavar="DIR",
                   help="output folder (default build/synth-<design>-<target>-<hash>)")
    p.add_argument("--freq", metavar="MHZ", type=float, default=100.0,
                   help="clock constraint for place and route in MHz (default 100)")
    p.add_argument("--synth-opts", metavar="OPTS", default="",
                   help="extra options of synth_ecp5 / synth_xilinx, e.g. '-dff' "
                        "(Yosys 0.70's synth_ecp5 always maps LUTs with abc9)")
    p.add_argument("--no-pnr", action="store_true",
                   help="synthesis only (resource estimate, no Fmax)")
    p.add_argument("--seed", metavar="N[,N...]", default="1",
                   help="nextpnr placement seed (default 1); several, e.g. 1,2: each is "
                        "placed and routed (as many at a time as there are CPUs, each in "
                        "DIR/seed<N>/) and the best routed Fmax is kept in DIR; the report "
                        "lists every seed's result")
    p.add_argument("--route-timeout", metavar="MIN", type=float, default=0.0,
                   help="stop routing after MIN minutes (default 0: no limit); the "
                        "post-placement estimate, printed before routing starts, stays "
                        "in the report (the 4x4 accelerator top routes in 4-7 minutes with "
                        "router2 on a 2-core machine; router1 took over an hour)")
    p.add_argument("--router", choices=ROUTERS, default=DEFAULT_ROUTER,
                   help=f"nextpnr router (default {DEFAULT_ROUTER}: on the accelerator top "
                        "it converges where router1 crawls through the last few thousand "
                        "arcs)")
    p.add_argument("--placer", choices=PLACERS, default=DEFAULT_PLACER,
                   help=f"nextpnr placer (default {DEFAULT_PLACER}); static is the "
                        "electrostatic placer: less wire, a lower estimate after "
                        "placement, routed Fmax within the same seed-to-seed spread "
                        "on the accelerator top (docs/fpga-scaling.md)")
    p.add_argument("--pnr-opts", metavar="OPTS", default=DEFAULT_PNR_OPTS,
                   help="extra nextpnr-ecp5 options for placement and routing, e.g. "
                        "'--router2-alt-weights --placer-heap-timingweight 20' (default "
                        f"{DEFAULT_PNR_OPTS!r}; '' for none); the flow's own files, "
                        "clock, seed and router are set by the options above; write "
                        "--pnr-opts=--router2-alt-weights for a single option; the "
                        "routing call always has --threads 1 --tmg-ripup")
    p.add_argument("--pnr-settings", metavar="KV", default=DEFAULT_PNR_SETTINGS,
                   help="nextpnr settings for routing, KEY=VALUE words written into the "
                        "placed netlist (nextpnr has no options for them), e.g. "
                        "'router2/bbMargin/x=6 router2/estimateWeight=1.5' (default "
                        f"{DEFAULT_PNR_SETTINGS!r}: wider bounding boxes, with which router2 "
                        "resolved more of the accelerator top's congestion; '' for "
                        "nextpnr's defaults)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--sweep", metavar="SIZES", type=_sizes,
                   help="run the flow for several array sizes RxC,... (the config's "
                        "rows/cols replaced) and print a scaling table")
    p.add_argument("--md", metavar="FILE",
                   help="with --sweep: also write the table as Markdown to FILE "
                        "(rewritten after every size)")
    p.add_argument("--rerun", action="store_true",
                   help="with --sweep: rerun sizes whose folder already holds a report "
                        "of the same Verilog and options (default: reuse it)")
    p.set_defaults(func=run)


def run(args):
    from hw.config import load_config
    from sim.cli import UserError
    from fpga.flow import FlowError, format_report, run_flow

    cfg = load_config(args.config, args.preset or (None if args.config else "fpga"))
    label = args.preset or (args.config and f"config {args.config}") or "fpga"
    if args.md and not args.sweep:
        raise UserError("--md needs --sweep")
    try:
        if args.sweep:
            from fpga.scaling import run_sweep, write_markdown
            if args.out:
                raise UserError("-o/--out is per run; with --sweep each size gets its own "
                                "folder under build/")
            def progress(rows):
                if args.md and any("error" not in rep for _, _, rep in rows):
                    write_markdown(rows, args.md, command=_command_line(args),
                                   key=_series_key(args), pending=args.sweep[len(rows):])
                    print(f"wrote {args.md} ({len(rows)} of {len(args.sweep)} sizes)")

            rows = run_sweep(cfg, args.sweep, target=args.target, design=args.design,
                             freq_mhz=args.freq, synth_opts=args.synth_opts,
                             place_and_route=not args.no_pnr, seed=args.seed,
                             config_label=label, reuse=not args.rerun, on_result=progress,
                             route_timeout_min=args.route_timeout, router=args.router,
                             placer=args.placer, pnr_opts=args.pnr_opts,
                             pnr_settings=args.pnr_settings)
            return 1 if any("error" in rep for _, _, rep in rows) else 0
        rep = run_flow(cfg, target=args.target, design=args.design, out_dir=args.out,
                       freq_mhz=args.freq, synth_opts=args.synth_opts, place_and_route=not args.no_pnr,
                       seed=args.seed, config_label=label,
                       route_timeout_min=args.route_timeout, router=args.router,
                       placer=args.placer, pnr_opts=args.pnr_opts,
                       pnr_settings=args.pnr_settings)
    except FlowError as e:
        raise UserError(str(e)) from None
    print()
    print(json.dumps(rep, indent=2, sort_keys=True) if args.json else format_report(rep))
    return 0


def _series_key(args) -> str:
    """Which section of the --md file a sweep owns (same key: replaced)."""
    src = args.preset or args.config or "fpga"
    return (f"{src}|{args.design}|{args.target}|{'synth' if args.no_pnr else 'pnr'}"
            f"|{args.freq:g}|{args.synth_opts}")


def _command_line(args) -> str:
    parts = ["salo synth"]
    if args.config:
        parts += ["--config", args.config]
    if args.preset:
        parts += ["--preset", args.preset]
    parts += ["--target", args.target, "--design", args.design, "--freq", f"{args.freq:g}"]
    if args.synth_opts:
        parts += ["--synth-opts", repr(args.synth_opts)]
    if args.route_timeout:
        parts += ["--route-timeout", f"{args.route_timeout:g}"]
    from fpga.flow import DEFAULT_PLACER, DEFAULT_PNR_OPTS, DEFAULT_PNR_SETTINGS, DEFAULT_ROUTER
    if args.router != DEFAULT_ROUTER:
        parts += ["--router", args.router]
    if args.placer != DEFAULT_PLACER:
        parts += ["--placer", args.placer]
    if args.pnr_opts != DEFAULT_PNR_OPTS:
        parts.append(f"--pnr-opts={shlex.quote(args.pnr_opts)}")
    if args.pnr_settings != DEFAULT_PNR_SETTINGS:
        parts.append(f"--pnr-settings={shlex.quote(args.pnr_settings)}")
    if args.no_pnr:
        parts.append("--no-pnr")
    parts += ["--sweep", ",".join(f"{r}x{c}" for r, c in args.sweep), "--md", args.md]
    return " ".join(parts)
