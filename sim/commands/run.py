"""``salo run``: compile, execute on a backend, compare with the float reference."""

from __future__ import annotations

from sim.cli_support import add_config_args, add_pattern_args, config_for, load_pattern_args


def register(sub):
    p = sub.add_parser(
        "run", help="run attention for a pattern on a backend and check it",
        description="Compile PATTERN, run it on Q/K/V (float arrays of shape (heads, N, d) in "
                    "natural units; random N(0,1) if omitted) and write the outputs. The tool "
                    "folds log2(e)/sqrt(d) into q, quantizes with per-head scales, runs, "
                    "dequantizes, and prints the relative RMS error against the float64 "
                    "reference.")
    add_pattern_args(p)
    add_config_args(p)
    p.add_argument("--q", metavar="Q.npy")
    p.add_argument("--k", metavar="K.npy")
    p.add_argument("--v", metavar="V.npy")
    p.add_argument("--seed", type=int, default=0, help="seed of random inputs (default 0)")
    p.add_argument("-o", "--output", metavar="OUT.npy", help="output .npy file")
    p.add_argument("--jobs", type=int, default=None, metavar="J",
                   help="simulate heads in J processes (default: one per CPU)")
    p.add_argument("--backend", choices=("model", "rtl", "fpga"), default="model",
                   help="model: bit-exact functional simulator (default); rtl: Verilator; "
                        "fpga: a board running the salo bitstream over its serial port "
                        "(needs --port and pyserial; see docs/host-link.md)")
    p.add_argument("--port", metavar="DEV",
                   help="serial device of the board for --backend fpga, e.g. /dev/ttyUSB0")
    p.add_argument("--baud", type=int, default=None, metavar="N",
                   help="baud rate of --port (default 115200, as the bitstream is built)")
    p.set_defaults(func=run)


def run(args):
    import time
    import numpy as np
    from sim.cli import UserError
    from scheduler.schedule import ScheduleError, compile_pattern
    from sim.driver import float_reference, run_functional
    from sim.reference import relative_rms_error
    if args.backend == "fpga" and not args.port:
        raise UserError("--backend fpga needs --port DEV (the board's serial device, e.g. "
                        "/dev/ttyUSB0)")
    if args.backend != "fpga" and (args.port or args.baud):
        raise UserError("--port/--baud only apply to --backend fpga")
    if args.baud is not None and args.baud <= 0:
        raise UserError(f"--baud {args.baud} is invalid: allowed > 0")
    pat, iv = load_pattern_args(args)
    cfg = config_for(args, pat, auto=True)
    shape = (pat.heads, pat.seq_len, pat.head_dim)
    given = [args.q, args.k, args.v]
    if any(given) and not all(given):
        raise UserError("give all of --q, --k, --v, or none (random inputs)")
    if all(given):
        arrs = []
        for name, path in zip("qkv", given):
            try:
                a = np.load(path)
            except (OSError, ValueError) as e:
                raise UserError(f"--{name} {path}: cannot read: {e}") from None
            if a.shape != shape:
                raise UserError(f"--{name} {path}: shape {a.shape}, expected (heads, N, d) = "
                                f"{shape}")
            if not np.issubdtype(a.dtype, np.number) or not np.isfinite(a).all():
                raise UserError(f"--{name} {path}: must hold finite numbers")
            arrs.append(a.astype(np.float64))
        q, k, v = arrs
    else:
        rng = np.random.default_rng(args.seed)
        q, k, v = (rng.standard_normal(shape) for _ in range(3))
    try:
        s = compile_pattern(pat, cfg, iv)
    except ScheduleError as e:
        raise UserError(str(e)) from None
    t0 = time.perf_counter()
    if args.jobs is not None and args.jobs < 1:
        raise UserError(f"--jobs {args.jobs} is invalid: allowed >= 1")
    if args.backend == "fpga":
        from fpga.host import LinkError
        from sim.api import run_attention
        print(f"{pat.name}: running on the board at {args.port} ({cfg.describe()} "
              f"[{cfg.hash()}])", flush=True)
        try:
            res = run_attention(q, k, v, pat, config=cfg, backend="fpga", port=args.port,
                                baud=args.baud,
                                progress=lambda line: print("  " + line, flush=True))
        except LinkError as e:
            raise UserError(f"--backend fpga: {e}") from None
        out, counters = res.out, res.counters
    elif args.backend == "rtl":
        # the same path as the Python API (sim.api.run_attention)
        from sim.api import run_attention
        print(f"{pat.name}: building/running the RTL of {cfg.describe()} [{cfg.hash()}] "
              f"on Verilator (the first build of a config takes minutes)", flush=True)
        res = run_attention(q, k, v, pat, config=cfg, backend="rtl",
                            progress=lambda line: print("  " + line, flush=True))
        out, counters = res.out, res.counters
    else:
        out = run_functional(s, q, k, v, workers=args.jobs)
    dt = time.perf_counter() - t0
    ref = float_reference(q, k, v, iv, pat.seq_len)
    err = relative_rms_error(out, ref)
    if args.output:
        try:
            np.save(args.output, out)
        except OSError as e:
            raise UserError(f"cannot write {args.output}: {e.strerror or e}") from None
    print(f"{pat.name}: N={pat.seq_len} d={pat.head_dim} heads={pat.heads} on "
          f"{cfg.describe()} [{cfg.hash()}]")
    from scheduler.cycles import estimate_cycles
    if args.backend in ("rtl", "fpga"):
        c = counters
        print(f"  backend {args.backend}: {c['passes']} passes in {c['cycles_total']} cycles "
              f"({c['cycles_busy']} busy, {c['cycles_stall_in']} stalled on input, "
              f"{c['cycles_stall_out']} on output), {dt:.1f} s wall; outputs bit-exact "
              f"with the functional simulator")
        print(f"  utilization (useful MACs / (PEs x cycles)): {c['utilization']:.3f} "
              f"({c['useful_macs']} MACs, {cfg.num_pes} PEs; model estimate "
              f"{estimate_cycles(s)['cycles']} cycles)")
    else:
        from hw.isa import Opcode
        # counted as the accelerator's `passes` counter does: each STORE_G
        # closes its global row with one more pass
        n_pass = s.passes_per_head * pat.heads
        n_close = int((s.program.opcode == Opcode.STORE_G.value).sum())
        print(f"  backend model: {n_pass + n_close} passes ({n_pass} PASS + {n_close} STORE_G) "
              f"simulated in {dt:.2f} s (estimated {estimate_cycles(s)['cycles']} accelerator "
              f"cycles)")
    print(f"  relative RMS error vs float reference: {err:.4%}")
    if args.output:
        print(f"  wrote {args.output}")
    return 0
