"""fpga.sta on a hand-written routed netlist + SDF (no nextpnr needed).

    ff1.Q -> lut_a.A/F -> lut_b.B/F -> ff2.DI          (the critical path)
    ff1.Q -> lut_c.A/F -> lut_d.A/F -> ff3.M            (lut_d.F -> lut_c.B: a loop)
    in$tr_io.O -> lut_b.A                               (an I/O pad, timed only with io=True)

Cell names use the characters nextpnr escapes in SDF (``$ [ ] \\``).
"""

from __future__ import annotations

import json

import pytest

from fpga.sta import analyze, format_report, main, module_group, parse_sdf

FF2 = "top.blk.$ff2[0]"      # SDF: top.blk.\$ff2\[0\]
FF3 = "\\$ff3"               # a Yosys escaped name kept with its backslash; SDF: \\\$ff3

SDF = r"""(DELAYFILE
  (SDFVERSION "3.0")
  (DESIGN "top")
  (DIVIDER /)
  (TIMESCALE 1ps)
  (CELL
    (CELLTYPE "top")
    (INSTANCE )
    (DELAY
      (ABSOLUTE
        (INTERCONNECT ff1/Q lut_a/A (800:900:1000) (700:800:950))
        (INTERCONNECT ff1/Q lut_c/A (200:200:200) (200:200:200))
        (INTERCONNECT lut_a/F lut_b/B (400:400:400) (400:400:400))
        (INTERCONNECT lut_b/F top.blk.\$ff2\[0\]/DI (600:600:600) (600:600:600))
        (INTERCONNECT lut_c/F lut_d/A (100:100:100) (100:100:100))
        (INTERCONNECT lut_d/F lut_c/B (100:100:100) (100:100:100))
        (INTERCONNECT lut_d/F \\\$ff3/M (50:50:50) (50:50:50))
        (INTERCONNECT in\$tr_io/O lut_b/A (5000:5000:5000) (5000:5000:5000))
      )
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_FF")
    (INSTANCE ff1)
    (DELAY (ABSOLUTE (IOPATH CLK Q (400:450:500) (400:450:500))))
  )
  (CELL (CELLTYPE "TRELLIS_COMB") (INSTANCE lut_a)
    (DELAY (ABSOLUTE (IOPATH A F (100:150:200) (100:150:200)))))
  (CELL (CELLTYPE "TRELLIS_COMB") (INSTANCE lut_b)
    (DELAY (ABSOLUTE (IOPATH A F (150:150:150) (150:150:150))
                     (IOPATH B F (250:280:300) (250:280:300)))))
  (CELL (CELLTYPE "TRELLIS_COMB") (INSTANCE lut_c)
    (DELAY (ABSOLUTE (IOPATH A F (100:100:100) (100:100:100))
                     (IOPATH B F (100:100:100) (100:100:100)))))
  (CELL (CELLTYPE "TRELLIS_COMB") (INSTANCE lut_d)
    (DELAY (ABSOLUTE (IOPATH A F (100:100:100) (100:100:100)))))
  (CELL
    (CELLTYPE "TRELLIS_FF")
    (INSTANCE top.blk.\$ff2\[0\])
    (DELAY (ABSOLUTE (IOPATH CLK Q (500:500:500) (500:500:500))))
    (TIMINGCHECK
      (SETUPHOLD (posedge DI) (posedge CLK) (100:100:100) (0:0:0))
      (SETUPHOLD (negedge DI) (posedge CLK) (100:100:100) (0:0:0)))
  )
  (CELL
    (CELLTYPE "TRELLIS_FF")
    (INSTANCE \\\$ff3)
    (TIMINGCHECK (SETUPHOLD (posedge M) (posedge CLK) (0:0:0) (300:300:300)))
  )
  (CELL (CELLTYPE "TRELLIS_IO") (INSTANCE in\$tr_io))
)
"""


def _cell(ctype, ins, outs):
    conns = {p: [b] for p, b in {**ins, **outs}.items()}
    dirs = {**{p: "input" for p in ins}, **{p: "output" for p in outs}}
    return {"type": ctype, "port_directions": dirs, "connections": conns}


NETLIST = {"modules": {"top": {
    "attributes": {"top": "00000000000000000000000000000001"},
    "cells": {
        "ff1": _cell("TRELLIS_FF", {"CLK": 2}, {"Q": 10}),
        "lut_a": _cell("TRELLIS_COMB", {"A": 10}, {"F": 11}),
        "lut_b": _cell("TRELLIS_COMB", {"A": 15, "B": 11}, {"F": 12}),
        "lut_c": _cell("TRELLIS_COMB", {"A": 10, "B": 14}, {"F": 13}),
        "lut_d": _cell("TRELLIS_COMB", {"A": 13}, {"F": 14}),
        FF2: _cell("TRELLIS_FF", {"CLK": 2, "DI": 12}, {}),
        FF3: _cell("TRELLIS_FF", {"CLK": 2, "M": 14}, {}),
        "in$tr_io": _cell("TRELLIS_IO", {}, {"O": 15}),
    },
    "netnames": {"clk": {"hide_name": 0, "bits": [2]}, "q1": {"hide_name": 0, "bits": [10]},
                 "$auto$q1": {"hide_name": 1, "bits": [10]}, "a_f": {"hide_name": 0, "bits": [11]},
                 "b_f": {"hide_name": 0, "bits": [12]}, "c_f": {"hide_name": 0, "bits": [13]},
                 "d_f": {"hide_name": 0, "bits": [14]}, "pad": {"hide_name": 0, "bits": [15]}},
}}}


@pytest.fixture
def files(tmp_path):
    (tmp_path / "routed.sdf").write_text(SDF)
    (tmp_path / "routed.json").write_text(json.dumps(NETLIST))
    return tmp_path


def test_parse_sdf_names_and_units():
    sdf = parse_sdf(SDF)
    assert set(sdf["cells"]) == {"ff1", "lut_a", "lut_b", "lut_c", "lut_d", FF2, FF3, "in$tr_io"}
    assert sdf["cells"]["lut_b"]["iopaths"] == [("A", "F", 0.15), ("B", "F", 0.3)]
    assert sdf["cells"][FF2]["setup"] == {"DI": (0.1, "CLK")}
    assert ((("ff1", "Q"), ("lut_a", "A"), 1.0)) in sdf["nets"]          # max of both triples
    assert ((("lut_d", "F"), (FF3, "M"), 0.05)) in sdf["nets"]
    # nextpnr's CVC mode: divider '.', dots inside names escaped; other time unit
    cvc = parse_sdf(r'(DELAYFILE (DIVIDER .) (TIMESCALE 100 ps)'
                    r' (CELL (CELLTYPE "X") (INSTANCE a\ b) (DELAY (ABSOLUTE (IOPATH A F (1:2:3)))))'
                    r' (CELL (CELLTYPE "top") (INSTANCE) (DELAY (ABSOLUTE'
                    r' (INTERCONNECT x\.y.Q a\ b.A (2) (4))))))')
    assert cvc["cells"]["a b"]["iopaths"] == [("A", "F", pytest.approx(0.3))]
    assert cvc["nets"] == [(("x.y", "Q"), ("a b", "A"), pytest.approx(0.4))]


def test_arrival_slack_and_loop(files):
    r = analyze(files / "routed.json", files / "routed.sdf", period_ns=2.5)
    ep = {(e["cell"], e["pin"]): e for e in r["endpoints"]}
    assert set(ep) == {(FF2, "DI"), (FF3, "M")}           # the pad is not timed by default
    e2 = ep[(FF2, "DI")]
    # 0.5 clk-to-q + 1.0 route + 0.2 lut_a + 0.4 route + 0.3 lut_b (B arc) + 0.6 route
    assert e2["arrival"] == pytest.approx(3.0, abs=1e-9)
    assert e2["slack"] == pytest.approx(2.5 - 0.1 - 3.0, abs=1e-9)
    assert (e2["start_cell"], e2["start_pin"], e2["levels"]) == ("ff1", "Q", 2)
    assert (e2["group"], e2["start_group"]) == ("top.blk", "<top>")
    # loop lut_c -> lut_d -> lut_c cut at the arc that closes it
    assert r["loops_broken"] == ["lut_c.B -> lut_c.F"]
    e3 = ep[(FF3, "M")]
    assert e3["arrival"] == pytest.approx(0.5 + 0.2 + 0.1 + 0.1 + 0.1 + 0.05, abs=1e-9)
    assert e3["slack"] == pytest.approx(2.5 - 1.05, abs=1e-9)
    assert r["wns"] == pytest.approx(-0.6, abs=1e-9) and r["tns"] == pytest.approx(-0.6, abs=1e-9)
    assert r["n_failing"] == 1 and r["fmax_mhz"] == pytest.approx(1000 / 3.1)
    assert [{k: v for k, v in g.items() if k != "worst_path"} for g in r["groups"]] == [
        {"start_group": "<top>", "end_group": "top.blk", "failing": 1,
         "worst_slack": pytest.approx(-0.6)}]
    # a group's worst path is its worst endpoint's (here the design's worst)
    assert r["groups"][0]["worst_path"] == r["worst_path"]
    hops = [(h["type"], h["cell"], h["pin"], h["net"], round(h["incr"], 9), round(h["total"], 9))
            for h in r["worst_path"]]
    assert hops == [("clk-to-q", "ff1", "Q", "", 0.5, 0.5),
                    ("routing", "lut_a", "A", "q1", 1.0, 1.5),
                    ("logic", "lut_a", "F", "", 0.2, 1.7),
                    ("routing", "lut_b", "B", "a_f", 0.4, 2.1),
                    ("logic", "lut_b", "F", "", 0.3, 2.4),
                    ("routing", FF2, "DI", "b_f", 0.6, 3.0),
                    ("setup", FF2, "DI", "", 0.1, 3.1)]
    assert r["warnings"] == []


def test_io_paths(files):
    r = analyze(files / "routed.json", files / "routed.sdf", period_ns=2.5, io=True)
    e = r["endpoints"][0]
    assert (e["cell"], e["start_cell"], e["start_pin"]) == (FF2, "in$tr_io", "O")
    assert e["arrival"] == pytest.approx(5.0 + 0.15 + 0.6, abs=1e-9)
    assert r["worst_path"][0]["type"] == "source"


def test_module_group():
    assert module_group("top.kvbuf.bank3.mem_TRELLIS_FF_Q") == "top.kvbuf"
    assert module_group("dut.mac.$1_MULT18X18D_P9") == "dut.mac"
    assert module_group("dut.m_0_TRELLIS_FF_Q_6") == "dut"
    assert module_group("dut.$auto$ff.cc:266$1.x") == "dut"
    assert module_group("load$tr_io") == "<top>"
    assert module_group("\\$1_TRELLIS_FF_Q_51") == "<top>"
    assert module_group("a.b.c.d", depth=3) == "a.b.c"


def test_cli(files, capsys):
    assert main([str(files), "--period-ns", "2.5", "--top", "5"]) == 0
    out = capsys.readouterr().out
    assert "WNS -0.600 ns" in out and "1/2 endpoints failing" in out
    assert "<top> -> top.blk" in out and "lut_c.B -> lut_c.F" in out
    assert format_report(analyze(None, files / "routed.sdf", 10.0)).startswith("period 10 ns")
