"""8N1 software UART for cocotb testbenches: drives the DUT's ``rx`` pin and
samples its ``tx`` pin, with bit timing in picoseconds (independent of the
DUT clock).  Shared by the UART and the board-link testbenches."""

from __future__ import annotations

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, Timer


class SoftUart:
    """8N1 software UART on the DUT's ``rx`` (we drive) and ``tx`` (we sample).

    Received bytes go to :meth:`on_byte` (default: appended to
    ``received``); ``stop_errors`` counts bytes whose stop bit was low."""

    def __init__(self, dut, baud: float):
        self.dut = dut
        self.bit_ps = int(round(1e12 / baud))
        self.received = bytearray()
        self.stop_errors = 0

    async def idle(self, bits: float):
        if bits > 0:
            await Timer(max(1, int(bits * self.bit_ps)), unit="ps")

    async def send_byte(self, b: int, stop: int = 1):
        rx = self.dut.rx
        rx.value = 0
        await Timer(self.bit_ps, unit="ps")
        for i in range(8):
            rx.value = (b >> i) & 1
            await Timer(self.bit_ps, unit="ps")
        rx.value = stop
        await Timer(self.bit_ps, unit="ps")
        rx.value = 1

    async def write(self, data: bytes):
        for b in data:
            await self.send_byte(b)

    def on_byte(self, b: int):
        self.received.append(b)

    async def receiver(self):
        """Forever: wait for a start bit on tx, sample at bit centres."""
        tx = self.dut.tx
        while True:
            await FallingEdge(tx)
            await Timer(self.bit_ps // 2, unit="ps")
            assert int(tx.value) == 0, "start bit not low at its centre (glitch on tx)"
            b = 0
            for i in range(8):
                await Timer(self.bit_ps, unit="ps")
                b |= int(tx.value) << i
            await Timer(self.bit_ps, unit="ps")
            if int(tx.value) != 1:
                self.stop_errors += 1
            self.on_byte(b)


async def start_serial_dut(dut, clk_freq: float, uart: SoftUart) -> SoftUart:
    """Idle ``rx`` high, start the clock, reset for 3 cycles, then start
    ``uart``'s receiver; returns ``uart``."""
    period_ps = 2 * int(round(1e12 / clk_freq / 2))     # even: Clock needs equal halves
    dut.rx.value = 1
    dut.rst.value = 1
    Clock(dut.clk, period_ps, unit="ps").start()
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)
    cocotb.start_soon(uart.receiver())
    return uart
