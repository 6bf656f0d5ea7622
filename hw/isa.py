"""The accelerator's instruction set, defined once.

Everything about an instruction -- opcode values, operand fields, their
widths (as expressions over :class:`hw.config.AcceleratorConfig`) and their
meaning -- lives in :data:`OPCODE_DOC` / :data:`OPERANDS` below.  From that
one definition this module derives:

* the Amaranth layouts (:func:`instruction_layout`, :func:`mask_record_layout`)
  used by the RTL decoder,
* the numpy encoder/decoder (:func:`encode`, :func:`decode`),
* the binary program format (:func:`write_binary`, :func:`read_binary`),
* the text assembly (:func:`disassemble`, :func:`assemble`), and
* the generated reference ``docs/isa.md`` (:func:`isa_markdown`;
  regenerate with ``python -m hw.isa > docs/isa.md``).

Instruction word: ``opcode`` in the low :data:`OPCODE_BITS` bits, then the
operands of that opcode (a union: every opcode's operands start right after
the opcode).  A word is stored as a little-endian 64-bit integer; the layout
must fit in 64 bits for every supported config (checked).

Per-row pass data (local column ranges, global/random column enables and the
global rows' column ranges) is *not* in the instruction: it is a *mask
record* (:func:`mask_record_layout`) that the host streams into the mask
FIFO, one record per ``PASS`` in program order.  An instruction field cannot
hold R ranges when R is 32 or 64; a stream can.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
from amaranth.hdl import signed, unsigned
from amaranth.lib import data, enum

from hw.config import AcceleratorConfig

__all__ = ["Opcode", "OPCODE_BITS", "HEAD_BITS", "OPERANDS", "FieldSpec", "field_specs",
           "instruction_layout", "mask_record_layout", "encode", "decode", "Program",
           "write_binary", "read_binary", "disassemble", "assemble", "AsmError",
           "isa_markdown", "MAGIC", "VERSION", "pack_mask_records", "unpack_mask_records"]

#: bits of the opcode field
OPCODE_BITS = 4
#: bits of the head index of SET_HEAD (heads per program)
HEAD_BITS = 12
#: magic bytes and format version of the binary program file
MAGIC = b"SALO"
VERSION = 1
# magic, version, word bytes, config hash (6 bytes = 12 hex digits), instruction count, reserved
_HEADER = struct.Struct("<4sHH6sII")


class Opcode(enum.Enum, shape=OPCODE_BITS):
    """Operation codes (the values are the binary encoding)."""
    NOP = 0
    SET_HEAD = 1
    LOAD_Q = 2
    LOAD_KV = 3
    LOAD_GQ = 4
    LOAD_GKV = 5
    LOAD_RKV = 6
    PASS = 7
    STORE = 8
    STORE_G = 9
    SYNC = 10
    END = 15


#: what each opcode does (the text of the generated reference)
OPCODE_DOC = {
    Opcode.NOP: "No operation.",
    Opcode.SET_HEAD: "Select the head whose Q/K/V/output streams the following "
                     "instructions address (the host offsets its streams by head).",
    Opcode.LOAD_Q: "Load query rows at positions addr..addr+count-1 (permuted order) into "
                   "the local query slots 0..count-1 of the next tile; slots >= count "
                   "hold zeros. Double buffered: takes effect at the next PASS with first=1.",
    Opcode.LOAD_KV: "Write key and value rows of positions addr..addr+count-1 into K/V "
                    "buffer slots (position mod `kv_capacity`, the buffer's real size: "
                    "`kv_banks * kv_bank_depth` >= kv_buffer_rows), replacing what those "
                    "slots held. A PASS reads positions kv_base..kv_base+R+C-2 from slots "
                    "(position mod kv_capacity); every position a valid pair uses must be "
                    "the one its slot holds, loaded since the last SET_HEAD (SET_HEAD "
                    "empties the K/V buffer and the global-key registers). Positions "
                    "outside 0..N-1 are never valid. The hardware checks this and stops "
                    "with `KV_NOT_RESIDENT`.",
    Opcode.LOAD_GQ: "Load the query at position addr into global row `row` and reset that "
                    "row's merge accumulator (global rows accumulate over the whole head).",
    Opcode.LOAD_GKV: "Load key and value at position addr into global key column `col` "
                     "(broadcast to every local row).",
    Opcode.LOAD_RKV: "Load R*random_cols private key/value rows, row-major (row, column), "
                     "from the random-key stream of the data plan (position -1 = unused, "
                     "zeros).",
    Opcode.PASS: "Run one pass of the array over K/V positions kv_base..kv_base+R+C-2, "
                 "the global columns and the random columns, consuming the next mask record. "
                 "first=1: local merge units restart from this pass; last=1: local merge "
                 "units normalize and write the tile's outputs to the output buffer; "
                 "grow=1: global rows take part and merge their partial into their "
                 "accumulators.",
    Opcode.STORE: "Send output buffer rows 0..count-1 to the host as positions "
                  "addr..addr+count-1.",
    Opcode.STORE_G: "Normalize global row `row` and send it to the host as position addr.",
    Opcode.SYNC: "Wait until every earlier instruction has completed (loads landed, "
                 "passes drained, stores sent).",
    Opcode.END: "End of program (implies SYNC).",
}


@dataclass(frozen=True)
class FieldSpec:
    """One operand field: name, signedness, width as a Python expression over
    ``cfg`` (evaluated by :meth:`width`), and its meaning."""
    name: str
    signed: bool
    width_expr: str
    doc: str

    def width(self, cfg: AcceleratorConfig) -> int:
        w = int(eval(self.width_expr, {"cfg": cfg, "max": max, "HEAD_BITS": HEAD_BITS,
                                       "clog2": _clog2}))
        return max(1, w)

    def shape(self, cfg: AcceleratorConfig):
        return (signed if self.signed else unsigned)(self.width(cfg))


def _clog2(n: int) -> int:
    return max(0, (int(n) - 1).bit_length())


_POS = "cfg.index_width"                      # a position 0..max_seq_len-1
OPERANDS: dict[Opcode, tuple[FieldSpec, ...]] = {
    Opcode.NOP: (),
    Opcode.SET_HEAD: (FieldSpec("head", False, "HEAD_BITS", "head index"),),
    Opcode.LOAD_Q: (FieldSpec("addr", False, _POS, "first position"),
                    FieldSpec("count", False, "clog2(cfg.rows + 1)", "rows (1..R)")),
    Opcode.LOAD_KV: (FieldSpec("addr", False, _POS, "first position"),
                     FieldSpec("count", False, "clog2(cfg.kv_buffer_rows + 1)",
                               "rows (1..kv_buffer_rows)")),
    Opcode.LOAD_GQ: (FieldSpec("row", False, "clog2(cfg.global_rows)", "global row"),
                     FieldSpec("addr", False, _POS, "position of the global query")),
    Opcode.LOAD_GKV: (FieldSpec("col", False, "clog2(cfg.global_cols)", "global key column"),
                      FieldSpec("addr", False, _POS, "position of the global key")),
    Opcode.LOAD_RKV: (),
    Opcode.PASS: (FieldSpec("kv_base", True, "cfg.index_width + 2",
                            "position of key slot 0 (may be negative at the sequence start)"),
                  FieldSpec("first", False, "1", "first pass of the tile: reset local merge"),
                  FieldSpec("last", False, "1", "last pass of the tile: normalize and emit"),
                  FieldSpec("grow", False, "1", "global rows take part in this pass")),
    Opcode.STORE: (FieldSpec("addr", False, _POS, "first position"),
                   FieldSpec("count", False, "clog2(cfg.rows + 1)", "rows (1..R)")),
    Opcode.STORE_G: (FieldSpec("row", False, "clog2(cfg.global_rows)", "global row"),
                     FieldSpec("addr", False, _POS, "position of the global query")),
    Opcode.SYNC: (),
    Opcode.END: (),
}

#: fields of one local row inside a mask record
MASK_ROW_FIELDS = (
    FieldSpec("col_lo", False, "clog2(cfg.cols)", "first enabled local column (j)"),
    FieldSpec("col_hi", False, "clog2(cfg.cols)",
              "last enabled local column; col_lo > col_hi disables the row"),
    FieldSpec("gcol_en", False, "cfg.global_cols", "enable bit g for global key column g (absent when global_cols = 0)"),
    FieldSpec("rcol_en", False, "cfg.random_cols", "enable bit r for random key column r (absent when random_cols = 0)"),
)
#: fields of one global row inside a mask record
MASK_GROW_FIELDS = (
    FieldSpec("col_lo", False, "clog2(cfg.cols)", "first enabled column of the global row"),
    FieldSpec("col_hi", False, "clog2(cfg.cols)", "last enabled column; lo > hi: none"),
)


def field_specs(op: Opcode) -> tuple[FieldSpec, ...]:
    return OPERANDS[Opcode(op)]


def _struct(specs, cfg) -> data.StructLayout:
    return data.StructLayout({f.name: f.shape(cfg) for f in specs
                              if not (f.name in ("gcol_en", "rcol_en")
                                      and eval(f.width_expr, {"cfg": cfg}) == 0)})


def instruction_layout(cfg: AcceleratorConfig) -> data.StructLayout:
    """Amaranth layout of one instruction word for ``cfg``."""
    ops = data.UnionLayout({op.name.lower(): _struct(OPERANDS[op], cfg) for op in Opcode})
    layout = data.StructLayout({"opcode": Opcode, "operands": ops})
    if layout.size > 64:
        raise ValueError(f"instruction layout needs {layout.size} bits > 64 for this config")
    return layout


def mask_record_layout(cfg: AcceleratorConfig) -> data.StructLayout:
    """Amaranth layout of one mask record (one per PASS, streamed by the host)."""
    row = _struct(MASK_ROW_FIELDS, cfg)
    fields = {"rows": data.ArrayLayout(row, cfg.rows)}
    if cfg.global_rows:
        fields["grows"] = data.ArrayLayout(_struct(MASK_GROW_FIELDS, cfg), cfg.global_rows)
    return data.StructLayout(fields)


def _field_offsets(cfg):
    """{op: [(name, offset, width, signed)]} of the operand fields in a word."""
    opf = instruction_layout(cfg)["operands"]
    out = {}
    for op in Opcode:
        member = opf.shape[op.name.lower()].shape
        out[op] = [(name, opf.offset + f.offset, f.width, f.shape.signed) for name, f in member]
    return out


def _mask_bit_fields(cfg):
    """[(array name, row index or None, bit offset, width)] of a mask record:
    array names col_lo/col_hi/gcol_en/rcol_en (per local row) and
    grow_lo/grow_hi (per global row)."""
    lay = mask_record_layout(cfg)
    out = []
    rows = lay["rows"]
    elem = rows.shape.elem_shape
    for i in range(cfg.rows):
        base = rows.offset + i * elem.size
        for name, f in elem:
            out.append((name, i, base + f.offset, f.width))
    if cfg.global_rows:
        grows = lay["grows"]
        gelem = grows.shape.elem_shape
        for g in range(cfg.global_rows):
            base = grows.offset + g * gelem.size
            for name, f in gelem:
                out.append(("grow_" + name[4:], g, base + f.offset, f.width))
    return out


def pack_mask_records(masks: dict, cfg: AcceleratorConfig) -> np.ndarray:
    """Pack mask records into (P, ceil(bits/8)) little-endian bytes per
    :func:`mask_record_layout`.  ``masks``: col_lo, col_hi (P, R); gcol_en
    (P, R, Gc), rcol_en (P, R, Rc) bools; grow_lo, grow_hi (P, Gr)."""
    size = mask_record_layout(cfg).size
    P = len(masks["col_lo"])
    bits = np.zeros((P, size), dtype=bool)
    for name, i, off, w in _mask_bit_fields(cfg):
        v = masks[name][:, i]
        if v.ndim == 2:                              # enable bits: bit g = column g
            bits[:, off:off + w] = v
        else:
            bad = np.flatnonzero((v < 0) | (v >= 1 << w))
            if bad.size:
                p = int(bad[0])
                raise ValueError(f"mask record {p}: {name}[{i}] = {int(v[p])} does not fit "
                                 f"{w} bits (allowed 0..{(1 << w) - 1})")
            bits[:, off:off + w] = (v[:, None] >> np.arange(w)) & 1
    return np.packbits(bits, axis=1, bitorder="little")


def unpack_mask_records(data: np.ndarray, cfg: AcceleratorConfig) -> dict:
    """Inverse of :func:`pack_mask_records`."""
    size = mask_record_layout(cfg).size
    bits = np.unpackbits(np.asarray(data, dtype=np.uint8), axis=1, bitorder="little")[:, :size]
    P = len(bits)
    R, Gr = cfg.rows, cfg.global_rows
    out = {"col_lo": np.zeros((P, R), np.int64), "col_hi": np.zeros((P, R), np.int64),
           "gcol_en": np.zeros((P, R, cfg.global_cols), bool),
           "rcol_en": np.zeros((P, R, cfg.random_cols), bool),
           "grow_lo": np.zeros((P, Gr), np.int64), "grow_hi": np.zeros((P, Gr), np.int64)}
    for name, i, off, w in _mask_bit_fields(cfg):
        b = bits[:, off:off + w].astype(np.int64)
        if out[name].ndim == 3:
            out[name][:, i] = b.astype(bool)
        else:
            out[name][:, i] = (b << np.arange(w)).sum(axis=1)
    return out


# ------------------------------------------------------------------ programs
@dataclass
class Program:
    """A decoded program: ``opcode`` (n,) int array and one (n,) int64 array
    per operand field name (0 where the opcode has no such field)."""
    cfg_hash: str
    opcode: np.ndarray
    fields: dict

    def __len__(self):
        return len(self.opcode)

    def field(self, name):
        return self.fields.get(name, np.zeros(len(self.opcode), dtype=np.int64))


def encode(prog: Program, cfg: AcceleratorConfig) -> np.ndarray:
    """Pack a program into (n,) uint64 words (vectorized); range-checks every field."""
    offs = _field_offsets(cfg)
    op = np.asarray(prog.opcode, dtype=np.int64)
    words = op.astype(np.uint64)
    for o in np.unique(op):
        sel = op == o
        for name, off, width, sgn in offs[Opcode(int(o))]:
            v = prog.field(name)[sel]
            lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if sgn else (0, (1 << width) - 1)
            if v.size and (v.min() < lo or v.max() > hi):
                raise ValueError(f"{Opcode(int(o)).name}.{name} value out of range {lo}..{hi}: "
                                 f"{v.min()}..{v.max()}")
            words[sel] |= ((v.astype(np.int64) & ((1 << width) - 1)).astype(np.uint64)
                           << np.uint64(off))
    return words


def decode(words: np.ndarray, cfg: AcceleratorConfig, cfg_hash: str | None = None) -> Program:
    """Unpack (n,) uint64 words into a :class:`Program` (vectorized)."""
    words = np.asarray(words, dtype=np.uint64)
    op = (words & np.uint64((1 << OPCODE_BITS) - 1)).astype(np.int64)
    valid = {o.value for o in Opcode}
    bad = ~np.isin(op, list(valid))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"instruction {i}: unknown opcode {int(op[i])}")
    fields: dict[str, np.ndarray] = {}
    offs = _field_offsets(cfg)
    for o in np.unique(op):
        sel = op == o
        for name, off, width, sgn in offs[Opcode(int(o))]:
            v = ((words[sel] >> np.uint64(off)) & np.uint64((1 << width) - 1)).astype(np.int64)
            if sgn:
                v = np.where(v >= (1 << (width - 1)), v - (1 << width), v)
            arr = fields.setdefault(name, np.zeros(len(words), dtype=np.int64))
            arr[sel] = v
    return Program(cfg_hash or cfg.hash(), op, fields)


def write_binary(path, prog: Program, cfg: AcceleratorConfig) -> None:
    """Write header (magic, version, word bytes, config hash, length) + words."""
    words = encode(prog, cfg)
    header = _HEADER.pack(MAGIC, VERSION, 8, bytes.fromhex(cfg.hash()), len(words), 0)
    with open(path, "wb") as f:
        f.write(header)
        f.write(words.astype("<u8").tobytes())


def read_binary(path, cfg: AcceleratorConfig) -> Program:
    """Read a binary program, checking magic, version, config hash and length."""
    blob = open(path, "rb").read()
    if len(blob) < _HEADER.size:
        raise ValueError(f"{path}: too short for a program header")
    magic, version, wbytes, h, n, _ = _HEADER.unpack_from(blob)
    if magic != MAGIC:
        raise ValueError(f"{path}: not a SALO program (magic {magic!r})")
    if version != VERSION:
        raise ValueError(f"{path}: format version {version}, this tool reads {VERSION}")
    if h.hex() != cfg.hash():
        raise ValueError(f"{path}: compiled for config {h.hex()}, not {cfg.hash()}")
    body = blob[_HEADER.size:]
    if wbytes != 8 or len(body) != 8 * n:
        raise ValueError(f"{path}: header says {n} words of {wbytes} bytes, body has "
                         f"{len(body)} bytes")
    return decode(np.frombuffer(body, dtype="<u8"), cfg, h.hex())


# ------------------------------------------------------------------ assembly
class AsmError(ValueError):
    """A syntax or range error in assembly text (with the line number)."""


def disassemble(prog: Program, cfg: AcceleratorConfig) -> str:
    """Text assembly: ``; config HASH`` header, then one ``OP f=v ...`` per line."""
    ops = np.asarray(prog.opcode)
    lines = [""] * len(ops)
    for o in np.unique(ops).tolist():
        op = Opcode(o)
        idx = np.flatnonzero(ops == o)
        names = [f.name for f in OPERANDS[op]]
        if not names:
            for i in idx.tolist():
                lines[i] = op.name
            continue
        fmt = op.name + " " + " ".join(f"{n}=%d" for n in names)
        vals = zip(*(prog.field(n)[idx].tolist() for n in names))
        for i, v in zip(idx.tolist(), vals):
            lines[i] = fmt % v
    head = f"; SALO program v{VERSION}, config {cfg.hash()}, {len(ops)} instructions"
    return head + "\n" + "\n".join(lines) + "\n"


def assemble(text: str, cfg: AcceleratorConfig) -> Program:
    """Parse assembly (``;`` starts a comment; omitted fields are 0)."""
    ops, vals = [], {}
    n = 0
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split(";", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        try:
            op = Opcode[parts[0].upper()]
        except KeyError:
            raise AsmError(f"line {lineno}: unknown mnemonic {parts[0]!r}; known: "
                           f"{', '.join(o.name for o in Opcode)}") from None
        allowed = {f.name for f in OPERANDS[op]}
        for p in parts[1:]:
            name, eq, val = p.partition("=")
            if not eq or name not in allowed:
                raise AsmError(f"line {lineno}: {op.name} has no operand {p!r}; operands: "
                               f"{', '.join(sorted(allowed)) or 'none'}")
            try:
                v = int(val, 0)
            except ValueError:
                raise AsmError(f"line {lineno}: {name}={val!r} is not an integer") from None
            vals.setdefault(name, {})[n] = v
        ops.append(op.value)
        n += 1
    fields = {}
    for name, d in vals.items():
        arr = np.zeros(n, dtype=np.int64)
        arr[list(d)] = list(d.values())
        fields[name] = arr
    prog = Program(cfg.hash(), np.array(ops, dtype=np.int64), fields)
    try:
        encode(prog, cfg)
    except ValueError as e:
        raise AsmError(str(e)) from None
    return prog


# ------------------------------------------------------------------ reference
def isa_markdown(presets=("small", "salo-dac22")) -> str:
    """The ISA reference (Markdown), generated from the definition above."""
    from hw.config import preset
    out = ["# Instruction set reference", "",
           "Generated by `python -m hw.isa > docs/isa.md` from `hw/isa.py`; do not edit.", "",
           f"An instruction is one 64-bit little-endian word: `opcode` in bits "
           f"[{OPCODE_BITS - 1}:0], then the opcode's operands from bit {OPCODE_BITS} up. "
           "Field widths depend on the accelerator config; the width column gives the "
           "rule (a field is at least 1 bit wide) and its bits for the presets " + ", ".join(f"`{p}`" for p in presets) + ".",
           "",
           f"Binary file: header `{_HEADER.format}` = magic `{MAGIC.decode()}`, version "
           f"{VERSION}, word bytes (8), config hash (6 bytes, `AcceleratorConfig.hash()`), "
           "instruction count, reserved; then the words.", "",
           "Assembly: one instruction per line, `MNEMONIC field=value ...`; `;` starts a "
           "comment; omitted fields are 0.", "",
           "## Opcodes", "", "| opcode | value | operation |", "|---|---|---|"]
    for o in Opcode:
        out.append(f"| `{o.name}` | {o.value} | {OPCODE_DOC[o]} |")
    cfgs = [(p, preset(p)) for p in presets]
    out += ["", "## Operand fields", ""]
    for o in Opcode:
        if not OPERANDS[o]:
            continue
        offs = {p: {n: (off, w) for n, off, w, _ in _field_offsets(c)[o]} for p, c in cfgs}
        out += [f"### `{o.name}`", "",
                "| field | signed | width rule | " + " | ".join(
                    f"bits ({p})" for p, _ in cfgs) + " | meaning |",
                "|---|---|---|" + "---|" * len(cfgs) + "---|"]
        for f in OPERANDS[o]:
            bits = []
            for p, _ in cfgs:
                off, w = offs[p][f.name]
                bits.append(f"[{off + w - 1}:{off}]")
            out.append(f"| `{f.name}` | {'yes' if f.signed else 'no'} | `{f.width_expr}` | "
                       + " | ".join(bits) + f" | {f.doc} |")
        out.append("")
    out += ["## Mask records", "",
            "One record per `PASS`, streamed by the host in program order (see the data "
            "plan). Local row i of the pass uses local columns col_lo..col_hi (PE(i, j) "
            "pairs query slot i with key slot i+C-1-j, so a contiguous key range is a "
            "contiguous column range), global column g when bit g of gcol_en is set and "
            "random column r when bit r of rcol_en is set. Global row g uses columns "
            "col_lo..col_hi of the bottom row's key slots.", "",
            "| part | field | width rule | meaning |", "|---|---|---|---|"]
    for f in MASK_ROW_FIELDS:
        out.append(f"| rows[R] | `{f.name}` | `{f.width_expr}` | {f.doc} |")
    for f in MASK_GROW_FIELDS:
        out.append(f"| grows[Gr] | `{f.name}` | `{f.width_expr}` | {f.doc} |")
    out.append("")
    out.append("Record size: " + ", ".join(
        f"{mask_record_layout(c).size} bits (`{p}`)" for p, c in cfgs) + ". The compiler "
        "writes the records packed (`pack_mask_records`: fields at their layout offsets, "
        "bit 0 first, each record padded to whole bytes) as `masks.bin`.")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(isa_markdown(), end="")
