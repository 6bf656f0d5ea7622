"""Register copies for high-fanout control signals (FPGA routing).

nextpnr does not replicate registers, and Yosys's ``opt_merge`` merges
flip-flops with the same input, so a select that drives a thousand-bit
multiplexer stays one net across the chip.  :func:`register_copies` makes
``n`` registers loaded alike, named ``<name>_dup<k>``; the FPGA flow marks
the flip-flops of every signal whose name contains :data:`DUP_MARK` with
Yosys's ``keep`` (:func:`yosys_keep_copies_command`), so they stay separate
and each copy's net stays local to its group of loads.  In simulation and
in other flows they are ordinary registers (merging them is harmless).
"""

from __future__ import annotations

from amaranth.hdl import Signal, Value

__all__ = ["DUP_MARK", "register_copies", "yosys_keep_copies_command"]

#: the part of a copy's name the flow looks for
DUP_MARK = "_dup"


def register_copies(m, value, n: int, name: str, enable=None) -> list[Signal]:
    """``n`` registers loading ``value`` (when ``enable`` is high, every
    cycle if None); latency 1, like one register."""
    if n < 1:
        raise ValueError(f"n = {n} is invalid: allowed >= 1")
    shape = Value.cast(value).shape()
    copies = [Signal(shape, name=f"{name}{DUP_MARK}{k}") for k in range(n)]
    for c in copies:
        if enable is None:
            m.d.sync += c.eq(value)
        else:
            with m.If(enable):
                m.d.sync += c.eq(value)
    return copies


def yosys_keep_copies_command() -> str:
    """Yosys commands (after ``read_verilog``, before ``synth_*``) that set
    ``keep`` on the flip-flops driving the copies' wires, so ``opt_merge``
    leaves them apart.  ``proc`` first turns the processes into flip-flop
    cells (synth runs it again; it is idempotent)."""
    ffs = " ".join(f"t:${t}" for t in ("dff", "dffe", "sdff", "sdffe", "sdffce", "adff"))
    unions = " ".join(["%u"] * 5)
    return f"proc; setattr -set keep 1 w:*{DUP_MARK}* %ci1 {ffs} {unions} %i"
