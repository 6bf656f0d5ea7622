"""``salo show``: draw a pattern's mask and how the schedule tiles it."""

from __future__ import annotations

from sim.cli_support import add_config_args, add_pattern_args, config_for, load_pattern_args

#: largest image side in pixels; bigger masks are max-pooled down
MAX_PIXELS = 1024


def _pool(img, factor):
    """Max-pool a 2D array by ``factor`` (pads with zeros)."""
    import numpy as np
    if factor <= 1:
        return img
    n0, n1 = (-(-s // factor) * factor for s in img.shape)
    pad = np.zeros((n0, n1), dtype=img.dtype)
    pad[:img.shape[0], :img.shape[1]] = img
    return pad.reshape(n0 // factor, factor, n1 // factor, factor).max(axis=(1, 3))


def register(sub):
    p = sub.add_parser(
        "show", help="draw the mask and its tiling (PNG)",
        description="Draw PATTERN's mask in token order and, in the scheduler's position "
                    "order, which kind of hardware slot computes each pair (local band "
                    "passes colored by the pass index inside its tile, global columns, "
                    "random columns, global rows). Large masks are max-pooled to "
                    f"{MAX_PIXELS} pixels.")
    add_pattern_args(p)
    add_config_args(p)
    p.add_argument("-o", "--output", required=True, metavar="pattern.png")
    p.set_defaults(func=run)


def run(args):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import ListedColormap
    from sim.cli import UserError
    from scheduler.coverage import covered_pieces
    from scheduler.pattern import dense_mask_rows
    from scheduler.schedule import ScheduleError, compile_pattern
    pat, iv = load_pattern_args(args)
    cfg = config_for(args, pat, auto=True)
    try:
        s = compile_pattern(pat, cfg, iv)
    except ScheduleError as e:
        raise UserError(str(e)) from None
    N = pat.seq_len
    f = -(-N // MAX_PIXELS)
    # mask in token order, pooled in row chunks
    chunk = max(f, (1 << 24) // N // f * f)
    mask = np.concatenate([_pool(dense_mask_rows(iv, N, r, min(N, r + chunk)), f)
                           for r in range(0, N, chunk)])
    # tiling in position order: 1 = global column, 2 = random column, 3 = global row,
    # 4.. = local pass k of its tile (cycled over 6 colors)
    img = np.zeros((-(-N // f), -(-N // f)), dtype=np.int16)
    row, lo, hi, kind, kth = covered_pieces(s, detail=True)
    colors = np.where(kind == 0, 4 + kth % 6, kind)
    for r, a, b, c in zip(row.tolist(), lo.tolist(), hi.tolist(), colors.tolist()):
        img[r // f, a // f:b // f + 1] = np.maximum(img[r // f, a // f:b // f + 1], c)
    fig, ax = plt.subplots(1, 2, figsize=(13, 6.5))
    ax[0].imshow(mask, cmap="Greys", interpolation="nearest")
    ax[0].set_title(f"{pat.name}: mask (token order), {N}x{N}"
                    + (f", pooled {f}x" if f > 1 else ""))
    cmap = ListedColormap(["white", "tab:red", "tab:purple", "tab:green", "#1f77b4",
                           "#4a9bd1", "#7fbbe6", "#ff9f1c", "#ffbf69", "#cbf3f0"][:10])
    ax[1].imshow(img, cmap=cmap, vmin=0, vmax=9, interpolation="nearest")
    ax[1].set_title(f"schedule on {cfg.rows}x{cfg.cols} (position order): "
                    f"{s.passes_per_head} passes/head\nblue/orange: local passes, red: global "
                    "column, purple: random column, green: global row", fontsize=9)
    for a in ax:
        a.set_xlabel("key")
        a.set_ylabel("query")
    fig.tight_layout()
    try:
        fig.savefig(args.output, dpi=100)
    except OSError as e:
        raise UserError(f"cannot write {args.output}: {e.strerror or e}") from None
    finally:
        plt.close(fig)
    print(f"wrote {args.output}")
    return 0
