"""The salo mask/compile/run/show commands: happy paths and one clean error
line (exit status 2, no traceback) for every kind of bad input."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sim.cli import main

EX = Path(__file__).resolve().parents[2] / "examples"
GOOD = {"seq_len": 40, "head_dim": 8, "heads": 2, "window": {"left": 3, "right": 2},
        "global_tokens": [0]}


def _write(tmp_path, obj, name="p.json"):
    p = tmp_path / name
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(p)


def _fails(argv, capsys, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, err
    return err


@pytest.mark.parametrize("obj,needles", [
    ({"head_dim": 8, "window": {"left": 1, "right": 1}}, ["'seq_len'", "missing"]),
    (dict(GOOD, window={"left": -2, "right": 1}), ["'window.left'", "-2", "0..40"]),
    (dict(GOOD, global_tokens=[0, 40]), ["'global_tokens'", "40", "0..39"]),
    ({"seq_len": 50, "head_dim": 8, "grid": {"height": 7, "width": 6, "radius_h": 1,
                                              "radius_w": 1}, "global_tokens": [0]},
     ["'grid'", "7x6", "!= 50"]),
    # empty row: every span lies after its query and causal removes it
    ({"seq_len": 10, "head_dim": 8, "causal": True,
      "spans": [[min(i + 1, 9), 9] for i in range(10)]}, ["query 0 attends no key"]),
    (dict(GOOD, window={"left": 1, "right": 1, "dilation": 0}), ["'window.dilation'", "0"]),
    (dict(GOOD, windw={"left": 1}), ["unknown pattern field 'windw'"]),
    (dict(GOOD, seq_len="many"), ["'seq_len'", "'many'", "integer"]),
    ("{not json", ["not valid JSON"]),
])
@pytest.mark.parametrize("cmd", ["mask", "compile", "run"])
def test_bad_patterns_one_clear_line(tmp_path, capsys, obj, needles, cmd):
    path = _write(tmp_path, obj)
    extra = {"mask": ["-o", str(tmp_path / "m.npy")], "compile": ["-o", str(tmp_path / "c")],
             "run": []}[cmd]
    _fails([cmd, path, *extra], capsys, *needles)


def test_missing_file_and_bad_inputs(tmp_path, capsys):
    _fails(["mask", str(tmp_path / "nope.json"), "-o", "x.npy"], capsys, "does not exist")
    _fails(["compile", str(EX / "longformer-16k.json"), "-o", str(tmp_path / "c")], capsys,
           "max_seq_len")
    _fails(["compile", _write(tmp_path, GOOD), "--preset", "huge", "-o", "x"], capsys,
           "unknown preset")
    np.save(tmp_path / "q.npy", np.zeros((2, 40, 7)))
    _fails(["run", _write(tmp_path, GOOD), "--q", str(tmp_path / "q.npy"), "--k",
            str(tmp_path / "q.npy"), "--v", str(tmp_path / "q.npy")], capsys, "shape")


def test_mask_compile_run_show(tmp_path, capsys):
    pat = _write(tmp_path, GOOD)
    assert main(["mask", pat, "-o", str(tmp_path / "m.npy")]) == 0
    m = np.load(tmp_path / "m.npy")
    assert m.shape == (40, 40) and m[5, 2] and not m[5, 9] and m[30, 0] and m[0, 30]
    assert main(["compile", pat, "-o", str(tmp_path / "c")]) == 0
    for f in ("program.bin", "program.asm", "plan.json", "masks.bin", "masks.npz"):
        assert (tmp_path / "c" / f).is_file()
    plan = json.loads((tmp_path / "c" / "plan.json").read_text())
    assert plan["cycle_estimate"]["cycles"] > 0 and len(plan["permutation"]) == 40
    rng = np.random.default_rng(0)
    for n in "qkv":
        np.save(tmp_path / f"{n}.npy", rng.standard_normal((2, 40, 8)))
    assert main(["run", pat, *sum(([f"--{n}", str(tmp_path / f"{n}.npy")] for n in "qkv"), []),
                 "-o", str(tmp_path / "o.npy"), "--preset", "small-wide"]) == 0
    out = capsys.readouterr().out
    assert "relative RMS error" in out
    assert np.load(tmp_path / "o.npy").shape == (2, 40, 8)
    assert main(["show", pat, "-o", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_run_example_alone_and_help():
    # `salo run examples/x.json` alone works (random inputs, a preset that fits)
    r = subprocess.run([sys.executable, "-m", "sim.cli", "run", str(EX / "vil-stage2.json"),
                        "--heads", "1"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "relative RMS error" in r.stdout
    from sim.cli import build_parser
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert {"mask", "compile", "run", "show", "synth", "bitstream", "gen"} <= set(sub.choices)
    for cmd in sub.choices:
        r = subprocess.run([sys.executable, "-m", "sim.cli", cmd, "--help"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "usage: salo " + cmd in r.stdout, cmd


def test_importers(tmp_path, capsys):
    for f in ("hf-longformer-config.json", "hf-bigbird-config.json",
              "deepspeed-bslongformer.json"):
        assert main(["mask", str(EX / f), "--seq-len", "256", "-o",
                     str(tmp_path / "m.npy")]) == 0
    from scheduler.pattern import load_pattern
    p = load_pattern(EX / "hf-longformer-config.json")
    assert (p.seq_len, p.head_dim, p.heads, p.window["left"]) == (4096, 64, 12, 256)
    b = load_pattern(EX / "hf-bigbird-config.json")
    assert b.blocks["global_blocks"] == [0, 63] and b.blocks["random_blocks"] == 3
    d = _write(tmp_path, {"sparse_attention": {"mode": "fixed", "block": 16}, "seq_len": 64,
                          "head_dim": 8})
    _fails(["mask", d, "-o", "x.npy"], capsys, "'mode'", "fixed")


def test_spans_file(tmp_path, capsys):
    spans = np.stack([np.maximum(0, np.arange(30) - 4), np.arange(30)], axis=1)
    np.save(tmp_path / "spans.npy", spans)
    pat = _write(tmp_path, {"seq_len": 30, "head_dim": 4, "spans": "spans.npy"})
    assert main(["mask", pat, "-o", str(tmp_path / "m.npy")]) == 0
    m = np.load(tmp_path / "m.npy")
    assert m[10, 6] and m[10, 10] and not m[10, 5] and not m[10, 11]
    assert main(["run", pat, "--preset", "small-wide"]) == 0
    bad = _write(tmp_path, {"seq_len": 30, "head_dim": 4, "spans": "nope.npy"}, "b.json")
    _fails(["compile", bad, "-o", str(tmp_path / "c")], capsys, "'spans'", "does not exist")
    np.save(tmp_path / "s2.npy", spans[:, ::-1])
    bad2 = _write(tmp_path, {"seq_len": 30, "head_dim": 4, "spans": "s2.npy"}, "c.json")
    _fails(["mask", bad2, "-o", "x.npy"], capsys, "spans[1]", "lo <= hi")


def test_unwritable_outputs(tmp_path, capsys):
    pat = _write(tmp_path, GOOD)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _fails(["mask", pat, "-o", str(blocker / "m.npy")], capsys, "cannot write")
    _fails(["compile", pat, "-o", str(blocker / "dir")], capsys, "cannot write")
