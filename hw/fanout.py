"""Registers the FPGA flow keeps apart (routing of high-fanout control),
and data registers without reset (routing of the reset net).

nextpnr does not replicate registers, and Yosys's ``opt_merge`` merges
flip-flops with the same input: a select that drives a thousand-bit
multiplexer stays one net across the chip, and the identical control
registers of lockstep units (the PEs of one array column, the merge units)
become one register whose net reaches all of them.

A register made by :func:`kept_apart_signal` or :func:`register_copies`
carries the Verilog attribute :data:`KEEP_APART_ATTR`.  The FPGA flow sets
Yosys's ``keep`` on the flip-flops driving such signals
(:func:`yosys_keep_apart_command`, run before ``synth_*``), so
``opt_merge`` leaves them separate and each one's net stays local to its
own loads.  In simulation and other flows the attribute does nothing
(merging them there is harmless).

A plain register with the same input as a kept copy is still merged, into
that copy (``opt_merge`` keeps the cell marked ``keep`` and folds identical
unmarked ones into it): the copy then drives the plain register's loads
too, wherever they are.  Make such a register a :func:`kept_apart_signal`
as well (as :mod:`hw.top` does for ``start_pass``, ``kv_pos`` and ``kx_d1``).
A wider plain register loading the same bits can take a kept one's place
too (the top's 12-bit LOAD_KV position copy vanished into the plain 24-bit
instruction word register loading the whole word: only the plain one's
net was left in the netlist); there as well, keep both apart.
"""

from __future__ import annotations

from math import isqrt

from amaranth.hdl import Cat, Mux, Signal, Value

__all__ = ["KEEP_APART_ATTR", "delay_line", "drive_from_data_register", "kept_apart_signal",
           "register_with_registered_enable", "register_copies", "register_tree",
           "shift_right_in_groups",
           "yosys_keep_apart_command"]

#: Verilog attribute on the registers the flow keeps apart
KEEP_APART_ATTR = "salo_keep_apart"


def kept_apart_signal(shape=1, *, name: str, **kwargs) -> Signal:
    """A :class:`~amaranth.hdl.Signal` carrying :data:`KEEP_APART_ATTR`
    (meant to be a register: the attribute marks its flip-flops)."""
    return Signal(shape, name=name, attrs={KEEP_APART_ATTR: 1}, **kwargs)


def delay_line(m, value, n: int, name: str, *, reset_less: bool = False):
    """``value`` delayed by ``n`` registers ``<name>_d1`` .. ``<name>_d<n>``
    (``n`` = 0: the value itself); ``reset_less`` for data."""
    for k in range(n):
        nxt = Signal(Value.cast(value).shape(), name=f"{name}_d{k + 1}", reset_less=reset_less)
        m.d.sync += nxt.eq(value)
        value = nxt
    return value


def register_copies(m, value, n: int, name: str, enable=None,
                    reset_less: bool = False) -> list[Signal]:
    """``n`` registers ``<name>_dup<k>`` loading ``value`` (when ``enable``
    is high, every cycle if None); latency 1, like one register; each is
    kept apart by the FPGA flow, so each can serve one group of loads.
    ``reset_less`` for data (a kept flip-flop's reset costs a LUT in front
    of it: Yosys folds no reset into a kept cell)."""
    if n < 1:
        raise ValueError(f"n = {n} is invalid: allowed >= 1")
    shape = Value.cast(value).shape()
    copies = [kept_apart_signal(shape, name=f"{name}_dup{k}", reset_less=reset_less)
              for k in range(n)]
    for c in copies:
        if enable is None:
            m.d.sync += c.eq(value)
        else:
            with m.If(enable):
                m.d.sync += c.eq(value)
    return copies


def register_tree(m, value, n: int, name: str, *, reset_less: bool = False) -> list[Signal]:
    """``n`` kept-apart copies of ``value`` in two levels: ``isqrt(n)`` hub
    copies ``<name>_hub_dup<h>`` load ``value``, and each hub loads its
    share of the ``n`` copies ``<name><h>_dup<k>`` (FPGA routing: no one
    net from the source reaches every copy across the chip).  Latency 2.
    The list is in hub order (hub 0's copies first, then hub 1's, ...), so
    neighbouring indices tend to share a hub."""
    if n < 1:
        raise ValueError(f"n = {n} is invalid: allowed >= 1")
    n_hubs = max(1, isqrt(n))
    hubs = register_copies(m, value, n_hubs, f"{name}_hub", reset_less=reset_less)
    return [c for h, hub in enumerate(hubs)
            for c in register_copies(m, hub, len(range(h, n, n_hubs)), f"{name}{h}",
                                     reset_less=reset_less)]


def drive_from_data_register(m, port, value, *, name: str) -> None:
    """Drive ``port`` from a register ``name`` of its shape that loads
    ``value`` every cycle and has no reset: data, whose consumers qualify it
    with a valid flag that has one (FPGA timing: the reset net reaches
    fewer flip-flops; a port's own register would take the reset).
    Latency 1."""
    r = Signal(port.shape(), name=name, reset_less=True)
    m.d.sync += r.eq(value)
    m.d.comb += port.eq(r)


def register_with_registered_enable(m, value, loaded, *, name: str):
    """The output of a register that loads ``value`` in the cycles a load
    decision is high, built so that the decision drives no clock enable:
    ``loaded`` is that decision registered (high in the cycle after it);
    the result is ``value`` of the previous cycle when ``loaded`` is high,
    else the result of the previous cycle.  Same behaviour as
    ``with m.If(decision): m.d.sync += r.eq(value)``, reset value 0.

    Made of ``<name>_new`` (loads ``value`` every cycle, no reset),
    ``<name>_hold`` (loads the result every cycle, reset to 0) and a 2:1
    multiplexer selected by ``loaded`` (combinational output).  FPGA timing:
    a deep decision that is the clock enable of a wide register has its
    net routed to every bit's flip-flop at the end of its path; here it
    reaches one flip-flop (``loaded``), and the wide net starts at a
    register.  ``<name>_new`` is kept apart (:func:`kept_apart_signal`):
    it loads every cycle, like other registers of the same input the
    design may keep apart near their own loads, and Yosys would merge
    those into it."""
    shape = Value.cast(value).shape()
    new = kept_apart_signal(shape, name=f"{name}_new", reset_less=True)
    hold = Signal(shape, name=f"{name}_hold")
    out = Signal(shape, name=name)
    m.d.sync += [new.eq(value), hold.eq(out)]
    m.d.comb += out.eq(Mux(loaded, new, hold))
    return out


def shift_right_in_groups(value, amounts: list, width: int):
    """``value >> amount`` as ``width`` bits, its bits in ``len(amounts)``
    groups of (nearly) equal width, group k shifted by ``amounts[k]``: given
    copies of one amount (:func:`register_copies`), each copy's net reaches
    one group's multiplexers only.  Combinational (no register)."""
    n = len(amounts)
    if not 1 <= n <= width:
        raise ValueError(f"{n} groups for {width} bits is invalid: allowed 1..{width}")
    bounds = [width * k // n for k in range(n + 1)]
    return Cat(*((value >> a)[lo:hi] for a, lo, hi in zip(amounts, bounds, bounds[1:])))


def yosys_keep_apart_command() -> str:
    """Yosys commands (after ``read_verilog``, before ``synth_*``) that set
    ``keep`` on the flip-flops driving wires with :data:`KEEP_APART_ATTR`.
    ``proc`` first turns the processes into flip-flop cells (synth runs it
    again; it is idempotent)."""
    ffs = " ".join(f"t:${t}" for t in ("dff", "dffe", "sdff", "sdffe", "sdffce", "adff"))
    unions = " ".join(["%u"] * 5)
    return (f"proc; setattr -set keep 1 w:* a:{KEEP_APART_ATTR} %i %ci1 {ffs} {unions} %i")
