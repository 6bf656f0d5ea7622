"""``salo compile``: pattern -> program.bin, program.asm, plan.json, masks.npz."""

from __future__ import annotations

from sim.cli_support import add_config_args, add_pattern_args, config_for, load_pattern_args


def register(sub):
    p = sub.add_parser(
        "compile", help="compile a pattern into a program and data plan",
        description="Schedule PATTERN on the accelerator, prove that every mask pair is "
                    "computed exactly once, and write DIR/program.bin, DIR/program.asm, "
                    "DIR/plan.json (data plan, output permutation, cycle estimate), "
                    "DIR/masks.bin (packed mask records) and DIR/masks.npz (the same as arrays).")
    add_pattern_args(p)
    add_config_args(p)
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory")
    p.add_argument("--stripes", type=int, default=1, metavar="S",
                   help="striped placement: order tokens by index mod S (ignored for dilated "
                        "windows, which use their dilation)")
    p.add_argument("--host-words", type=int, default=None, metavar="W",
                   help="host stream width in data words per cycle for the cycle estimate")
    p.set_defaults(func=run)


def run(args):
    import time
    from sim.cli import UserError
    from scheduler.coverage import check_coverage
    from scheduler.plan import write_schedule
    from scheduler.schedule import ScheduleError, compile_pattern
    t0 = time.perf_counter()
    pat, iv = load_pattern_args(args)
    cfg = config_for(args)
    if args.stripes < 1:
        raise UserError(f"--stripes {args.stripes} is invalid: allowed >= 1")
    try:
        s = compile_pattern(pat, cfg, iv, stripes=args.stripes)
    except ScheduleError as e:
        raise UserError(str(e)) from None
    cov = check_coverage(s, iv)
    try:
        cyc = write_schedule(s, args.output, cov, args.host_words)
    except OSError as e:
        raise UserError(f"cannot write into {args.output}: {e.strerror or e}") from None
    dt = time.perf_counter() - t0
    print(f"{pat.name}: N={pat.seq_len} d={pat.head_dim} heads={pat.heads} on {cfg.describe()}")
    util = cov["pairs"] / max(1, s.passes_per_head * cfg.rows * cfg.row_pes)
    print(f"  {len(s.program)} instructions, {s.passes_per_head} passes/head, "
          f"{cov['pairs']} pairs/head covered exactly once "
          f"({util:.1%} of the local rows' PEs busy)")
    print(f"  estimated {cyc['cycles']} cycles ({cyc['pass_cycles']} in passes, "
          f"{cyc['load_stall_cycles']} load stalls, {cyc['fill_drain_cycles']} fill/drain)")
    print(f"  wrote {args.output}/program.bin, program.asm, plan.json, masks.bin, masks.npz in {dt:.2f} s")
    return 0
