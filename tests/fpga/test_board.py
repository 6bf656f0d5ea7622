"""ULX3S board shell: pin file contents (fast) and a full bitstream build (slow)."""

from __future__ import annotations

import json
import re

import pytest

from fpga.boards.ulx3s import LPF, Ulx3sEcho, build_echo


def _sites():
    text = LPF.read_text()
    return dict(re.findall(r'LOCATE COMP "([^"]+)" SITE "([A-Z0-9]+)";', text))


def test_lpf_pins():
    s = _sites()
    assert s["clk_25mhz"] == "G2"
    # FTDI's TXD is the FPGA's input (RX), its RXD the FPGA's output (TX)
    assert s["ftdi_txd"] == "M1" and s["ftdi_rxd"] == "L4"
    assert [s[f"led[{i}]"] for i in range(8)] == "B2 C2 C1 D2 D1 E2 E1 H3".split()
    assert s["wifi_gpio0"] == "L2"


def test_top_ports_match_the_lpf():
    from amaranth.back import verilog
    v = verilog.convert(Ulx3sEcho(), name="ulx3s_echo", emit_src=False)
    v = v[v.index("module ulx3s_echo("):]
    v = v[:v.index("endmodule")]
    ports = set(re.findall(r"^\s*(?:input|output)\s+(?:\[\d+:0\]\s+)?(\w+);", v, re.M))
    lpf_ports = {re.sub(r"\[\d+\]$", "", n) for n in _sites()}
    assert ports == lpf_ports, (ports, lpf_ports)
    assert re.search(r"input\s+ftdi_txd;", v) and re.search(r"output\s+ftdi_rxd;", v)


@pytest.mark.slow
def test_echo_bitstream_builds(tmp_path):
    """Synthesis, P&R with the LPF (every pin placed) and ecppack (~1 min)."""
    rep = build_echo(tmp_path / "o")
    bit = tmp_path / "o" / "ulx3s_echo.bit"
    assert bit.is_file() and bit.stat().st_size > 100_000
    assert rep["fmax"]["clk_25mhz"]["achieved_mhz"] > 25.0
    log = (tmp_path / "o" / "nextpnr.log").read_text()
    for pin in ("clk_25mhz", "ftdi_txd", "ftdi_rxd", "wifi_gpio0", "led[7]"):
        assert f"pin '{pin}$tr_io' constrained" in log, pin
    assert json.loads((tmp_path / "o" / "report.json").read_text())["board"] == "ULX3S 85F"
