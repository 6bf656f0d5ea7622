"""``salo gen``: Verilog + manifest for a config, and clear user errors."""

from __future__ import annotations

import json
import re

from sim.cli import main


def test_gen_small(tmp_path, capsys):
    out = tmp_path / "gen"
    assert main(["gen", "--preset", "small", "-o", str(out)]) == 0
    text = (out / "salo_top.v").read_text()
    man = json.loads((out / "manifest.json").read_text())
    from hw.config import preset
    cfg = preset("small")
    assert man["config"] == cfg.to_dict() and man["config_hash"] == cfg.hash()
    # every manifest port is a port of the Verilog module, with its width
    head = re.search(r"module salo_top\((.*?)\);", text, re.S).group(1)
    vports = {p.strip() for p in head.replace("\n", " ").split(",")}
    assert {p["name"] for p in man["ports"]} == vports
    for p in man["ports"]:
        m = re.search(rf"^\s*(input|output) (?:\[(\d+):0\] )?\\?{re.escape(p['name'])}\s*;",
                      text, re.M)
        assert m, p["name"]
        assert m.group(1) == p["direction"]
        assert (int(m.group(2)) + 1 if m.group(2) else 1) == p["width"], p
    assert man["buffers"]["kv_capacity"] >= cfg.kv_buffer_rows
    assert man["buffers"]["out_rows"] <= cfg.out_buffer_rows
    assert "DATA_STARVED" in man["error_codes"] and "useful_macs" in man["counters"]
    assert "wrote" in capsys.readouterr().out


def test_gen_bad_config(tmp_path, capsys):
    assert main(["gen", "--config", str(tmp_path / "nope.json"), "-o", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"rows": 4, "out_buffer_rows": 4}))
    assert main(["gen", "--config", str(bad), "-o", str(tmp_path / "o")]) == 2
    assert "out_buffer_rows" in capsys.readouterr().err
