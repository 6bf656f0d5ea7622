"""Pattern files (schema v1): parsing, validation and the exact key sets.

A pattern is turned into *strided intervals* in the original token order:
rows ``row``, keys ``lo, lo+step, ..., hi``.  Every part of the schema is a
union of such intervals (a dilated band is one interval of step D; a 2D
window is 2a+1 intervals; a random key is an interval of length one), so the
mask of a 16k-token sequence never has to exist as a dense matrix.  Causal
masking clips each interval.  :func:`dense_mask` paints the intervals when a
dense (N, N) matrix is wanted (``salo mask``, tests, the float reference).

Random choices (``random``, ``blocks.random_blocks``) are drawn once here from
numpy's PCG64 generator seeded with the pattern's seed, so the mask, the
schedule and the float reference all see the same keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["PatternError", "Pattern", "Intervals", "load_pattern", "parse_pattern",
           "pattern_intervals", "dense_mask", "dense_mask_rows", "global_token_set",
           "KNOWN_FIELDS"]


class PatternError(ValueError):
    """A pattern file problem: names the field, the value and what is allowed."""


KNOWN_FIELDS = ("seq_len", "head_dim", "heads", "window", "grid", "global_tokens", "random",
                "blocks", "spans", "causal", "name", "description", "source")


@dataclass
class Pattern:
    """A validated pattern (schema v1).  ``spans`` is an (N, 2) array or None."""
    seq_len: int
    head_dim: int
    heads: int = 1
    window: dict | None = None
    grid: dict | None = None
    global_tokens: list = field(default_factory=list)
    random: dict | None = None
    blocks: dict | None = None
    spans: np.ndarray | None = None
    causal: bool = False
    name: str = "pattern"

    @property
    def dilation(self) -> int:
        return int(self.window.get("dilation", 1)) if self.window else 1

    def with_seq_len(self, n: int) -> "Pattern":
        """A copy at sequence length ``n`` (used to scale reference workloads
        down for accuracy runs): global token indices >= n are dropped, global
        blocks past the end become the last block, spans are clipped; a grid
        pattern must be resized with :meth:`with_grid`."""
        import dataclasses
        if self.grid:
            raise PatternError("a grid pattern is resized with with_grid(height, width)")
        sp = None
        if self.spans is not None and n > self.seq_len:
            raise PatternError(f"cannot grow a pattern with spans from seq_len {self.seq_len} "
                               f"to {n}: allowed seq_len <= {self.seq_len}")
        if self.spans is not None:
            sp = np.minimum(self.spans[:n], n - 1)
        blocks = self.blocks
        if blocks:
            # keep the first and last global blocks' roles: blocks past the end map to
            # the new last block (BigBird's ITC makes the last block global)
            nb = -(-n // blocks["block"])
            gb = sorted({min(b, nb - 1) for b in blocks["global_blocks"]})
            blocks = dict(blocks, global_blocks=gb,
                          random_blocks=min(blocks["random_blocks"], nb))
        return dataclasses.replace(self, seq_len=n,
                                   global_tokens=[g for g in self.global_tokens if g < n],
                                   spans=sp, blocks=blocks)

    def with_grid(self, height: int, width: int) -> "Pattern":
        """A copy of a grid pattern on a ``height`` x ``width`` image."""
        import dataclasses
        g = dict(self.grid, height=height, width=width)
        return dataclasses.replace(self, grid=g, seq_len=height * width + len(self.global_tokens))


def _need(cond, name, value, allowed):
    if not cond:
        raise PatternError(f"pattern field '{name}' = {value!r} is invalid: allowed {allowed}")


def _int(d, key, prefix, lo=None, hi=None, default=None):
    name = f"{prefix}{key}"
    if key not in d:
        if default is not None:
            return default
        raise PatternError(f"pattern field '{name}' is missing (required: an integer"
                           + (f" >= {lo}" if lo is not None else "") + ")")
    v = d[key]
    _need(isinstance(v, int) and not isinstance(v, bool), name, v, "an integer")
    if lo is not None and hi is not None:
        _need(lo <= v <= hi, name, v, f"{lo}..{hi}")
    elif lo is not None:
        _need(v >= lo, name, v, f"an integer >= {lo}")
    return v


def _obj(d, key):
    v = d.get(key)
    if v is None:
        return None
    _need(isinstance(v, dict), key, v, "a JSON object")
    return v


def _no_unknown(d, known, prefix):
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise PatternError(f"unknown pattern field '{prefix}{unknown[0]}'; allowed here: "
                           + ", ".join(known))


def parse_pattern(data: dict, base_dir: Path | str = ".") -> Pattern:
    """Validate a schema-v1 dict (or a Hugging Face / DeepSpeed config, see
    :mod:`scheduler.importers`) and return a :class:`Pattern`."""
    from .importers import detect_and_convert
    _need(isinstance(data, dict), "(top level)", type(data).__name__, "a JSON object")
    data = detect_and_convert(data)
    _no_unknown(data, KNOWN_FIELDS, "")
    N = _int(data, "seq_len", "", 1, 1 << 20)
    d = _int(data, "head_dim", "", 1, 4096)
    H = _int(data, "heads", "", 1, 1 << 12, default=1)
    p = Pattern(seq_len=N, head_dim=d, heads=H, name=str(data.get("name", "pattern")))
    win, grid = _obj(data, "window"), _obj(data, "grid")
    if win is not None and grid is not None:
        raise PatternError("pattern fields 'window' and 'grid' are both given: allowed one "
                           "of them (a grid replaces the 1D window)")
    if win is not None:
        _no_unknown(win, ("left", "right", "dilation"), "window.")
        p.window = {"left": _int(win, "left", "window.", 0, N),
                    "right": _int(win, "right", "window.", 0, N),
                    "dilation": _int(win, "dilation", "window.", 1, N, default=1)}
    g = data.get("global_tokens", [])
    _need(isinstance(g, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in g),
          "global_tokens", g, "a list of integer token indices")
    for x in g:
        _need(0 <= x < N, "global_tokens", x, f"token indices 0..seq_len-1 = 0..{N - 1}")
    _need(len(set(g)) == len(g), "global_tokens", g, "distinct indices")
    p.global_tokens = sorted(g)
    if grid is not None:
        _no_unknown(grid, ("height", "width", "radius_h", "radius_w"), "grid.")
        h = _int(grid, "height", "grid.", 1)
        w = _int(grid, "width", "grid.", 1)
        a = _int(grid, "radius_h", "grid.", 0)
        b = _int(grid, "radius_w", "grid.", 0)
        _need(h * w + len(g) == N, "grid", f"{h}x{w}",
              f"height*width + len(global_tokens) == seq_len; here {h}*{w}+{len(g)} = "
              f"{h * w + len(g)} != {N}")
        _need(p.global_tokens == list(range(len(g))), "global_tokens", g,
              f"in grid mode the first tokens 0..{len(g) - 1}")
        p.grid = {"height": h, "width": w, "radius_h": a, "radius_w": b}
    rnd = _obj(data, "random")
    if rnd is not None:
        _no_unknown(rnd, ("keys_per_query", "seed"), "random.")
        p.random = {"keys_per_query": _int(rnd, "keys_per_query", "random.", 0, N),
                    "seed": _int(rnd, "seed", "random.", 0, default=0)}
    blk = _obj(data, "blocks")
    if blk is not None:
        _no_unknown(blk, ("block", "window_blocks", "global_blocks", "random_blocks", "seed"),
                    "blocks.")
        B = _int(blk, "block", "blocks.", 1, N)
        nb = -(-N // B)
        gb = blk.get("global_blocks", [])
        _need(isinstance(gb, list) and all(isinstance(x, int) and 0 <= x < nb for x in gb),
              "blocks.global_blocks", gb, f"a list of block indices 0..{nb - 1}")
        p.blocks = {"block": B, "window_blocks": _int(blk, "window_blocks", "blocks.", 0, 2 * nb,
                                                      default=0),
                    "global_blocks": sorted(set(gb)),
                    "random_blocks": _int(blk, "random_blocks", "blocks.", 0, nb, default=0),
                    "seed": _int(blk, "seed", "blocks.", 0, default=0)}
    sp = data.get("spans")
    if sp is not None:
        if isinstance(sp, list):
            arr = np.asarray(sp)
        else:
            _need(isinstance(sp, str), "spans", sp, "a path to an (N, 2) .npy file or a list")
            path = Path(base_dir) / sp
            if not path.is_file():
                raise PatternError(f"pattern field 'spans' = {sp!r} is invalid: file {path} "
                                   "does not exist")
            arr = np.load(path)
        _need(arr.shape == (N, 2) and np.issubdtype(arr.dtype, np.integer), "spans",
              f"array of shape {arr.shape} dtype {arr.dtype}", f"integers of shape ({N}, 2)")
        bad = np.flatnonzero((arr[:, 0] > arr[:, 1]) | (arr[:, 0] < 0) | (arr[:, 1] >= N))
        _need(bad.size == 0, f"spans[{bad[0] if bad.size else 0}]",
              arr[bad[0]].tolist() if bad.size else None, f"0 <= lo <= hi <= {N - 1}")
        p.spans = arr.astype(np.int64)
    c = data.get("causal", False)
    _need(isinstance(c, bool), "causal", c, "true or false")
    p.causal = c
    has_part = any([p.window, p.grid, p.global_tokens, p.random, p.blocks, p.spans is not None])
    if not has_part:
        raise PatternError("pattern has no attention part: give at least one of window, grid, "
                           "global_tokens, random, blocks, spans")
    return p


def load_pattern(path) -> Pattern:
    """Read and validate a pattern JSON file (clear :class:`PatternError` on problems)."""
    path = Path(path)
    if not path.is_file():
        raise PatternError(f"pattern file {str(path)!r} does not exist")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise PatternError(f"pattern file {str(path)!r} is not valid JSON: {e}") from None
    p = parse_pattern(data, path.parent)
    if p.name == "pattern":
        p.name = path.stem
    return p


# ------------------------------------------------------------------ intervals
@dataclass
class Intervals:
    """Strided key intervals: query ``row`` attends keys lo, lo+step, ..., hi.
    ``part`` names the pattern part each interval came from (for the random
    columns, which carry only the ``random`` part's keys)."""
    row: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    step: np.ndarray
    part: np.ndarray

    def __len__(self):
        return len(self.row)

    def select(self, sel) -> "Intervals":
        return Intervals(self.row[sel], self.lo[sel], self.hi[sel], self.step[sel],
                         self.part[sel])


#: pattern parts; PART_GLOBAL_KEY marks the "every query attends the global key" intervals
PART_WINDOW, PART_GRID, PART_GLOBAL, PART_RANDOM, PART_BLOCKS, PART_SPANS, PART_GLOBAL_KEY = range(7)


def _runs(idx: np.ndarray):
    """Sorted distinct integers -> (starts, ends) of maximal consecutive runs."""
    if idx.size == 0:
        return idx, idx
    br = np.flatnonzero(np.diff(idx) != 1)
    return idx[np.r_[0, br + 1]], idx[np.r_[br, idx.size - 1]]


def random_keys(n: int, r: int, seed: int) -> np.ndarray:
    """(n, r) distinct random keys per query from PCG64(seed); r <= n."""
    rng = np.random.default_rng(seed)
    if r == 0:
        return np.zeros((n, 0), dtype=np.int64)
    if 4 * r <= n:
        # few keys per row: draw with replacement, redraw the repeats (each round
        # fixes most of them; the result is still uniform without replacement)
        out = rng.integers(0, n, (n, r))
        while True:
            srt = np.sort(out, axis=1)
            dup_rows = np.flatnonzero((srt[:, 1:] == srt[:, :-1]).any(axis=1))
            if dup_rows.size == 0:
                return out
            sub = out[dup_rows]
            o = np.argsort(sub, axis=1, kind="stable")
            ss = np.take_along_axis(sub, o, axis=1)
            rep = np.zeros(sub.shape, dtype=bool)
            rep[:, 1:] = ss[:, 1:] == ss[:, :-1]          # later copies of a value
            redo = np.zeros(sub.shape, dtype=bool)
            np.put_along_axis(redo, o, rep, axis=1)
            sub[redo] = rng.integers(0, n, int(redo.sum()))
            out[dup_rows] = sub
    # many keys per row: a random permutation prefix per row, in row chunks so
    # memory stays O(chunk * n)
    out = np.empty((n, r), dtype=np.int64)
    chunk = max(1, (1 << 22) // n)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        out[s:e] = np.argpartition(rng.random((e - s, n)), r - 1, axis=1)[:, :r] \
            if r < n else np.tile(np.arange(n), (e - s, 1))
    return out


def block_random(p: Pattern) -> np.ndarray:
    """(num_blocks, random_blocks) random key blocks per query block (BigBird):
    drawn from the blocks outside the query block's window and the global blocks
    when enough exist, else from all blocks."""
    b = p.blocks
    N, B = p.seq_len, b["block"]
    nb = -(-N // B)
    r = b["random_blocks"]
    rng = np.random.default_rng(b["seed"])
    wl, wr = b["window_blocks"] // 2, (b["window_blocks"] - 1) // 2 if b["window_blocks"] else 0
    out = np.zeros((nb, r), dtype=np.int64)
    for qb in range(nb):
        excl = set(range(qb - wl, qb + wr + 1)) | set(b["global_blocks"])
        cand = np.array([x for x in range(nb) if x not in excl])
        if cand.size < r:
            cand = np.arange(nb)
        out[qb] = rng.choice(cand, size=r, replace=False) if r else out[qb]
    return out


def pattern_intervals(p: Pattern) -> Intervals:
    """All (strided) key intervals of the pattern, causal applied, in the
    original token order.  Intervals may overlap (the mask is their union)."""
    N = p.seq_len
    z = np.zeros(0, dtype=np.int64)
    rows, los, his, steps, parts = [z], [z], [z], [z], [np.zeros(0, dtype=np.int8)]

    def add(r, lo, hi, step, part):
        r, lo, hi = (np.asarray(x, dtype=np.int64).ravel() for x in np.broadcast_arrays(r, lo, hi))
        keep = lo <= hi
        rows.append(r[keep]); los.append(lo[keep]); his.append(hi[keep])
        steps.append(np.broadcast_to(np.int64(step), r[keep].shape))
        parts.append(np.full(int(keep.sum()), part, dtype=np.int8))

    i = np.arange(N, dtype=np.int64)
    if p.window:
        wl, wr, D = p.window["left"], p.window["right"], p.dilation
        add(i, i - D * np.minimum(wl, i // D), i + D * np.minimum(wr, (N - 1 - i) // D), D,
            PART_WINDOW)
    g = np.asarray(p.global_tokens, dtype=np.int64)
    if p.grid:
        h, w, a, b = (p.grid[k] for k in ("height", "width", "radius_h", "radius_w"))
        g0 = len(g)
        t = np.arange(h * w, dtype=np.int64)
        r, c = t // w, t % w
        for dr in range(-a, a + 1):
            rr = r + dr
            ok = (rr >= 0) & (rr < h)
            add((g0 + t)[ok], (g0 + rr * w + np.maximum(0, c - b))[ok],
                (g0 + rr * w + np.minimum(w - 1, c + b))[ok], 1, PART_GRID)
    gq = set(p.global_tokens)
    if p.blocks:
        bl = p.blocks
        B = bl["block"]
        qb = i // B
        if bl["window_blocks"]:
            wl, wr = bl["window_blocks"] // 2, (bl["window_blocks"] - 1) // 2
            add(i, np.maximum(0, qb - wl) * B, np.minimum(N, (qb + wr + 1) * B) - 1, 1,
                PART_BLOCKS)
        for gb in bl["global_blocks"]:
            gq.update(range(gb * B, min(N, (gb + 1) * B)))
        if bl["random_blocks"]:
            rb = block_random(p)[qb]                     # (N, r)
            add(np.repeat(i, rb.shape[1]), (rb * B).ravel(),
                np.minimum(N, (rb + 1) * B).ravel() - 1, 1, PART_BLOCKS)
    if gq:
        gall = np.array(sorted(gq), dtype=np.int64)
        add(gall, 0, N - 1, 1, PART_GLOBAL)                 # global queries: every key
        for s, e in zip(*_runs(gall)):                      # every query: the global keys
            add(i, s, e, 1, PART_GLOBAL_KEY)
    if p.random and p.random["keys_per_query"]:
        rk = random_keys(N, p.random["keys_per_query"], p.random["seed"])
        add(np.repeat(i, rk.shape[1]), rk.ravel(), rk.ravel(), 1, PART_RANDOM)
    if p.spans is not None:
        add(i, p.spans[:, 0], p.spans[:, 1], 1, PART_SPANS)
    iv = Intervals(np.concatenate(rows), np.concatenate(los), np.concatenate(his),
                   np.concatenate(steps).astype(np.int64), np.concatenate(parts))
    if p.causal:
        # keep keys k <= row: the last kept key is the largest lo + m*step <= row
        hi = np.where(iv.hi > iv.row, iv.lo + ((iv.row - iv.lo) // iv.step) * iv.step, iv.hi)
        iv = Intervals(iv.row, iv.lo, hi, iv.step, iv.part)
        iv = iv.select(iv.lo <= iv.hi)
    counts = np.bincount(iv.row, minlength=N)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise PatternError(f"query {int(empty[0])} attends no key ({empty.size} such queries"
                           f"{', e.g. ' + str(empty[:5].tolist()) if empty.size > 1 else ''}): "
                           "allowed only patterns where every query has at least one key")
    return iv


def dense_mask_rows(iv: Intervals, n: int, r0: int, r1: int) -> np.ndarray:
    """Rows r0..r1-1 of the dense mask, painted from the intervals."""
    sel = (iv.row >= r0) & (iv.row < r1)
    row, lo, hi, step = iv.row[sel] - r0, iv.lo[sel], iv.hi[sel], iv.step[sel]
    m = np.zeros((r1 - r0, n), dtype=bool)
    one = step == 1
    # step-1 intervals: difference array along each row, then cumsum
    diff = np.zeros((r1 - r0, n + 1), dtype=np.int32)
    np.add.at(diff, (row[one], lo[one]), 1)
    np.add.at(diff, (row[one], hi[one] + 1), -1)
    m |= np.cumsum(diff, axis=1)[:, :n] > 0
    for r, a, b, s in zip(*(x[~one].tolist() for x in (row, lo, hi, step))):
        m[r, a:b + 1:s] = True
    return m


def dense_mask(p: Pattern, iv: Intervals | None = None) -> np.ndarray:
    """The (N, N) bool mask: mask[i, k] is True when query i attends key k."""
    iv = pattern_intervals(p) if iv is None else iv
    N = p.seq_len
    chunk = max(1, (1 << 24) // N)
    return np.concatenate([dense_mask_rows(iv, N, r, min(N, r + chunk))
                           for r in range(0, N, chunk)])


def global_token_set(p: Pattern) -> list[int]:
    """Tokens that attend every key and that every query attends: the
    ``global_tokens`` plus the tokens of BigBird global blocks."""
    g = set(p.global_tokens)
    if p.blocks:
        B = p.blocks["block"]
        for gb in p.blocks["global_blocks"]:
            g.update(range(gb * B, min(p.seq_len, (gb + 1) * B)))
    return sorted(g)
