"""``salo bitstream``: a ULX3S bitstream of the accelerator behind the UART
host link (or the UART echo), via :mod:`fpga.boards.ulx3s`."""

from __future__ import annotations


def register(sub):
    from fpga.boards import ulx3s
    p = sub.add_parser("bitstream", help="build a ULX3S bitstream (accelerator + UART link)",
                       description=ulx3s.DESCRIPTION)
    ulx3s.add_arguments(p, default_design="salo")
    p.set_defaults(func=ulx3s.run_args)
