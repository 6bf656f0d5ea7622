"""ISA: encoder/decoder, binary file and assembly round trips; doc is current."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.config import preset
from hw.isa import (OPERANDS, AsmError, Opcode, Program, assemble, decode, disassemble, encode,
                    isa_markdown, read_binary, write_binary)

CFGS = [preset("small"), preset("salo-v2")]


@st.composite
def programs(draw, cfg):
    n = draw(st.integers(1, 30))
    ops = draw(st.lists(st.sampled_from(list(Opcode)), min_size=n, max_size=n))
    fields = {}
    for i, op in enumerate(ops):
        for f in OPERANDS[op]:
            w = f.width(cfg)
            lo, hi = (-(1 << (w - 1)), (1 << (w - 1)) - 1) if f.signed else (0, (1 << w) - 1)
            fields.setdefault(f.name, np.zeros(n, dtype=np.int64))[i] = draw(st.integers(lo, hi))
    return Program(cfg.hash(), np.array([o.value for o in ops], dtype=np.int64), fields)


def _same(a: Program, b: Program):
    np.testing.assert_array_equal(a.opcode, b.opcode)
    for name in set(a.fields) | set(b.fields):
        for i, o in enumerate(a.opcode.tolist()):
            if name in {f.name for f in OPERANDS[Opcode(o)]}:
                assert a.field(name)[i] == b.field(name)[i], (name, i)


@pytest.mark.parametrize("cfg", CFGS, ids=["small", "salo-v2"])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_roundtrips(cfg, data, tmp_path_factory):
    prog = data.draw(programs(cfg))
    words = encode(prog, cfg)
    _same(prog, decode(words, cfg))
    text = disassemble(prog, cfg)
    back = assemble(text, cfg)
    _same(prog, back)
    assert disassemble(back, cfg) == text
    path = tmp_path_factory.mktemp("bin") / "p.bin"
    write_binary(path, prog, cfg)
    _same(prog, read_binary(path, cfg))


def test_binary_header_checks(tmp_path):
    cfg = CFGS[0]
    prog = assemble("SYNC\nEND\n", cfg)
    p = tmp_path / "p.bin"
    write_binary(p, prog, cfg)
    with pytest.raises(ValueError, match="compiled for config"):
        read_binary(p, CFGS[1])
    blob = bytearray(p.read_bytes())
    (tmp_path / "bad.bin").write_bytes(b"XXXX" + bytes(blob[4:]))
    with pytest.raises(ValueError, match="magic"):
        read_binary(tmp_path / "bad.bin", cfg)
    (tmp_path / "short.bin").write_bytes(bytes(blob[:-3]))
    with pytest.raises(ValueError, match="header says"):
        read_binary(tmp_path / "short.bin", cfg)


@pytest.mark.parametrize("text,msg", [
    ("FLY x=1", "unknown mnemonic"),
    ("PASS bogus=1", "no operand"),
    ("LOAD_Q addr=zz", "not an integer"),
    ("LOAD_Q addr=-1", "out of range"),
    ("PASS first=2", "out of range"),
])
def test_assembler_errors(text, msg):
    with pytest.raises(AsmError, match=msg):
        assemble(text, CFGS[0])


def test_isa_doc_is_generated():
    doc = Path(__file__).resolve().parents[2] / "docs" / "isa.md"
    assert doc.read_text() == isa_markdown(), "regenerate: python -m hw.isa > docs/isa.md"


def test_mask_records_pack_roundtrip_and_layout():
    import dataclasses
    from hw.isa import mask_record_layout, pack_mask_records, unpack_mask_records
    from scheduler.pattern import parse_pattern
    from scheduler.schedule import compile_pattern
    cfg = preset("small-8x8")
    p = parse_pattern({"seq_len": 50, "head_dim": 4, "window": {"left": 9, "right": 3},
                       "global_tokens": [0, 20], "random": {"keys_per_query": 3, "seed": 2}})
    s = compile_pattern(p, cfg)
    m = {k: getattr(s, k) for k in ("col_lo", "col_hi", "gcol_en", "rcol_en", "grow_lo",
                                    "grow_hi")}
    packed = pack_mask_records(m, cfg)
    assert packed.shape == (s.passes_per_head, -(-mask_record_layout(cfg).size // 8))
    back = unpack_mask_records(packed, cfg)
    for k, v in m.items():
        np.testing.assert_array_equal(back[k], v)
    # hand-checked layout: small (R=C=4, Gc=1, Rc=0, Gr=1): row i = col_lo[2] col_hi[2]
    # gcol_en[1] at bit 5*i; global row 0 = lo[2] hi[2] at bit 20
    small = dataclasses.replace(preset("small"))
    one = {"col_lo": np.array([[1, 0, 0, 0]]), "col_hi": np.array([[3, 0, 0, 0]]),
           "gcol_en": np.array([[[True], [False], [False], [True]]]),
           "rcol_en": np.zeros((1, 4, 0), bool), "grow_lo": np.array([[2]]),
           "grow_hi": np.array([[1]])}
    word = int.from_bytes(pack_mask_records(one, small)[0].tobytes(), "little")
    assert word == (1 | 3 << 2 | 1 << 4) | (1 << 19) | (2 << 20) | (1 << 22)
