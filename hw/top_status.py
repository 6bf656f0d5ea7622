"""Status/control view of the accelerator top: the error codes (defined
once, as an Amaranth enum with a shape) and the host stream payload layouts.

Everything here is derived from :class:`hw.config.AcceleratorConfig` and
:mod:`hw.isa`; the testbench, the RTL backend and ``salo gen`` import these
definitions rather than repeating widths.
"""

from __future__ import annotations

from amaranth.hdl import signed, unsigned
from amaranth.lib import data, enum

from hw.isa import HEAD_BITS

__all__ = ["ErrorCode", "ERROR_BITS", "COUNTER_BITS", "WATCHDOG_BITS", "COUNTERS",
           "row_layout", "out_row_layout", "result_layout", "decode_result", "ERROR_DOC"]

#: bits of the error code on the status port
ERROR_BITS = 4
#: width of every performance counter (2**48 cycles: days at 1 GHz)
COUNTER_BITS = 48
#: width of the watchdog limit control input (cycles of input starvation)
WATCHDOG_BITS = 24


class ErrorCode(enum.Enum, shape=ERROR_BITS):
    """Error state of the accelerator (``error`` status port).  Sticky until
    reset; while non-zero no stream is accepted and no pass is started."""
    NONE = 0
    #: opcode value not in :class:`hw.isa.Opcode`
    ILLEGAL_OPCODE = 1
    #: an operand outside its allowed range (count 0 or too big, global
    #: row/column index >= the config's count, positions beyond max_seq_len,
    #: LOAD_RKV on a config without random columns)
    FIELD_RANGE = 2
    #: an instruction that is legal alone but not here (STORE before any tile
    #: finished, PASS last=1 outside a tile, local work in a pass outside a
    #: tile, PASS first=1 before any LOAD_Q, STORE_G / grow pass of a global
    #: row never loaded, global column enabled but never loaded)
    PROTOCOL = 3
    #: the instruction stream stayed empty for ``watchdog_limit`` cycles
    #: before END (program ended early)
    INSTR_STARVED = 4
    #: the data stream (Q/K/V rows) stayed empty for ``watchdog_limit`` cycles
    #: while a LOAD needed rows (data stream ran short)
    DATA_STARVED = 5
    #: the mask-record stream stayed empty for ``watchdog_limit`` cycles while
    #: a PASS needed its record
    MASK_STARVED = 6
    #: ``head_dim`` control input outside ceil((L+1)/2)..max_head_dim when
    #: the first instruction arrived
    BAD_HEAD_DIM = 7
    #: internal consistency check failed (a merge unit flagged a protocol
    #: violation, or the local merge units lost lockstep): a design bug
    INTERNAL = 8
    #: a PASS reads a K/V position (one a valid pair of its mask record uses)
    #: that its buffer row does not hold: never loaded since the last
    #: SET_HEAD, reused by a later LOAD_KV of a position kv_capacity apart,
    #: or outside 0..max_seq_len-1 (kv_base out of range)
    KV_NOT_RESIDENT = 9


ERROR_DOC = {e: (e.__doc__ or "") for e in ErrorCode}

#: performance counters on the status port (all COUNTER_BITS wide)
COUNTERS = {
    "cycles_total": "cycles from the first accepted instruction until done or error",
    "cycles_busy": "cycles in which the array's ports carry a pass (K or V phase)",
    "cycles_stall_in": "cycles the sequencer waited for an input stream "
                       "(instruction, Q/K/V row or mask record)",
    "cycles_stall_out": "cycles a result row was offered but not accepted",
    "useful_macs": "2 * d * (enabled (query, key) pairs): score plus weighted-sum "
                   "multiply-accumulates of unmasked pairs; peak rate is one per PE per cycle",
    "passes": "passes started (including the closing pass of each STORE_G)",
    "instr_count": "instructions accepted",
}


def row_layout(cfg) -> data.ArrayLayout:
    """One Q, K or V row (or one output row): ``max_head_dim`` signed data
    words, element 0 in the low bits; elements d..max_head_dim-1 are ignored
    on input and zero on output."""
    return data.ArrayLayout(signed(cfg.data_width), cfg.max_head_dim)


def out_row_layout(cfg) -> data.ArrayLayout:
    """One output row: ``max_head_dim`` signed ``out_width`` words
    (``out_frac`` fraction bits), element 0 in the low bits; elements
    d..max_head_dim-1 are zero."""
    return data.ArrayLayout(signed(cfg.out_width), cfg.max_head_dim)


def result_layout(cfg) -> data.StructLayout:
    """Payload of the ``results`` stream: the row, its position (STORE /
    STORE_G ``addr`` + row) and the head (last SET_HEAD)."""
    return data.StructLayout({
        "data": out_row_layout(cfg),
        "pos": unsigned(cfg.index_width),
        "head": unsigned(HEAD_BITS),
    })


def decode_result(cfg, value: int):
    """One ``results`` record (an int, bit 0 = LSB) -> (head, pos, list of
    ``max_head_dim`` signed ints), by the offsets of :func:`result_layout`."""
    lay = result_layout(cfg)
    ow = cfg.out_width

    def field(f, off=0, width=None):
        w = f.width if width is None else width
        return (value >> (f.offset + off)) & ((1 << w) - 1)
    f_data = lay["data"]
    row = []
    for i in range(cfg.max_head_dim):
        x = field(f_data, i * ow, ow)
        row.append(x - (1 << ow) if x >> (ow - 1) else x)
    return field(lay["head"]), field(lay["pos"]), row
