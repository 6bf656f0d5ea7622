"""cocotb module for tests/hw/test_runner.py: one passing and one failing
test, so the runner's failure report can be checked (runs on ScoreMac)."""

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from sim.runner import tb_params


@cocotb.test()
async def passes(dut):
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 0
    dut.en.value = 1
    dut.clear.value = 1
    dut.q.value = 3
    dut.k.value = -5
    await FallingEdge(dut.clk)
    await FallingEdge(dut.clk)
    assert dut.acc.value.to_signed() == -15
    assert tb_params() == {"marker": 42}


@cocotb.test()
async def fails_on_purpose(dut):
    Clock(dut.clk, 10, unit="ns").start()
    await FallingEdge(dut.clk)
    assert False, "planted failure 1234"
