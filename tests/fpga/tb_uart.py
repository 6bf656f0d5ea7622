"""cocotb testbench of :class:`fpga.uart.UartLoopback` driven through its pins
by a software UART (bit timing in picoseconds, independent of the DUT clock).

Parameters (``sim.runner.tb_params()``): ``clk_freq``, ``baud`` (of the DUT),
``host_scale`` (the software UART runs at ``baud * host_scale``: a host
clock that is off), ``frames`` (random frames to loop back), ``max_payload``,
``seed``, ``max_gap_bits`` (random idle time between bytes, in bit times),
``all_bytes`` (default true: first a frame carrying all 256 byte values).
"""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import RisingEdge, Timer, with_timeout

from fpga.framing import FrameDecoder, encode_frame
from sim.runner import tb_params
from tests.fpga.soft_uart import SoftUart, start_serial_dut


class PulseCounter:
    def __init__(self, sig):
        self.sig, self.count = sig, 0

    async def run(self):
        while True:
            await RisingEdge(self.sig)
            self.count += 1


async def setup(dut):
    p = tb_params()
    uart = await start_serial_dut(dut, p["clk_freq"],
                                  SoftUart(dut, p["baud"] * p.get("host_scale", 1.0)))
    fe, ov = PulseCounter(dut.frame_error), PulseCounter(dut.overrun)
    cocotb.start_soon(fe.run())
    cocotb.start_soon(ov.run())
    return p, uart, fe, ov


async def wait_received(uart, n: int, bits_budget: float):
    async def until():
        while len(uart.received) < n:
            await Timer(uart.bit_ps * 10, unit="ps")
    await with_timeout(until(), int(bits_budget * uart.bit_ps), "ps")


@cocotb.test()
async def loopback_frames(dut):
    """Random frames with random inter-byte gaps come back bit-exact."""
    p, uart, fe, ov = await setup(dut)
    rng = random.Random(p["seed"])
    frames = []
    if p.get("all_bytes", True):
        # one frame carrying every byte value once, in random order
        every = list(range(256))
        rng.shuffle(every)
        frames.append((0x02, bytes(every)))
    for _ in range(p["frames"]):
        ftype = rng.choice([0x01, 0x02, 0x03, 0x04, 0x81, 0x82, 0xFF])
        n = rng.randint(0, p["max_payload"])
        # include the SYNC value and 0x00/0xFF in payloads on purpose
        payload = bytes(rng.choice([0xA5, 0x00, 0xFF, rng.randrange(256)]) for _ in range(n))
        frames.append((ftype, payload))
    wire = b"".join(encode_frame(t, pl) for t, pl in frames)
    max_gap = p.get("max_gap_bits", 2.5)
    for t, pl in frames:
        for b in encode_frame(t, pl):
            await uart.send_byte(b)
            if rng.random() < 0.5:
                await uart.idle(rng.uniform(0, max_gap))
        await uart.idle(rng.uniform(0, 4 * max_gap))
    await wait_received(uart, len(wire), 12 * len(wire) + 100)
    await uart.idle(30)  # nothing extra may follow
    got = bytes(uart.received)
    assert len(got) == len(wire), f"sent {len(wire)} bytes, got {len(got)} back"
    if got != wire:
        i = next(k for k in range(len(wire)) if got[k] != wire[k])
        raise AssertionError(f"byte {i} differs: sent 0x{wire[i]:02x}, got 0x{got[i]:02x}")
    dec = FrameDecoder()
    decoded = [(f.type, f.payload) for f in dec.feed(got)]
    assert decoded == frames, "decoded frames differ from the sent frames"
    assert dec.bad_frames == 0 and dec.dropped_bytes == 0 and dec.pending == 0
    assert uart.stop_errors == 0, f"{uart.stop_errors} bad stop bits from the DUT"
    assert fe.count == 0 and ov.count == 0, f"frame_error {fe.count}, overrun {ov.count}"
    dut._log.info(f"{len(frames)} frames, {len(wire)} bytes looped back bit-exact")


@cocotb.test()
async def bad_stop_bit_is_dropped(dut):
    """A byte with stop bit 0 pulses frame_error once and is not echoed; the
    next good byte is."""
    p, uart, fe, ov = await setup(dut)
    await uart.send_byte(0x3C, stop=0)
    await uart.idle(3)          # line high again (end of the break)
    await uart.send_byte(0xC3)
    await wait_received(uart, 1, 40)
    await uart.idle(15)
    assert bytes(uart.received) == b"\xc3", f"got {bytes(uart.received).hex()}"
    assert fe.count == 1, f"frame_error pulsed {fe.count} times"
    assert ov.count == 0


@cocotb.test()
async def glitch_is_ignored(dut):
    """A low pulse shorter than half a bit is not a start bit."""
    p, uart, fe, ov = await setup(dut)
    dut.rx.value = 0
    await Timer(int(uart.bit_ps * 0.3), unit="ps")
    dut.rx.value = 1
    await uart.idle(15)
    assert len(uart.received) == 0 and fe.count == 0
    await uart.send_byte(0x5A)
    await wait_received(uart, 1, 40)
    assert bytes(uart.received) == b"\x5a"
