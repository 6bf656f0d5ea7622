"""UART receiver and transmitter (8N1) with ``amaranth.lib.stream`` interfaces.

Both units count ``divisor = round(clk_freq / baud)`` clock cycles per bit.
The rounding error of the bit rate must stay within +-1.5 % (checked on
construction: a receiver re-synchronizes on every start bit, so the error
accumulates over 9.5 bits and has to stay well inside half a bit), and the
divisor must be at least 4.

:class:`UartTx`
    ``i``: stream of bytes in (``payload`` 8 bits, ``valid``, ``ready``);
    ``tx``: the serial line out (idle high).

    Registered: ``tx`` is a flip-flop (no combinational path from ``i`` to
    ``tx``); ``i.ready`` is a flip-flop-derived signal (high while idle).
    Latency: the start bit begins on the clock edge that accepts the byte
    (``valid & ready``), i.e. ``tx`` is low from the next cycle on.  Start
    bit, 8 data bits (LSB first) and the stop bit last ``divisor`` cycles
    each; ``ready`` rises in the last cycle of the stop bit, so back to back
    a byte takes ``10 * divisor + 1`` cycles (the stop bit is one cycle
    longer).

:class:`UartRx`
    ``rx``: the serial line in (asynchronous: a 2-flip-flop synchronizer
    comes first); ``o``: stream of received bytes out; ``frame_error`` and
    ``overrun``: one-cycle pulses.

    A falling edge starts a byte; the start bit is checked again half a bit
    later (shorter low pulses are ignored as glitches); each data bit and
    the stop bit are sampled once, at the centre of the bit.  A stop bit of
    0 pulses ``frame_error``, drops the byte, and the receiver waits for the
    line to go high again before looking for a start bit (a break is not
    read as a stream of 0x00 bytes).  The receiver returns to idle at the
    centre of the stop bit, so the next start bit may come up to half a bit
    early (a faster sender).
    Registered: ``o.payload``, ``o.valid`` (an output register that holds
    the byte until ``o.ready``), both pulses.  Latency: ``o.valid`` rises
    ``divisor // 2 + 3`` cycles after the stop bit begins on ``rx`` (2 for the
    synchronizer, 1 for the output register).  If the previous byte is
    still unread when a new one completes, the new byte is dropped and
    ``overrun`` pulses.

:class:`UartLoopback`
    ``UartRx -> SyncFIFOBuffered(fifo_depth) -> UartTx``: echoes every byte.
    Used by the tests and as the first board bring-up design.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["UartRx", "UartTx", "UartLoopback", "uart_divisor"]

#: largest accepted relative bit-rate error of the rounded divisor
MAX_BAUD_ERROR = 0.015


def uart_divisor(clk_freq: float, baud: float) -> int:
    """Clock cycles per bit, ``round(clk_freq / baud)``; raises ``ValueError``
    if it is below 4 or the bit rate it gives is off by more than 1.5 %."""
    if clk_freq <= 0 or baud <= 0:
        raise ValueError(f"clk_freq ({clk_freq}) and baud ({baud}) must be positive")
    div = round(clk_freq / baud)
    if div < 4:
        raise ValueError(f"clk_freq/baud = {clk_freq / baud:.3f} is invalid: allowed >= 4 "
                         f"clock cycles per bit")
    err = abs(clk_freq / div - baud) / baud
    if err > MAX_BAUD_ERROR:
        raise ValueError(f"baud {baud} from a {clk_freq} Hz clock is off by {100 * err:.2f}% "
                         f"with divisor {div}; allowed {100 * MAX_BAUD_ERROR}%")
    return div


class UartTx(wiring.Component):
    """8N1 transmitter; see the module docstring for latency and registers."""

    def __init__(self, *, clk_freq: float, baud: float):
        self.clk_freq, self.baud = clk_freq, baud
        self.divisor = uart_divisor(clk_freq, baud)
        super().__init__({"i": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        div = self.divisor
        timer = Signal(range(div), name="tx_timer")
        bits = Signal(range(10), name="tx_bits")      # bits still to send after the current one
        shreg = Signal(9, name="tx_shreg")            # data bits, then the stop bit
        busy = Signal(name="tx_busy")
        m.d.comb += self.i.ready.eq(~busy)
        with m.If(~busy):
            with m.If(self.i.valid):
                m.d.sync += [busy.eq(1), self.tx.eq(0), shreg.eq(Cat(self.i.payload, 1)),
                             bits.eq(9), timer.eq(div - 1)]
        with m.Else():
            with m.If(timer != 0):
                m.d.sync += timer.eq(timer - 1)
            with m.Elif(bits == 0):
                m.d.sync += busy.eq(0)                # stop bit done; tx stays high
            with m.Else():
                m.d.sync += [self.tx.eq(shreg[0]), shreg.eq(shreg >> 1),
                             bits.eq(bits - 1), timer.eq(div - 1)]
        return m


class UartRx(wiring.Component):
    """8N1 receiver; see the module docstring for sampling, latency and errors."""

    def __init__(self, *, clk_freq: float, baud: float):
        self.clk_freq, self.baud = clk_freq, baud
        self.divisor = uart_divisor(clk_freq, baud)
        super().__init__({"rx": In(1, init=1), "o": Out(stream.Signature(8)),
                          "frame_error": Out(1), "overrun": Out(1)})

    def elaborate(self, platform):
        m = Module()
        div = self.divisor
        sync1 = Signal(init=1, name="rx_meta")
        line = Signal(init=1, name="rx_sync")
        m.d.sync += [sync1.eq(self.rx), line.eq(sync1)]
        timer = Signal(range(div), name="rx_timer")
        bits = Signal(range(9), name="rx_bits")
        shreg = Signal(8, name="rx_shreg")
        m.d.sync += [self.frame_error.eq(0), self.overrun.eq(0)]
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.FSM(name="rx_fsm"):
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(div // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(~line):
                    m.d.sync += [timer.eq(div - 1), bits.eq(8)]
                    m.next = "DATA"
                with m.Else():
                    m.next = "IDLE"                   # glitch shorter than half a bit
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shreg.eq(Cat(shreg[1:], line)), bits.eq(bits - 1),
                                 timer.eq(div - 1)]
                    with m.If(bits == 1):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):
                    with m.If(self.o.valid & ~self.o.ready):
                        m.d.sync += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += [self.o.payload.eq(shreg), self.o.valid.eq(1)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += self.frame_error.eq(1)
                    m.next = "BREAK"
            with m.State("BREAK"):
                with m.If(line):
                    m.next = "IDLE"
        return m


class UartLoopback(wiring.Component):
    """``rx`` -> :class:`UartRx` -> FIFO -> :class:`UartTx` -> ``tx``.

    ``frame_error``/``overrun`` are the receiver's pulses; ``level`` is the
    FIFO fill level (for tests and LEDs).
    """

    def __init__(self, *, clk_freq: float, baud: float, fifo_depth: int = 32):
        self.clk_freq, self.baud, self.fifo_depth = clk_freq, baud, fifo_depth
        self.divisor = uart_divisor(clk_freq, baud)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1),
                          "frame_error": Out(1), "overrun": Out(1),
                          "level": Out(range(fifo_depth + 1))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.rx = rx = UartRx(clk_freq=self.clk_freq, baud=self.baud)
        m.submodules.tx = tx = UartTx(clk_freq=self.clk_freq, baud=self.baud)
        m.submodules.fifo = q = fifo.SyncFIFOBuffered(width=8, depth=self.fifo_depth)
        wiring.connect(m, rx.o, q.w_stream)
        wiring.connect(m, q.r_stream, tx.i)
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx),
                     self.frame_error.eq(rx.frame_error), self.overrun.eq(rx.overrun),
                     self.level.eq(q.level)]
        return m
