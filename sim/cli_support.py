"""Shared argument handling of ``salo mask/compile/run/show``: pattern
loading with size overrides and config selection, user errors as
:class:`sim.cli.UserError` (one clean line, exit status 2)."""

from __future__ import annotations

import dataclasses

from hw.config import PRESETS, ConfigError, load_config

__all__ = ["add_pattern_args", "add_config_args", "load_pattern_args", "config_for"]


def add_pattern_args(p, overrides: bool = True):
    """PATTERN positional plus the size overrides used for scaled-down runs."""
    p.add_argument("pattern", metavar="PATTERN",
                   help="pattern JSON file (schema v1, or a Hugging Face Longformer/BigBird "
                        "config, or a DeepSpeed sparsity config with seq_len/head_dim added)")
    if overrides:
        p.add_argument("--seq-len", type=int, metavar="N",
                       help="override seq_len (1D patterns; global tokens >= N are dropped)")
        p.add_argument("--grid", metavar="HxW",
                       help="override the grid size of a 2D pattern, e.g. 16x16")
        p.add_argument("--head-dim", type=int, metavar="D", help="override head_dim")
        p.add_argument("--heads", type=int, metavar="H", help="override the number of heads")


def add_config_args(p):
    p.add_argument("--config", metavar="CFG", help="accelerator config JSON file")
    p.add_argument("--preset", metavar="NAME",
                   help=f"named preset ({', '.join(PRESETS)}; default: small)")


def load_pattern_args(args):
    """Load PATTERN and apply overrides; (pattern, intervals)."""
    from sim.cli import UserError
    from scheduler.pattern import PatternError, load_pattern, pattern_intervals
    try:
        p = load_pattern(args.pattern)
        if getattr(args, "grid", None):
            if not p.grid:
                raise UserError("--grid given but the pattern has no 'grid'")
            try:
                h, w = (int(x) for x in args.grid.lower().split("x"))
            except ValueError:
                raise UserError(f"--grid {args.grid!r} is invalid: allowed HxW, e.g. 16x16")
            if h < 1 or w < 1:
                raise UserError(f"--grid {args.grid!r} is invalid: sizes must be >= 1")
            p = p.with_grid(h, w)
        if getattr(args, "seq_len", None) is not None:
            if p.grid:
                raise UserError("--seq-len cannot resize a grid pattern; use --grid HxW")
            if args.seq_len < 1:
                raise UserError(f"--seq-len {args.seq_len} is invalid: allowed >= 1")
            p = p.with_seq_len(args.seq_len)
        for name in ("head_dim", "heads"):
            v = getattr(args, name, None)
            if v is not None:
                if v < 1:
                    raise UserError(f"--{name.replace('_', '-')} {v} is invalid: allowed >= 1")
                p = dataclasses.replace(p, **{name: v})
        return p, pattern_intervals(p)
    except PatternError as e:
        raise UserError(f"{args.pattern}: {e}") from None


def config_for(args, pattern=None, auto: bool = False):
    """The config of --config/--preset (default small).  With ``auto`` and
    neither given, the first preset whose max_seq_len/max_head_dim fit the
    pattern is used (and said so on stderr)."""
    import sys
    from sim.cli import UserError
    try:
        if auto and pattern is not None and not args.config and not args.preset:
            for name, c in PRESETS.items():
                if c.max_seq_len >= pattern.seq_len and c.max_head_dim >= pattern.head_dim:
                    if name != "small":
                        print(f"note: the pattern (seq_len {pattern.seq_len}, head_dim "
                              f"{pattern.head_dim}) does not fit preset small; using preset "
                              f"{name}", file=sys.stderr)
                    return c
        return load_config(args.config, args.preset)
    except ConfigError as e:
        raise UserError(str(e)) from None
