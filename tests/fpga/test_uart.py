"""UART loopback through the pins (Verilator + cocotb, ``tests/fpga/tb_uart.py``)
and the divisor checks."""

from __future__ import annotations

import pytest

from fpga.uart import UartLoopback, uart_divisor

# (clk_freq, baud): a fast link (16 clocks per bit: many frames quickly) and
# the ULX3S's real one (25 MHz, 115200 baud: 217 clocks per bit)
FAST = (48e6, 3e6)
ULX3S = (25e6, 115200)


def _run(rtl, clk_freq, baud, **params):
    p = {"clk_freq": clk_freq, "baud": baud, "seed": 1, "frames": 8, "max_payload": 24,
         "host_scale": 1.0, "max_gap_bits": 2.5}
    p.update(params)
    testcase = p.pop("testcase", None)
    rtl(lambda: UartLoopback(clk_freq=clk_freq, baud=baud, fifo_depth=32),
        name="uart_loopback", key={"clk_freq": clk_freq, "baud": baud, "fifo_depth": 32},
        test_module="tests.fpga.tb_uart", params=p, top_only=True, testcase=testcase)


def test_loopback_fast_all(rtl):
    """All testbench cases at 16 clocks per bit, 12 random frames."""
    _run(rtl, *FAST, frames=12, seed=7)


@pytest.mark.parametrize("host_scale", [0.98, 1.02])
def test_loopback_host_clock_off_by_2_percent(rtl, host_scale):
    _run(rtl, *FAST, host_scale=host_scale, frames=6, seed=int(host_scale * 100),
         testcase="loopback_frames")


@pytest.mark.slow
def test_loopback_ulx3s_rate(rtl):
    """The board's 25 MHz clock and 115200 baud (divisor 217)."""
    _run(rtl, *ULX3S, frames=2, max_payload=10, all_bytes=False, testcase="loopback_frames")


def test_divisor():
    assert uart_divisor(25e6, 115200) == 217
    assert uart_divisor(48e6, 3e6) == 16
    with pytest.raises(ValueError, match=">= 4"):
        uart_divisor(10e6, 5e6)
    with pytest.raises(ValueError, match="off by"):
        uart_divisor(1e6, 230400)   # 4.34 -> 4: 8.5% fast
    with pytest.raises(ValueError, match="positive"):
        uart_divisor(0, 9600)
