"""``salo exp-accuracy``: error table of the 2**x unit for several segment counts."""

from __future__ import annotations

from hw.config import load_config


def register(sub):
    p = sub.add_parser(
        "exp-accuracy", help="print the exp unit's error against float per segment count",
        description="Evaluate the piecewise-linear 2**x unit (bit-exact model) on every "
                    "score whose integer part is inside the exponent range and print the "
                    "max and mean relative error against float64 for each segment count, "
                    "with the documented bound. Exit status 1 if a bound is exceeded.")
    p.add_argument("--config", metavar="CFG", help="accelerator config JSON file")
    p.add_argument("--preset", metavar="NAME", help="named preset (default: small)")
    p.add_argument("--segments", metavar="N", type=int, nargs="+", default=[4, 8, 16],
                   help="segment counts to evaluate (default: 4 8 16)")
    p.set_defaults(func=run)


def run(args):
    from sim.accuracy import exp_accuracy_table
    cfg = load_config(args.config, args.preset)
    rows = exp_accuracy_table(cfg, args.segments)
    print(f"exp unit accuracy, prob_frac={cfg.prob_frac}, score_frac={cfg.score_frac}, "
          f"exponents {cfg.exp_min}..{cfg.exp_max}")
    print(f"{'segments':>8}  {'inputs':>7}  {'max rel err':>11}  {'mean rel err':>12}  {'bound':>9}")
    failed = False
    for r in rows:
        ok = r.max_rel_error <= r.bound
        failed |= not ok
        print(f"{r.segments:>8}  {r.inputs:>7}  {r.max_rel_error:>11.3e}  "
              f"{r.mean_rel_error:>12.3e}  {r.bound:>9.3e}{'' if ok else '  EXCEEDED'}")
    return 1 if failed else 0
