"""ECP5 block-RAM output registers: a netlist step between Yosys and nextpnr.

An ECP5 ``DP16KD`` read without its output register (``REGMODE_B =
"NOREG"``, the only mode Yosys's memory mapping uses) has a clock-to-output
delay of 5.83 ns on speed grade 6; with the output register (``"OUTREG"``)
0.96 ns (nextpnr-ecp5's timing database, measured on a one-block design).
A design that registers the read data in the fabric right away (as
:mod:`hw.row_buffer` does) pays the 5.83 ns plus a route out of the RAM
column into that register.

:func:`absorb_output_registers` moves such a register into the block: for a
``DP16KD`` whose port B only reads (``WEB`` = 0) and whose port A drives
nothing (the read is ``DOB`` only, <= 18 bits wide), if every ``DOB`` bit
in use drives exactly one load, the data input of a ``TRELLIS_FF`` clocked
by the block's read clock, always enabled, with no set/reset and the
global set/reset off, and the output-register enable ``OCEB`` and
``RSTB`` are the constants 1 and 0, then ``REGMODE_B`` becomes
``"OUTREG"``, the flip-flops' outputs are driven by the block and the
flip-flops are removed.  The two are the same machine cycle for cycle:
the address is registered at a clock edge, the flip-flop (now the output
register) loads the word at the next edge.  Anything else is left alone.

The RTL and its simulation are unchanged (the register is an Amaranth
register); only the ECP5 netlist is. Yosys ships no simulation model of
``DP16KD``, so the step is checked structurally (tests/fpga) and by
nextpnr's timing of the result.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

__all__ = ["absorb_output_registers", "absorb_output_registers_in_file"]

#: read-data ports of the block's port B, DOB0 .. DOB17
_DOB = [f"DOB{i}" for i in range(18)]
_DOA = [f"DOA{i}" for i in range(18)]


def _const(bits, value: str) -> bool:
    return bits == [value]


def _plain_ff(cell: dict, clock) -> bool:
    """A TRELLIS_FF on ``clock``, loading every cycle, no set/reset, no GSR."""
    if cell.get("type") != "TRELLIS_FF":
        return False
    p, c = cell.get("parameters", {}), cell.get("connections", {})
    if cell.get("attributes", {}).get("keep"):
        return False
    if c.get("CLK") != clock or p.get("CLKMUX", "CLK") != "CLK":
        return False
    if p.get("GSR", "ENABLED") != "DISABLED":
        return False
    ce_on = p.get("CEMUX", "CE").strip() == "1" or _const(c.get("CE"), "1")
    lsr_off = (p.get("LSRMUX", "LSR").strip() == "0" or "LSR" not in c
               or _const(c.get("LSR"), "0"))
    return ce_on and lsr_off


def absorb_output_registers(netlist: dict) -> dict:
    """Rewrite the Yosys JSON ``netlist`` in place (see the module docstring).

    Returns ``{"blocks": n, "bits": m, "skipped": k}``: blocks given their
    output register, flip-flops removed, and ``DP16KD`` blocks left as they
    were."""
    blocks = bits_moved = skipped = 0
    for module in netlist.get("modules", {}).values():
        cells = module.get("cells", {})
        loads = defaultdict(list)             # net bit -> [(cell, port)]
        for name, cell in cells.items():
            dirs = cell.get("port_directions", {})
            for port, bits in cell.get("connections", {}).items():
                if dirs.get(port) != "output":
                    for b in bits:
                        loads[b].append((name, port))
        port_bits = {b for port in module.get("ports", {}).values() for b in port["bits"]}
        for name in list(cells):
            cell = cells.get(name)
            if cell is None or cell.get("type") != "DP16KD":
                continue
            p, c = cell.get("parameters", {}), cell.get("connections", {})
            if p.get("REGMODE_B", "NOREG") != "NOREG":
                continue
            if not (_const(c.get("WEB"), "0") and _const(c.get("OCEB"), "1")
                    and _const(c.get("RSTB"), "0")):
                skipped += 1
                continue
            if any(loads.get(b) or b in port_bits
                   for port in _DOA for b in c.get(port, []) if not isinstance(b, str)):
                skipped += 1                  # a 36-bit read also uses DOA
                continue
            moves = []                        # (DOB port, flip-flop cell)
            for port in _DOB:
                bits = c.get(port, [])
                if not bits or isinstance(bits[0], str):
                    continue
                users = loads.get(bits[0], [])
                if not users and bits[0] not in port_bits:
                    continue                  # an unused bit
                if len(users) != 1 or bits[0] in port_bits:
                    break
                ff_name, ff_port = users[0]
                if ff_port != "DI" or not _plain_ff(cells[ff_name], c.get("CLKB")):
                    break
                moves.append((port, ff_name))
            else:
                if moves:
                    for port, ff_name in moves:
                        c[port] = list(cells[ff_name]["connections"]["Q"])
                        del cells[ff_name]
                    p["REGMODE_B"] = "OUTREG"
                    blocks += 1
                    bits_moved += len(moves)
                continue
            skipped += 1
    return {"blocks": blocks, "bits": bits_moved, "skipped": skipped}


def absorb_output_registers_in_file(path) -> dict:
    """:func:`absorb_output_registers` on the Yosys JSON file ``path``
    (rewritten only when something was absorbed)."""
    path = Path(path)
    netlist = json.loads(path.read_text())
    stats = absorb_output_registers(netlist)
    if stats["blocks"]:
        path.write_text(json.dumps(netlist))
    return stats
