"""Small static timing analyzer over nextpnr's routed netlist and SDF.

nextpnr prints one critical path per clock; to see *every* failing path of a
routed design, run nextpnr with ``--write routed.json --sdf routed.sdf`` and

    python -m fpga.sta DIR [--period-ns 10] [--top 30]

It prints the worst endpoints by slack, a per-module summary of the failing
ones and the full worst path.  ``analyze()`` returns the same as a dict.

Model (single clock, every register on the same edge, all delays max):
  * start points: outputs with a clock-to-out IOPATH (``CLK Q`` of TRELLIS_FF,
    ``CLKA/CLKB`` of DP16KD, ``CLK0`` of registered MULT18X18D, ``WCK`` of LUT
    RAM ...); a port is a clock port when it is the clock of a SETUPHOLD check
    of its cell or its name looks like one (``_CLOCK_RE``);
  * combinational arcs: every other IOPATH, plus every INTERCONNECT (route);
  * endpoints: inputs with a SETUPHOLD check (required time = period - setup);
  * with ``io=True`` also the pins of cells without any timing arc (TRELLIS_IO
    pads: outputs start at 0, inputs are endpoints with setup 0); nextpnr's
    Fmax ignores those ``<async>`` paths, so they are left out by default.
Combinational loops are cut at the DFS back edges and listed in the result.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

__all__ = ["parse_sdf", "module_group", "analyze", "shorten", "format_report",
           "format_path", "main"]

# An SDF token: a parenthesis, a quoted string, or an identifier whose
# backslash escapes may hide spaces, parentheses and quotes.
_TOKEN = re.compile(r'\(|\)|"(?:[^"\\]|\\.)*"|(?:\\.|[^\s()"\\])+')
_UNESCAPE = re.compile(r"\\(.)")
_CLOCK_RE = re.compile(r"^(CLK[0-3AB]?|WCK|SCLK|ECLK|CH[01]_FF_[TR]XI_CLK)$")
_SCALE = {"fs": 1e-6, "ps": 1e-3, "ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def _sexpr(text: str) -> list:
    """Parse SDF text into nested lists of atoms (escapes kept)."""
    stack = [[]]
    for t in _TOKEN.findall(text):
        if t == "(":
            node = []
            stack[-1].append(node)
            stack.append(node)
        elif t == ")":
            if len(stack) == 1:
                raise ValueError("SDF: unbalanced ')'")
            stack.pop()
        else:
            stack[-1].append(t)
    if len(stack) != 1:
        raise ValueError("SDF: unbalanced '('")
    return stack[0]


def _unescape(s: str) -> str:
    """Undo nextpnr's SDF escaping (a backslash before ``$ \\ [ ] :``)."""
    return _UNESCAPE.sub(r"\1", s) if "\\" in s else s


def _delay(values: list, scale: float) -> float:
    """Max of the SDF delay triples ``(min:typ:max)`` (rise, fall ...) in ns."""
    best = None                     # setup values may legitimately be negative
    for v in values:
        if isinstance(v, list):
            for atom in v:
                for x in atom.split(":"):
                    if x and (best is None or float(x) > best):
                        best = float(x)
    return (best or 0.0) * scale


def _port(spec) -> str:
    """Port of a timing check: ``(posedge DI)`` or ``DI``."""
    return _unescape(spec[-1] if isinstance(spec, list) else spec)


def _split_pin(tok: str, divider: str) -> tuple:
    """``cell/port`` -> (cell, port), cut at the last divider that is not escaped.

    nextpnr does not escape '/' (its default divider) in cell names, but port
    names never contain one, so the last divider is the right cut."""
    cut = len(tok)
    while True:
        cut = tok.rfind(divider, 0, cut)
        if cut < 0:
            raise ValueError(f"SDF: no '{divider}' in pin {tok!r}")
        k = cut
        while k > 0 and tok[k - 1] == "\\":
            k -= 1
        if (cut - k) % 2 == 0:
            return _unescape(tok[:cut]), _unescape(tok[cut + 1:])


def parse_sdf(text: str) -> dict:
    """Parse nextpnr SDF text.

    Returns ``{"cells": {instance: {"type", "iopaths": [(from, to, ns)],
    "setup": {port: (ns, clock_port)}}}, "nets": [((cell, port), (cell,
    port), ns)], "negedge": [cells with a check on a falling clock edge]}``;
    names are unescaped, delays in ns (max of all triples).
    """
    tree = _sexpr(text)
    if not tree or not isinstance(tree[0], list) or tree[0][:1] != ["DELAYFILE"]:
        raise ValueError("not an SDF file (no DELAYFILE)")
    scale, cells, nets, divider, negedge = 1.0, {}, [], "/", []
    for item in tree[0][1:]:
        if not isinstance(item, list) or not item:
            continue
        if item[0] == "DIVIDER" and len(item) > 1:
            divider = item[1]
        elif item[0] == "TIMESCALE":
            m = re.fullmatch(r"([\d.]+)\s*([a-z]+)", "".join(item[1:]))
            if not m or m.group(2) not in _SCALE:
                raise ValueError(f"SDF: unknown TIMESCALE {item[1:]}")
            scale = float(m.group(1)) * _SCALE[m.group(2)]
        elif item[0] == "CELL":
            inst, ctype, iopaths, setup = "", "", [], {}
            for sub in item[1:]:
                if sub[0] == "CELLTYPE":
                    ctype = sub[1].strip('"')
                elif sub[0] == "INSTANCE":
                    inst = _unescape(sub[1]) if len(sub) > 1 else ""
                elif sub[0] == "DELAY":
                    for ab in sub[1:]:
                        for d in ab[1:]:
                            if d[0] == "IOPATH":
                                iopaths.append((_port(d[1]), _port(d[2]), _delay(d[3:], scale)))
                            elif d[0] == "INTERCONNECT":
                                nets.append((_split_pin(d[1], divider), _split_pin(d[2], divider),
                                             _delay(d[3:], scale)))
                elif sub[0] == "TIMINGCHECK":
                    for c in sub[1:]:
                        if c[0] in ("SETUPHOLD", "SETUP"):
                            port, clk = _port(c[1]), _port(c[2])
                            if isinstance(c[2], list) and c[2][0] == "negedge" \
                                    and inst not in negedge[-1:]:
                                negedge.append(inst)
                            val = _delay(c[3:4], scale)
                            setup[port] = max(setup.get(port, (val, clk)), (val, clk))
            if inst:
                cells[inst] = {"type": ctype, "iopaths": iopaths, "setup": setup}
    return {"cells": cells, "nets": nets, "negedge": negedge}


def module_group(cell: str, depth: int = 2) -> str:
    """Hierarchical prefix of a nextpnr cell name, at most ``depth`` levels.

    Heuristic: Yosys/nextpnr append generated suffixes after a ``$`` (or a
    leading backslash for escaped top-level names) and those may contain dots
    (``$auto$ff.cc:...``), so the name is cut at the first ``$``/``\\``; of
    the rest the dot-separated components except the last (the leaf cell's own
    name) are the hierarchy: ``dut.mac.$1_MULT18X18D`` -> ``dut.mac``,
    ``dut.m_0_TRELLIS_FF_Q_6`` -> ``dut``, ``load$tr_io`` -> ``<top>``.
    """
    base = re.split(r"[$\\]", cell, maxsplit=1)[0]
    parts = base.split(".")[:-1]
    return ".".join(parts[:depth]) or "<top>"


def _netnames(json_path) -> tuple[dict, dict]:
    """Cell types and (cell, port) -> net name from nextpnr's --write JSON."""
    data = json.loads(Path(json_path).read_text())
    mods = data.get("modules", {})
    top = next((m for m in mods.values() if m.get("attributes", {}).get("top")), None)
    top = top or next(iter(mods.values()), {})
    bitname: dict = {}
    for name, n in top.get("netnames", {}).items():
        for b in n.get("bits", []):
            # prefer a visible name over a hidden (generated) one for the report
            if b not in bitname or (bitname[b][1] and not n.get("hide_name")):
                bitname[b] = (name, n.get("hide_name", 0))
    types, pinnet = {}, {}
    for cname, c in top.get("cells", {}).items():
        types[cname] = c.get("type", "")
        for port, bits in c.get("connections", {}).items():
            if bits and bits[0] in bitname:
                pinnet[(cname, port)] = bitname[bits[0]][0]
    return types, pinnet


def analyze(json_path, sdf_path, period_ns: float = 10.0, *, io: bool = False,
            depth: int = 2) -> dict:
    """Static timing analysis of a routed nextpnr design against one period.

    ``json_path``: nextpnr ``--write`` netlist (cell types, net names; may be
    None); ``sdf_path``: nextpnr ``--sdf``.  ``io`` also times paths from and
    to I/O pads.  Returns a dict with ``wns``, ``tns``, ``fmax_mhz``,
    ``endpoints`` (every timed endpoint, worst first), ``groups`` (failing
    endpoints per start group -> end group), ``worst_path`` (hops) and
    ``loops_broken`` / ``warnings``.
    """
    sdf = parse_sdf(Path(sdf_path).read_text())
    types, pinnet = _netnames(json_path) if json_path else ({}, {})
    warnings = []
    if types:
        missing = [c for c in sdf["cells"] if c not in types]
        if missing:
            warnings.append(f"{len(missing)} SDF cells not in the JSON (e.g. {missing[0]!r})")
    if sdf["negedge"]:
        warnings.append(f"{len(sdf['negedge'])} cells clocked on a falling edge "
                        f"(e.g. {sdf['negedge'][0]!r}): timed as rising-edge")
    fanout = defaultdict(list)      # pin -> [(dst pin, delay ns, is logic arc)]
    launch = {}                     # register output pin -> (clock pin, clk-to-out ns)
    setup = {}                      # endpoint pin -> setup ns
    arcless = set()                 # cells without any arc (I/O pads, constants)
    for cname, c in sdf["cells"].items():
        clocks = {clk for _, clk in c["setup"].values()}
        if not c["iopaths"] and not c["setup"]:
            arcless.add(cname)
        for frm, to, d in c["iopaths"]:
            if frm in clocks or _CLOCK_RE.match(frm):
                if d >= launch.get((cname, to), (None, -1.0))[1]:
                    launch[(cname, to)] = ((cname, frm), d)
            else:
                fanout[(cname, frm)].append(((cname, to), d, True))
        for port, (s, _) in c["setup"].items():
            setup[(cname, port)] = s
    clock_nets = {pinnet[c] for c, _ in launch.values() if c in pinnet}
    if len(clock_nets) > 1:
        warnings.append(f"{len(clock_nets)} clock nets ({', '.join(sorted(clock_nets)[:3])}...): "
                        f"all timed against the one period, cross-clock paths included")
    sources = set()
    for src, dst, d in sdf["nets"]:
        fanout[src].append((dst, d, False))
        if io and src[0] in arcless:
            sources.add(src)
        if io and dst[0] in arcless:
            setup.setdefault(dst, 0.0)

    # Iterative DFS from the start points first: reverse postorder is a
    # topological order of the graph without its back edges, and the back
    # edges are exactly one cut of every combinational loop.
    starts = sorted(launch) + sorted(sources)
    order, state, broken = [], {}, set()
    for root in starts + list(fanout):
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(fanout.get(root, ())))]
        while stack:
            node, it = stack[-1]
            for dst, _, _ in it:
                s = state.get(dst)
                if s is None:
                    state[dst] = 1
                    stack.append((dst, iter(fanout.get(dst, ()))))
                    break
                if s == 1:
                    broken.add((node, dst))
            else:
                stack.pop()
                state[node] = 2
                order.append(node)
    order.reverse()

    # arrival[pin] = (ns, predecessor pin, arc delay, logic levels, start pin,
    #                 arc is a logic (IOPATH) arc); a start's predecessor is its clock
    arrival = {p: (d, clk, d, 0, p, True) for p, (clk, d) in launch.items()}
    arrival.update({p: (0.0, None, 0.0, 0, p, False) for p in sources})
    for p in order:
        a = arrival.get(p)
        if a is None:
            continue
        for dst, d, logic in fanout.get(p, ()):
            if (p, dst) in broken:
                continue
            t = a[0] + d
            old = arrival.get(dst)
            if old is None or t > old[0]:
                arrival[dst] = (t, p, d, a[3] + logic, a[4], logic)

    endpoints = []
    for pin, s in setup.items():
        a = arrival.get(pin)
        if a is None:
            continue                # driven by constants / untimed logic only
        start = a[4]
        endpoints.append({
            "cell": pin[0], "pin": pin[1], "start_cell": start[0], "start_pin": start[1],
            "arrival": a[0], "setup": s, "slack": period_ns - s - a[0], "levels": a[3],
            "group": module_group(pin[0], depth), "start_group": module_group(start[0], depth)})
    endpoints.sort(key=lambda e: (e["slack"], e["cell"], e["pin"]))

    groups = {}
    for e in endpoints:
        if e["slack"] >= 0:
            break
        g = groups.get((e["start_group"], e["group"]))
        if g is None:
            # the group's worst path (its first endpoint: they are sorted)
            g = groups[(e["start_group"], e["group"])] = {
                "start_group": e["start_group"], "end_group": e["group"], "failing": 0,
                "worst_slack": e["slack"],
                "worst_path": _trace((e["cell"], e["pin"]), arrival, setup, types, pinnet)}
        g["failing"] += 1
    worst = endpoints[0] if endpoints else None
    return {
        "period_ns": period_ns,
        "wns": worst["slack"] if worst else None,
        "tns": sum(e["slack"] for e in endpoints if e["slack"] < 0),
        "fmax_mhz": 1000.0 / (worst["arrival"] + worst["setup"]) if worst else None,
        "n_endpoints": len(endpoints),
        "n_failing": sum(e["slack"] < 0 for e in endpoints),
        "endpoints": endpoints,
        "groups": sorted(groups.values(), key=lambda g: (g["worst_slack"], -g["failing"])),
        "worst_path": _trace((worst["cell"], worst["pin"]), arrival, setup, types, pinnet)
        if worst else [],
        "loops_broken": sorted(f"{a[0]}.{a[1]} -> {b[0]}.{b[1]}" for a, b in broken),
        "warnings": warnings,
    }


def _trace(end, arrival, setup, types, pinnet) -> list:
    """Hops of the worst path into ``end``: launch, route/logic arcs, setup."""
    hops, pin = [], end
    while pin is not None:
        t, pred, d, _, start, logic = arrival[pin]
        if pin == start:
            kind = "clk-to-q" if pred is not None else "source"
        else:
            kind = "logic" if logic else "routing"
        hops.append({"type": kind, "cell": pin[0], "pin": pin[1],
                     "cell_type": types.get(pin[0], ""),
                     "net": pinnet.get(pin, "") if kind == "routing" else "",
                     "incr": d, "total": t})
        pin = pred if kind in ("logic", "routing") else None
    hops.reverse()
    s = setup[end]
    hops.append({"type": "setup", "cell": end[0], "pin": end[1], "cell_type": types.get(end[0], ""),
                 "net": "", "incr": s, "total": hops[-1]["total"] + s})
    return hops


def shorten(name, n: int = 70) -> str:
    """``name`` cut to ``n`` characters in its middle (``...``) if longer."""
    name = str(name)
    return name if len(name) <= n else name[:n // 2 - 2] + "..." + name[-(n - n // 2 - 1):]


def format_report(res: dict, top: int = 30, paths: int = 0) -> str:
    """Human-readable summary of an ``analyze()`` result; ``paths``: also the
    worst path of that many failing groups."""
    P = res["period_ns"]
    if not res["endpoints"]:
        return "no timed endpoints found"
    out = [f"period {P:g} ns ({1000 / P:.1f} MHz): WNS {res['wns']:+.3f} ns, "
           f"TNS {res['tns']:.3f} ns, {res['n_failing']}/{res['n_endpoints']} endpoints failing; "
           f"worst path {res['worst_path'][-1]['total']:.3f} ns -> Fmax {res['fmax_mhz']:.2f} MHz"]
    for w in res["warnings"]:
        out.append(f"warning: {w}")
    if res["loops_broken"]:
        out.append(f"combinational loops: cut {len(res['loops_broken'])} arc(s), e.g. "
                   f"{res['loops_broken'][0]}")
    out += ["", f"worst {min(top, len(res['endpoints']))} endpoints:",
            f"{'slack':>8} {'arrival':>8} {'lvl':>4}  {'endpoint':<56} start point"]
    for e in res["endpoints"][:top]:
        out.append(f"{e['slack']:8.3f} {e['arrival']:8.3f} {e['levels']:4d}  "
                   f"{shorten(e['cell'] + '.' + e['pin'], 56):<56} "
                   f"{shorten(e['start_cell'] + '.' + e['start_pin'], 56)}")
    if res["groups"]:
        out += ["", "failing endpoints by module (start group -> end group):",
                f"{'count':>6} {'worst':>8}  path"]
        for g in res["groups"][:top]:
            out.append(f"{g['failing']:6d} {g['worst_slack']:8.3f}  "
                       f"{g['start_group']} -> {g['end_group']}")
        if len(res["groups"]) > top:
            out.append(f"  ... {len(res['groups']) - top} more")
    else:
        out += ["", "no failing endpoints"]
    out += ["", "worst path:"] + format_path(res["worst_path"])
    for g in res["groups"][:paths]:
        out += ["", f"worst path of {g['start_group']} -> {g['end_group']} "
                    f"({g['failing']} failing):"] + format_path(g["worst_path"])
    return "\n".join(out)


def format_path(path: list) -> list:
    """Lines of one path (hops of :func:`analyze`), carry chains folded."""
    out = [f"{'type':>9} {'incr':>6} {'total':>7}  pin"]
    hops = []
    for h in path:
        # fold the FCI/FCO hops of a carry chain into one line: there are many
        # and only their sum matters
        carry = h["pin"] in ("FCI", "FCO")
        if carry and hops and hops[-1].get("n"):
            n = hops[-1]["n"] + 1
            hops[-1] = dict(h, type="carry", incr=hops[-1]["incr"] + h["incr"], net="", n=n)
        else:
            hops.append(dict(h, n=1) if carry else h)
    for h in hops:
        net = f"  (net {shorten(h['net'], 40)})" if h["net"] else ""
        out.append(f"{h['type']:>9} {h['incr']:6.3f} {h['total']:7.3f}  "
                   f"{shorten(h['cell'] + '.' + h['pin'], 70)}{net}"
                   + (f"  ({h['n']} carry hops)" if h.get("n", 1) > 1 else ""))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fpga.sta", description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", nargs="?", help="folder holding routed.json and routed.sdf")
    ap.add_argument("--json", help="nextpnr --write netlist (default DIR/routed.json)")
    ap.add_argument("--sdf", help="nextpnr --sdf file (default DIR/routed.sdf)")
    ap.add_argument("--period-ns", type=float, default=10.0, help="clock period (default 10)")
    ap.add_argument("--top", type=int, default=30, help="endpoints/groups to list (default 30)")
    ap.add_argument("--depth", type=int, default=2, help="hierarchy levels per module group")
    ap.add_argument("--io", action="store_true", help="also time paths from/to I/O pads")
    ap.add_argument("--paths", type=int, default=0,
                    help="also print the worst path of this many failing groups")
    ap.add_argument("--as-json", action="store_true", help="print the analyze() dict as JSON")
    a = ap.parse_args(argv)
    if not a.dir and not a.sdf:
        ap.error("give DIR or --sdf")
    d = Path(a.dir or ".")
    jpath = Path(a.json) if a.json else d / "routed.json"
    res = analyze(jpath if jpath.exists() else None, a.sdf or d / "routed.sdf", a.period_ns,
                  io=a.io, depth=a.depth)
    if a.as_json:
        json.dump(res, sys.stdout, indent=1)
        print()
    else:
        print(format_report(res, a.top, a.paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
