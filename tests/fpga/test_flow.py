"""``salo synth`` / fpga.flow: argument handling, design choice, report parsing.

Fast tests run Yosys only on a 1x1 MAC grid (a few seconds once YoWASP has
compiled its WebAssembly; the very first call of each tool on a machine
takes ~30-100 s more).  Place and route runs are marked slow:

    pytest -m slow tests/fpga
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from fpga import designs
from fpga.designs import DesignUnavailable, SerialShell
from fpga.flow import (DEFAULT_PNR_OPTS, DEFAULT_PNR_SETTINGS, TARGETS, FlowError, design_for, parse_nextpnr_report, parse_seeds,
                       parse_pnr_opts, parse_pnr_settings, parse_yosys_stat, run_flow)
from hw.config import preset
from sim.cli import build_parser, main

TINY = dataclasses.replace(preset("small"), rows=1, cols=1, global_rows=0, global_cols=0)


# ------------------------------------------------------------ arguments
def test_arguments_parse():
    a = build_parser().parse_args(["synth", "--preset", "fpga", "--target", "xc7",
                                   "--design", "mac-grid", "-o", "x", "--freq", "50",
                                   "--no-pnr", "--sweep", "4x4,8x16"])
    assert (a.target, a.design, a.out, a.freq, a.no_pnr) == ("xc7", "mac-grid", "x", 50.0, True)
    assert a.sweep == [(4, 4), (8, 16)]
    d = build_parser().parse_args(["synth"])
    assert (d.target, d.design, d.freq, d.synth_opts, d.out) == ("ecp5-85f", "auto", 100.0, "", None)
    assert d.router == "router2"
    assert build_parser().parse_args(["synth", "--router", "router1"]).router == "router1"
    assert d.pnr_opts == DEFAULT_PNR_OPTS
    e = build_parser().parse_args(["synth", "--pnr-opts=--router2-alt-weights"])
    assert parse_pnr_opts(e.pnr_opts) == ["--router2-alt-weights"]
    assert parse_pnr_opts("--placer-heap-timingweight 20 --router2-alt-weights") == [
        "--placer-heap-timingweight", "20", "--router2-alt-weights"]
    assert d.pnr_settings == DEFAULT_PNR_SETTINGS
    assert parse_pnr_settings(DEFAULT_PNR_SETTINGS) == {"router2/bbMargin/x": "6",
                                                        "router2/bbMargin/y": "6"}
    assert parse_pnr_settings(" router2/estimateWeight=1.5 ") == {"router2/estimateWeight": "1.5"}
    assert parse_pnr_settings("") == {}


def test_seeds_parse():
    assert build_parser().parse_args(["synth"]).seed == "1"
    assert parse_seeds(build_parser().parse_args(["synth", "--seed", "3,1"]).seed) == (3, 1)
    assert parse_seeds(" 2 ") == (2,) and parse_seeds(4) == (4,) and parse_seeds([1, 2]) == (1, 2)


@pytest.mark.parametrize("seed", ["", "1,,x", "1,1", "-2", [], [1, True], 2**31, "1.5"])
def test_seeds_rejected(seed):
    with pytest.raises(FlowError, match="--seed .* is invalid: allowed one or more distinct "
                                        "integers"):
        parse_seeds(seed)


@pytest.mark.parametrize("text", ["router2/bbMargin/x", "bbMargin=6", "router2/x=", "a/b=1;rm",
                                  "router2/bbMargin/x=6 =3"])
def test_pnr_settings_rejected(text):
    with pytest.raises(FlowError, match="--pnr-settings .* is invalid: allowed KEY=VALUE"):
        parse_pnr_settings(text)


@pytest.mark.parametrize("argv, msg", [
    (["synth", "--target", "ice40"], "invalid choice: 'ice40'"),
    (["synth", "--design", "cpu"], "invalid choice: 'cpu'"),
    (["synth", "--sweep", "4by4"], "bad size '4by4'"),
    (["synth", "--router", "router3"], "invalid choice: 'router3'"),
    (["synth", "--placer", "sa"], "invalid choice: 'sa'"),
])
def test_bad_arguments_are_rejected(argv, msg, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert msg in capsys.readouterr().err


def test_bad_paths_and_values(tmp_path, capsys):
    f = tmp_path / "a_file"
    f.write_text("")
    assert main(["synth", "--preset", "small", "-o", str(f)]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    assert main(["synth", "--config", str(tmp_path / "nope.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["synth", "--md", "x.md"]) == 2
    assert "--md needs --sweep" in capsys.readouterr().err
    with pytest.raises(FlowError, match="unknown target"):
        run_flow(TINY, target="virtex2")
    with pytest.raises(FlowError, match="out of range"):
        run_flow(TINY, freq_mhz=0)
    with pytest.raises(FlowError, match="--router 'vpr' is invalid: allowed router1, router2"):
        run_flow(TINY, router="vpr")
    with pytest.raises(FlowError, match="--placer 'sa' is invalid: allowed heap, static"):
        run_flow(TINY, placer="sa")
    with pytest.raises(FlowError, match="--placer is set by salo synth"):
        run_flow(TINY, pnr_opts="--placer heap")
    with pytest.raises(FlowError, match="--pnr-opts '--seed 3': --seed is set by salo synth"):
        run_flow(TINY, pnr_opts="--seed 3")
    with pytest.raises(FlowError, match="--threads is set by salo synth"):
        run_flow(TINY, pnr_opts="--threads=4")
    with pytest.raises(FlowError, match="--tmg-ripup is set by salo synth"):
        run_flow(TINY, pnr_opts="--tmg-ripup")
    with pytest.raises(FlowError, match="--json is set by salo synth"):
        run_flow(TINY, pnr_opts="--router2-alt-weights --json=x.json")
    with pytest.raises(FlowError, match="cannot be split"):
        run_flow(TINY, pnr_opts="--router2-alt-weights '")
    with pytest.raises(FlowError, match="no ';'"):
        run_flow(TINY, design="mac-grid", synth_opts="-dff; shell", out_dir=tmp_path / "o")


# ------------------------------------------------------------ design choice
def test_auto_falls_back_and_says_why(monkeypatch):
    real = designs._build_one

    def fake(name, cfg, top_name, platform=None):
        if name in ("top", "array"):
            raise DesignUnavailable(f"{name} missing in this test")
        return real(name, cfg, top_name, platform)

    monkeypatch.setattr(designs, "_build_one", fake)
    d = design_for(TINY, "auto")
    assert d.name == "pe-row"
    assert d.notes == ["top: skipped: top missing in this test",
                       "array: skipped: array missing in this test"]


def test_explicit_unavailable_design_is_a_user_error(monkeypatch, capsys):
    def fake(name, cfg, top_name, platform=None):
        raise DesignUnavailable("hw.top does not exist yet")
    monkeypatch.setattr(designs, "_build_one", fake)
    assert main(["synth", "--preset", "small", "--design", "top"]) == 2
    assert "design 'top' cannot be built: hw.top does not exist yet" in capsys.readouterr().err


def test_mac_grid_shell_bit_counts():
    cfg = dataclasses.replace(TINY, rows=2, cols=3)
    d = design_for(cfg, "mac-grid")
    dw, aw = cfg.data_width, cfg.acc_width
    assert d.shell_in_bits == 2 * dw + (2 + 3 - 1) * dw + 2
    assert d.shell_out_bits == 2 * 3 * aw
    assert "module salo_fpga_top" in d.verilog


def test_shell_rejects_non_components():
    with pytest.raises(TypeError, match="wiring.Component"):
        SerialShell(object())


# ------------------------------------------------------------ report parsing
def test_parse_nextpnr_report_shape():
    rep = {
        "fmax": {"$glbnet$clk$TRELLIS_IO_IN": {"achieved": 81.5, "constraint": 100}},
        "utilization": {"TRELLIS_COMB": {"used": 10, "available": 83640},
                        "TRELLIS_FF": {"used": 5, "available": 83640},
                        "MULT18X18D": {"used": 1, "available": 156},
                        "DP16KD": {"used": 0, "available": 208},
                        "TRELLIS_IO": {"used": 5, "available": 365}},
        "critical_paths": [{"from": "posedge $glbnet$clk$TRELLIS_IO_IN",
                            "to": "posedge $glbnet$clk$TRELLIS_IO_IN", "path": [
                                {"type": "clk-to-q", "delay": 0.5, "from": {"cell": "a", "port": "Q"},
                                 "to": {"cell": "a", "port": "Q"}},
                                {"type": "routing", "delay": 1.0, "net": "n1",
                                 "from": {"cell": "a", "port": "Q"}, "to": {"cell": "m", "port": "A"}},
                                {"type": "logic", "delay": 4.0, "from": {"cell": "m", "port": "A"},
                                 "to": {"cell": "m", "port": "P"}},
                                {"type": "routing", "delay": 1.0, "net": "n2",
                                 "from": {"cell": "m", "port": "P"}, "to": {"cell": "b", "port": "DI"}},
                                {"type": "setup", "delay": 0.1, "from": {"cell": "b", "port": "DI"},
                                 "to": {"cell": "b", "port": "DI"}}]}]}
    p = parse_nextpnr_report(rep)
    assert p["fmax"] == {"clk": {"achieved_mhz": 81.5, "constraint_mhz": 100.0,
                                 "net": "$glbnet$clk$TRELLIS_IO_IN"}}
    cp = p["critical_paths"][0]
    assert (cp["start"], cp["end"], cp["start_net"], cp["end_net"]) == ("a.Q", "b.DI", "n1", "n2")
    assert cp["delay_ns"] == 6.6 and cp["logic_levels"] == 1 and cp["register_to_register"]
    assert p["resources"]["dsp"] == {"used": 1, "available": 156}


def test_parse_yosys_stat_counts_carry_cells_as_two_luts():
    stat = {"design": {"num_cells_by_type": {"LUT4": 10, "CCU2C": 3, "TRELLIS_FF": 7,
                                             "MULT18X18D": 2, "DP16KD": 1, "PFUMX": 4}}}
    r = parse_yosys_stat(stat, "ecp5")
    assert (r["lut"], r["ff"], r["dsp"], r["bram"]) == (16, 7, 2, 1)
    x = parse_yosys_stat({"design": {"num_cells_by_type": {
        "LUT2": 3, "LUT6": 4, "FDRE": 5, "FDSE": 1, "DSP48E1": 2, "RAMB18E1": 3, "CARRY4": 2}}},
        "xc7")
    assert (x["lut"], x["ff"], x["dsp"], x["bram"]) == (7, 6, 2, 2)


# ------------------------------------------------------------ real tools
@pytest.mark.parametrize("target", ["ecp5-85f",
                                    pytest.param("xc7", marks=pytest.mark.slow)])
def test_synthesis_only_of_a_tiny_design(tmp_path, target):
    """Real Yosys run (no P&R): one 9x9 MAC -> exactly one multiplier block."""
    rep = run_flow(TINY, target=target, design="mac-grid", out_dir=tmp_path / "o",
                   place_and_route=False)
    on_disk = json.loads((tmp_path / "o" / "report.json").read_text())
    assert on_disk == json.loads(json.dumps(rep))
    assert rep["design"]["name"] == "mac-grid"
    assert rep["fmax"] == {} and "place_s" not in rep["times"] and "route_s" not in rep["times"]
    r = rep["resources"]
    assert r["dsp"]["used"] == 1, rep["synthesis"]["cells"]
    # shell: 20 input bits + 18 output bits; the accumulator: 18
    assert r["ff"]["used"] >= 20 + 18 + 18
    assert r["lut"]["used"] > 0
    assert r["lut"]["available"] == TARGETS[target].capacity["lut"]
    if target == "xc7":
        assert "synthesis-only" in rep["target"]["note"]
    assert (tmp_path / "o" / "yosys.log").is_file()


@pytest.mark.slow
def test_place_and_route_2x2(tmp_path, capsys):
    """Full ECP5 flow through the CLI on a 2x2 MAC grid (~1-2 min)."""
    cfg = dataclasses.replace(TINY, rows=2, cols=2)
    path = tmp_path / "cfg.json"
    cfg.save(path)
    out = tmp_path / "o"
    assert main(["synth", "--config", str(path), "--design", "mac-grid", "-o", str(out),
                 "--freq", "50"]) == 0
    text = capsys.readouterr().out
    assert "Fmax     clk:" in text and "critical register" in text
    rep = json.loads((out / "report.json").read_text())
    f = rep["fmax"]["clk"]
    assert f["constraint_mhz"] == 50.0 and 20.0 < f["achieved_mhz"] < 500.0
    assert rep["resources"]["dsp"] == {"used": 4, "available": 156, "source": "nextpnr"}
    assert rep["resources"]["io"]["used"] == 5      # clk, rst, sdi, load, sdo
    assert rep["times"]["place_s"] > 0 and rep["times"]["route_s"] > 0
    assert (out / "place.log").is_file() and (out / "nextpnr.log").is_file()
    # the router (default router2) is given to both nextpnr calls: the placed
    # netlist stores it, and routing from it uses the stored one
    assert rep["options"]["router"] == "router2"
    placed = json.loads((out / "placed.json").read_text())
    assert {m.get("settings", {}).get("router") for m in placed["modules"].values()} >= {"router2"}
    assert "Running router2" in (out / "nextpnr.log").read_text()
    # the router settings reach nextpnr through the placed netlist: its
    # routed netlist carries them (nextpnr writes the settings it ran with)
    assert rep["options"]["pnr_settings"] == DEFAULT_PNR_SETTINGS
    routed = json.loads((out / "routed.json").read_text())
    assert [m["settings"].get("router2/bbMargin/x") for m in routed["modules"].values()
            if "settings" in m] == ["6"]
    assert "settings router2/bbMargin/x=6" in text
    # the placer (default heap) is nextpnr's
    assert rep["options"]["placer"] == "heap"
    assert {m.get("settings", {}).get("placer") for m in placed["modules"].values()} >= {"heap"}
    assert "heap placer" in text
    # the post-placement estimate is reported (printed before routing)
    est = rep["placement_estimate"]
    assert "error" not in est and est["endpoints"] > 0 and est["fmax_mhz"] > 1.0
    assert "estimate " in text and "after placement" in text
    regs = [p for p in rep["critical_paths"] if p["register_to_register"]]
    assert regs and regs[0]["start"] and regs[0]["end"]
    # the every-endpoint analysis agrees with nextpnr's Fmax (same routed delays)
    ts = rep["timing_summary"]
    assert "error" not in ts and ts["endpoints"] > 0
    assert abs(ts["fmax_mhz"] - f["achieved_mhz"]) < 0.02 * f["achieved_mhz"]
    assert "timing   " in text and "endpoints fail" in text

    # a routing time limit too short to route: no routed Fmax, and the
    # report says so; the placement estimate stays
    out2 = tmp_path / "o2"
    assert main(["synth", "--config", str(path), "--design", "mac-grid", "-o", str(out2),
                 "--freq", "50", "--route-timeout", "0.001", "--pnr-opts=--router2-alt-weights",
                 "--placer", "static"]) == 0
    text2 = capsys.readouterr().out
    rep2 = json.loads((out2 / "report.json").read_text())
    assert rep2["options"]["placer"] == "static" and "static placer" in text2
    placed2 = json.loads((out2 / "placed.json").read_text())
    assert {m.get("settings", {}).get("placer") for m in placed2["modules"].values()} >= {"static"}
    assert rep2["options"]["pnr_opts"] == "--router2-alt-weights"
    assert "extra options --router2-alt-weights" in text2
    assert rep2["fmax"] == {} and "routing stopped after" in rep2["route_stopped"]
    assert "Fmax     not measured: routing stopped" in text2
    assert rep2["placement_estimate"]["fmax_mhz"] > 1.0


@pytest.mark.slow
def test_several_seeds_keep_the_best(tmp_path, capsys):
    """``--seed 1,2`` on a 1x1 MAC grid (~1 min): both seeds placed and routed
    in their folders, the best routed Fmax kept in the output folder, both
    in the report."""
    path = tmp_path / "cfg.json"
    TINY.save(path)
    out = tmp_path / "o"
    assert main(["synth", "--config", str(path), "--design", "mac-grid", "-o", str(out),
                 "--freq", "50", "--seed", "1,2"]) == 0
    text = capsys.readouterr().out
    rep = json.loads((out / "report.json").read_text())
    runs = rep["seed_runs"]
    assert [r["seed"] for r in runs] == [1, 2] and rep["options"]["seeds"] == [1, 2]
    assert all(r["fmax_mhz"] > 1.0 for r in runs)
    best = max(runs, key=lambda r: r["fmax_mhz"])
    assert rep["options"]["seed"] == best["seed"]
    assert rep["fmax"]["clk"]["achieved_mhz"] == pytest.approx(best["fmax_mhz"], abs=0.01)
    # the kept seed's netlists are in the output folder, the others' deleted
    # (their logs and reports stay)
    moved = parse_nextpnr_report(json.loads((out / "nextpnr-report.json").read_text()))
    assert moved["fmax"]["clk"]["achieved_mhz"] == pytest.approx(best["fmax_mhz"], abs=0.01)
    for r in runs:
        sd = out / f"seed{r['seed']}"
        assert (sd / "nextpnr.log").is_file() or r["seed"] == best["seed"]
        assert not (sd / "routed.json").exists() and not (sd / "synth.json").exists()
    assert (out / "routed.json").is_file() and (out / "nextpnr.log").is_file()
    assert f"kept seed {best['seed']}" in text and "(best of 1, 2)" in text
    assert sum(line.startswith("seed ") for line in text.splitlines()) == 2


#: the smallest configuration of the real accelerator (2x2, tiny buffers)
TINY_TOP = dataclasses.replace(preset("small"), rows=2, cols=2, global_rows=0, global_cols=0,
                               max_head_dim=4, kv_buffer_rows=4,
                               out_buffer_rows=4)


@pytest.mark.slow
def test_auto_design_place_and_route_names_it(tmp_path):
    """``auto`` = the accelerator top (when hw.top exists) through the whole
    ECP5 flow on the smallest config (a few minutes); the report names it."""
    expected = design_for(TINY_TOP, "auto")
    rep = run_flow(TINY_TOP, design="auto", out_dir=tmp_path / "o", freq_mhz=50)
    assert rep["design"]["name"] == expected.name
    assert rep["design"]["description"] == expected.description
    assert rep["resources"]["lut"]["used"] > 0 and rep["fmax"]["clk"]["achieved_mhz"] > 1.0


@pytest.mark.parametrize("predicted", [True, False])
def test_too_many_multipliers_fall_back_to_luts(tmp_path, monkeypatch, predicted):
    """More multipliers than DSP blocks: synthesized with -nodsp, and said so.
    Predicted from the Verilog (one synthesis) or found after synthesis (two)."""
    import fpga.flow as flow
    small = dataclasses.replace(TARGETS["ecp5-85f"], capacity={"lut": 83640, "ff": 83640,
                                                               "dsp": 0, "bram": 208})
    monkeypatch.setitem(flow.TARGETS, "ecp5-85f", small)
    if not predicted:
        monkeypatch.setattr(flow, "count_variable_multiplications", lambda text: 0)
    rep = run_flow(TINY, design="mac-grid", out_dir=tmp_path / "o", place_and_route=False)
    assert rep["resources"]["dsp"]["used"] == 0
    assert "-nodsp" in rep["options"]["synth_command"]
    assert len(rep["flow_notes"]) == 1 and "MULT18X18D" in rep["flow_notes"][0]
    assert ("synth_first_s" in rep["times"]) == (not predicted)
    assert rep["resources"]["lut"]["used"] > 108     # the 9x9 multiplier is now LUTs


def test_count_variable_multiplications():
    from fpga.flow import count_variable_multiplications as count
    text = ("  assign a = b * 4'h9;\n"                               # constant: no DSP
            "  assign c = $signed(q) * $signed(k);\n"                # DSP
            "  assign x = 5'sh3 * y;\n"                               # constant
            "  assign p = $signed({ 1'h0, mant }) * $signed(value);\n"  # DSP
            "  assign w = $signed({ 1'h0, 4'h3 }) * v;\n")             # constant
    assert count(text) == 2
    assert count(design_for(dataclasses.replace(TINY, rows=2, cols=3), "mac-grid").verilog) == 6
    # one PE: q*k and m*v, inferred (no platform) or instantiated (ECP5)
    assert count(design_for(TINY, "pe").verilog) == 2
    assert count(design_for(TINY, "pe", "ecp5").verilog) == 2
    assert "MULT18X18D" in design_for(TINY, "pe", "ecp5").verilog


def test_scaling_markdown_sections(tmp_path):
    """Each sweep owns one section of the Markdown file; rewriting a section
    keeps the others; a failed size is listed."""
    from fpga.scaling import write_markdown
    rep = run_flow(TINY, design="mac-grid", out_dir=tmp_path / "o", place_and_route=False)
    md = tmp_path / "scaling.md"
    rows = [(1, 1, rep), (300, 1, {"error": "config field 'rows' = 300 is invalid"})]
    write_markdown(rows, md, command="salo synth A", key="a", pending=[(2, 2)])
    write_markdown(rows[:1], md, command="salo synth B", key="b")
    write_markdown(rows[:1], md, command="salo synth A2", key="a")
    text = md.read_text()
    assert text.count("<!-- series: a -->") == 1 and text.count("<!-- series: b -->") == 1
    assert "salo synth A2" in text and "salo synth A\n" not in text and "salo synth B" in text
    assert text.index("series: a") < text.index("series: b")
    assert "| 1x1 | mac-grid |" in text
    write_markdown(rows, md, command="salo synth A3", key="a", pending=[(2, 2)])
    text = md.read_text()
    assert "FAILED: config field 'rows' = 300" in text and "Not run yet" in text and "2x2" in text
