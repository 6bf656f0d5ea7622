"""The one accelerator configuration object.

Every geometry and width in the project comes from :class:`AcceleratorConfig`:
elaboration (``hw``), the bit-exact models (``sim``), the testbenches and the
scheduler.  Derived widths are properties here, so no width is written twice.

Number formats (see ``docs/arithmetic.md`` for the full arithmetic contract):

* Q, K, V: signed ``data_width`` bits, ``data_frac`` fraction bits.
* score accumulator: signed ``acc_width`` bits, ``score_frac = 2*data_frac``
  fraction bits (the exact product format), saturating.
* probability p = 2**s: unsigned mantissa ``prob_width`` bits with
  ``prob_frac`` fraction bits (normalized to [1, 2)) and a signed exponent of
  ``exp_width`` bits.
* outputs: signed ``out_width`` bits with ``out_frac`` fraction bits; the
  integer part must hold V's range (an output is a convex combination of V
  rows), extra fraction bits keep the rounding of small averages off the
  error budget.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, fields
from pathlib import Path

__all__ = ["AcceleratorConfig", "ConfigError", "PRESETS", "preset", "load_config"]


class ConfigError(ValueError):
    """A configuration field has a value outside what the generator supports."""


def _clog2(n: int) -> int:
    """Bits needed to count ``n`` distinct values (ceil(log2(n)), at least 0)."""
    return max(0, (n - 1).bit_length())


# Largest integer width the numpy models may hold in int64 without overflow
# (one bit of headroom for sums of two operands before saturation).
_INT64_SAFE_BITS = 62


@dataclass(frozen=True)
class AcceleratorConfig:
    """Parameters of one generated accelerator.

    Frozen and validated on construction; derive variants with
    :func:`dataclasses.replace` (validation runs again).
    """

    #: local PE rows R: queries per tile
    rows: int = 4
    #: local PE columns C: keys per row per pass
    cols: int = 4
    #: global query rows Gr below the array (0 = absent)
    global_rows: int = 1
    #: global key columns Gc at the end of every row (0 = absent)
    global_cols: int = 1
    #: random key columns per row, each with a private key port (0 = absent)
    random_cols: int = 0
    #: largest head size d a pass can use
    max_head_dim: int = 16
    #: largest sequence length the index and merge widths are sized for
    max_seq_len: int = 4096
    #: Q/K/V/output word width (signed)
    data_width: int = 9
    #: Q/K/V/output fraction bits
    data_frac: int = 4
    #: score accumulator width (signed, saturating); fraction bits = 2*data_frac
    acc_width: int = 18
    #: probability mantissa width (unsigned)
    prob_width: int = 9
    #: probability mantissa fraction bits; mantissas are normalized to [1, 2)
    prob_frac: int = 7
    #: probability exponent width (signed)
    exp_width: int = 5
    #: piecewise-linear segments of 2**f on [0, 1) (a power of two)
    exp_segments: int = 4
    #: output word width (signed); wider than V so that small averages of V
    #: rows are not rounded to V's coarse step
    out_width: int = 16
    #: output fraction bits (>= data_frac)
    out_frac: int = 11
    #: K/V buffer size in key positions (a ring; the top rounds it up to
    #: ``kv_capacity``).  The Q buffer needs no field: the ISA's LOAD_Q double
    #: buffer is two tiles of ``rows`` queries.
    kv_buffer_rows: int = 128
    #: output buffer depth in rows (whole tiles of ``rows``; at least two)
    out_buffer_rows: int = 64
    #: quotient bits per cycle of the merge units' reciprocal divider (one
    #: subtract-compare of the accumulated sum each): 2 halves the
    #: normalization time, 1 halves its logic depth (FPGA timing)
    div_steps: int = 2
    #: a register stage in front of each local row's global/random-column
    #: PEs (``hw.array.column_stage``): 1 cycle more per local row (FPGA
    #: timing: those PEs take their keys from the broadcast ports and are
    #: placed away from the local PEs), 0 for none
    column_stage: int = 0
    #: a register stage between the partial's shift and the add of every
    #: PE's weighted-sum step (``hw.pe.PE``'s ``wsum_stage``): the
    #: weighted-sum chain takes 2 cycles per PE instead of 1 and each PE
    #: delays its value elements to match (FPGA timing: the shift and the
    #: add of the left partial no longer share a cycle), 0 for none.
    #: Head dims must then be at least the PEs of a row chain minus 2
    #: (``hw.top.top_geometry``'s ``min_head_dim``)
    wsum_stage: int = 0

    # ------------------------------------------------------------------ checks
    def __post_init__(self):
        def need(name, ok, allowed):
            if not ok:
                raise ConfigError(
                    f"config field '{name}' = {getattr(self, name)!r} is invalid: "
                    f"allowed {allowed}")

        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, int) or isinstance(v, bool):
                raise ConfigError(
                    f"config field '{f.name}' = {v!r} is invalid: allowed an integer")
        need("rows", 1 <= self.rows <= 256, "1..256")
        need("cols", 1 <= self.cols <= 256, "1..256")
        need("global_rows", 0 <= self.global_rows <= 16, "0..16")
        need("global_cols", 0 <= self.global_cols <= 16, "0..16")
        need("random_cols", 0 <= self.random_cols <= 16, "0..16")
        need("max_head_dim", 1 <= self.max_head_dim <= 1024, "1..1024")
        need("max_seq_len", max(self.rows, self.cols) <= self.max_seq_len <= 1 << 20,
             f"max(rows, cols)={max(self.rows, self.cols)}..{1 << 20}")
        need("data_width", 2 <= self.data_width <= 24, "2..24")
        need("data_frac", 0 <= self.data_frac < self.data_width,
             f"0..data_width-1 = 0..{self.data_width - 1}")
        need("exp_segments", self.exp_segments in (1, 2, 4, 8, 16, 32, 64),
             "a power of two from 1 to 64")
        need("data_frac", 2 * self.data_frac >= _clog2(self.exp_segments),
             f"at least {(_clog2(self.exp_segments) + 1) // 2} so that the score "
             f"fraction (2*data_frac bits) can index {self.exp_segments} exp segments")
        need("acc_width", 2 * self.data_width - 1 <= self.acc_width <= _INT64_SAFE_BITS,
             f"2*data_width-1={2 * self.data_width - 1}..{_INT64_SAFE_BITS}")
        need("acc_width", self.acc_width > self.score_frac,
             f"more than 2*data_frac={self.score_frac} (an integer part is needed)")
        need("exp_width", 2 <= self.exp_width <= 8, "2..8")
        need("prob_frac", 1 <= self.prob_frac <= 30, "1..30")
        need("prob_width", self.prob_frac + 1 <= self.prob_width <= 32,
             f"prob_frac+1={self.prob_frac + 1}..32 (mantissas lie in [1, 2))")
        need("out_frac", self.data_frac <= self.out_frac <= 30,
             f"data_frac={self.data_frac}..30 (outputs keep at least V's precision)")
        need("out_width", self.out_width - self.out_frac >= self.data_width - self.data_frac
             and self.out_width <= 32,
             f"out_frac+{self.data_width - self.data_frac}={self.out_frac + self.data_width - self.data_frac}"
             f"..32 (the integer part must hold V's range)")
        for name in ("kv_buffer_rows", "out_buffer_rows"):
            need(name, 2 <= getattr(self, name) <= 1 << 16, "2..65536")
        need("out_buffer_rows", self.out_buffer_rows >= 2 * self.rows,
             f"at least 2*rows={2 * self.rows} (two output tiles)")
        need("kv_buffer_rows", self.kv_buffer_rows >= self.key_slots,
             f"at least rows+cols-1={self.key_slots} (one pass)")
        need("div_steps", 1 <= self.div_steps <= 8, "1..8")
        need("column_stage", self.column_stage in (0, 1), "0 or 1")
        need("wsum_stage", self.wsum_stage in (0, 1), "0 or 1")
        need("max_head_dim", self.max_head_dim >= self.min_head_dim_wsum,
             f"at least {self.min_head_dim_wsum} with wsum_stage=1 (the PEs of a row "
             f"chain minus 2: a row end's last element must reach its merge unit no "
             f"later than the row sum two passes later)")
        need("max_seq_len", self.merge_out_width <= _INT64_SAFE_BITS,
             f"small enough that merge accumulators fit {_INT64_SAFE_BITS} bits "
             f"(now {self.merge_out_width})")

    # ------------------------------------------------------------ derived sizes
    @property
    def key_slots(self) -> int:
        """Diagonal key/value ports of the local array: R + C - 1."""
        return self.rows + self.cols - 1

    @property
    def kv_banks(self) -> int:
        """K (and V) buffer banks: the power of two >= R+C-1, so element x of
        any R+C-1 consecutive positions lies in distinct banks (element x of
        position p -> bank (p + x) mod kv_banks; hw.row_buffer)."""
        return max(2, 1 << _clog2(self.key_slots))

    @property
    def kv_bank_depth(self) -> int:
        """Rows per K/V bank: a power of two, so that banks * depth >= kv_buffer_rows."""
        return max(2, 1 << _clog2(-(-self.kv_buffer_rows // self.kv_banks)))

    @property
    def kv_capacity(self) -> int:
        """K/V positions the buffer holds (>= kv_buffer_rows): position p lives in
        row p mod kv_capacity, and a PASS may read p only while no later load
        reused that row (the residency rule of the ISA)."""
        return self.kv_banks * self.kv_bank_depth

    @property
    def min_head_dim_wsum(self) -> int:
        """Smallest head dim the weighted-sum chain allows: with
        ``wsum_stage`` a row end's weighted sum is ``row_pes`` cycles later,
        and pass n's last element must reach the merge unit no later than
        the row sum of pass n+2 (its queue holds two passes; it retires an
        element in the cycle it takes a row sum): d >= row_pes - 2.  1
        without the stage."""
        return max(1, self.row_pes - 2) if self.wsum_stage else 1

    @property
    def row_pes(self) -> int:
        """PEs in one local row's chain: local, global-key and random-key columns."""
        return self.cols + self.global_cols + self.random_cols

    @property
    def num_pes(self) -> int:
        """All PEs: local rows with their extra columns plus global query rows."""
        return self.rows * self.row_pes + self.global_rows * self.cols

    @property
    def head_dim_width(self) -> int:
        """Bits of an element index / head-size field (counts 1..max_head_dim)."""
        return max(1, self.max_head_dim.bit_length())

    @property
    def index_width(self) -> int:
        """Bits of a token index (0..max_seq_len-1), used by masks and addresses."""
        return max(1, _clog2(self.max_seq_len))

    @property
    def score_frac(self) -> int:
        """Fraction bits of a score: the exact product of two data words."""
        return 2 * self.data_frac

    @property
    def exp_min(self) -> int:
        """Smallest probability exponent; also the exponent of an exact zero."""
        return -(1 << (self.exp_width - 1))

    @property
    def exp_max(self) -> int:
        """Largest probability exponent (larger scores saturate)."""
        return (1 << (self.exp_width - 1)) - 1

    @property
    def exp_segment_bits(self) -> int:
        """Bits of the score fraction that select the exp segment."""
        return _clog2(self.exp_segments)

    @property
    def shift_width(self) -> int:
        """Bits of an alignment shift amount (exponent difference)."""
        return self.exp_width

    @property
    def row_sum_width(self) -> int:
        """Unsigned width of the row sum of mantissas along one row chain."""
        return self.prob_width + _clog2(self.row_pes)

    @property
    def product_width(self) -> int:
        """Signed width of p * v (mantissa times value), exact."""
        return self.prob_width + self.data_width

    @property
    def wsum_width(self) -> int:
        """Signed width of the weighted-sum partial along one row chain."""
        return self.product_width + _clog2(self.row_pes)

    @property
    def merge_sum_width(self) -> int:
        """Unsigned width of the merged sum over a whole schedule (max_seq_len keys)."""
        return self.prob_width + 1 + _clog2(self.max_seq_len)

    @property
    def merge_out_width(self) -> int:
        """Signed width of the merged weighted sum over max_seq_len keys."""
        return self.product_width + 1 + _clog2(self.max_seq_len)

    @property
    def out_frac_extra(self) -> int:
        """Fraction bits outputs have beyond V's (out_frac - data_frac)."""
        return self.out_frac - self.data_frac

    @property
    def recip_frac(self) -> int:
        """K: the reciprocal of the merged sum is floor(2**K / sum)."""
        return self.merge_sum_width + self.out_width + 1

    # ------------------------------------------------------------- persistence
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys), the input of :meth:`hash`."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "AcceleratorConfig":
        if not isinstance(data, dict):
            raise ConfigError(f"a configuration must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown config field(s) {', '.join(map(repr, unknown))}; "
                f"known fields: {', '.join(sorted(known))}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> "AcceleratorConfig":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"configuration is not valid JSON: {e}") from None
        return cls.from_dict(data)

    def save(self, path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    def hash(self) -> str:
        """Stable 12-hex-digit content hash (independent of Python's hash seed)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:12]

    def describe(self) -> str:
        """One-line human summary."""
        extras = []
        if self.global_rows:
            extras.append(f"{self.global_rows} global row(s)")
        if self.global_cols:
            extras.append(f"{self.global_cols} global col(s)")
        if self.random_cols:
            extras.append(f"{self.random_cols} random col(s)")
        return (f"{self.rows}x{self.cols} PEs"
                + (" + " + ", ".join(extras) if extras else "")
                + f", d<={self.max_head_dim}, data {self.data_width}b/{self.data_frac}f,"
                  f" out {self.out_width}b/{self.out_frac}f,"
                  f" acc {self.acc_width}b, p {self.prob_width}b/{self.prob_frac}f,"
                  f" exp {self.exp_width}b, {self.exp_segments} exp segments")


_BASE = AcceleratorConfig()

#: Named presets.  ``small`` is for fast simulation, ``fpga`` for the FPGA flow,
#: ``salo-dac22`` reproduces the published SALO sizes and widths.
PRESETS: dict[str, AcceleratorConfig] = {
    "small": _BASE,
    "small-wide": dataclasses.replace(
        _BASE, data_width=16, data_frac=8, acc_width=40, prob_width=16, prob_frac=15,
        exp_width=6, exp_segments=16, out_width=24, out_frac=16),
    "small-8x8": dataclasses.replace(_BASE, rows=8, cols=8, random_cols=2, max_head_dim=16),
    "fpga": dataclasses.replace(
        _BASE, rows=4, cols=4, global_rows=1, global_cols=1, max_head_dim=64,
        max_seq_len=4096, kv_buffer_rows=128, div_steps=1, column_stage=1,
        wsum_stage=1),
    "salo-dac22": dataclasses.replace(
        _BASE, rows=32, cols=32, global_rows=1, global_cols=1, random_cols=0,
        max_head_dim=64, max_seq_len=16384, kv_buffer_rows=128),
    "salo-v2": dataclasses.replace(
        _BASE, rows=64, cols=8, global_rows=1, global_cols=1, random_cols=3,
        max_head_dim=64, max_seq_len=16384, kv_buffer_rows=128, out_buffer_rows=128),
    "wide": dataclasses.replace(
        _BASE, rows=8, cols=8, max_head_dim=64, max_seq_len=16384,
        data_width=16, data_frac=8, acc_width=40, prob_width=16, prob_frac=15,
        exp_width=6, exp_segments=16, out_width=24, out_frac=16),
}

PRESET_NOTES: dict[str, str] = {
    "small": "4x4, fast cocotb simulation, SALO widths",
    "small-wide": "4x4 with 16-bit data and 16 exp segments (width-change tests)",
    "small-8x8": "8x8 + 2 random columns, simulation of a bigger array",
    "fpga": ("4x4 + 1 global row + 1 global column, d<=64, for the ECP5-85F flow "
             "(docs/fpga-scaling.md: 24 PEs use 2 MULT18X18D each; an 8x8 array "
             "needs 160 DSPs for its 80 PEs alone, more than the 85F's 156)"),
    "salo-dac22": "SALO DAC'22: 32x32 + 1 global row + 1 global column, 9/4 data, 18-bit acc",
    "salo-v2": "SALOv2 TCAD'24: 64x8 + 1 global row + 1 global column + 3 random columns",
    "wide": "8x8, 16-bit data, high-accuracy reference preset",
}


def preset(name: str) -> AcceleratorConfig:
    """Return the preset called ``name`` (clear error listing the known names)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}") from None


def load_config(path=None, preset_name=None) -> AcceleratorConfig:
    """Load a config from a JSON file or a preset name (default ``small``)."""
    if path is not None and preset_name is not None:
        raise ConfigError("give either a config file or a preset, not both")
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {str(p)!r} does not exist")
        return AcceleratorConfig.from_json(p.read_text())
    return preset(preset_name or "small")
