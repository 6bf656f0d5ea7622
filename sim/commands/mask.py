"""``salo mask``: write the boolean mask the tool computes for a pattern."""

from __future__ import annotations

from sim.cli_support import add_pattern_args, load_pattern_args


def register(sub):
    p = sub.add_parser(
        "mask", help="write the (N, N) bool mask of a pattern (.npy)",
        description="Write the (seq_len, seq_len) boolean mask the tool computes for PATTERN "
                    "(mask[i, k]: query i attends key k), including its seeded random choices.")
    add_pattern_args(p)
    p.add_argument("-o", "--output", required=True, metavar="MASK.npy", help="output .npy file")
    p.set_defaults(func=run)


def run(args):
    import numpy as np
    from scheduler.pattern import dense_mask
    pat, iv = load_pattern_args(args)
    m = dense_mask(pat, iv)
    from sim.cli import UserError
    try:
        np.save(args.output, m)
    except OSError as e:
        raise UserError(f"cannot write {args.output}: {e.strerror or e}") from None
    print(f"{args.output}: {m.shape[0]}x{m.shape[1]} mask, {int(m.sum())} pairs "
          f"({m.mean():.2%} dense)")
    return 0
