"""``salo gen``: write the accelerator's Verilog and a JSON manifest."""

from __future__ import annotations

from sim.cli_support import add_config_args, config_for

#: Verilog top module name (also used by the RTL backend's builds)
TOP_NAME = "salo_top"


def register(sub):
    p = sub.add_parser(
        "gen", help="generate the accelerator's Verilog and a JSON manifest",
        description="Elaborate the accelerator top (hw/top.py) for a config and write "
                    f"DIR/{TOP_NAME}.v and DIR/manifest.json (config, config hash, ports with "
                    "directions and widths, stream payload fields, buffer sizes, error codes, "
                    "performance counters).")
    add_config_args(p)
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory")
    p.set_defaults(func=run)


def manifest(cfg, top) -> dict:
    """The manifest of a :class:`hw.top.SaloTop` instance ``top`` for ``cfg``."""
    from amaranth.hdl import Shape
    from amaranth.lib import data, wiring
    from hw.isa import VERSION, instruction_layout, mask_record_layout
    from hw.top_status import COUNTERS, ERROR_DOC, ErrorCode, result_layout, row_layout

    ports = []
    for path, member in top.signature.members.flatten():
        if not member.is_port:
            continue
        shape = member.shape
        width = (shape.size if isinstance(shape, data.Layout)
                 else Shape.cast(shape).width)
        ports.append({"name": "__".join(path),
                      "direction": "input" if member.flow == wiring.In else "output",
                      "width": width})
    ports += [{"name": "clk", "direction": "input", "width": 1},
              {"name": "rst", "direction": "input", "width": 1}]

    def fields(layout):
        out = {}
        for name, f in layout:
            out[name] = {"offset": f.offset, "width": Shape.cast(f.shape).width
                         if not isinstance(f.shape, data.Layout) else f.shape.size}
        return out

    return {
        "top": TOP_NAME,
        "config": cfg.to_dict(), "config_hash": cfg.hash(), "describe": cfg.describe(),
        "isa_version": VERSION,
        "ports": ports,
        "streams": {
            "instructions": {"direction": "input", "payload_bits": instruction_layout(cfg).size,
                             "carries": "instruction words (hw/isa.py instruction_layout)"},
            "masks": {"direction": "input", "payload_bits": mask_record_layout(cfg).size,
                      "carries": "one mask record per PASS (hw/isa.py mask_record_layout)"},
            "rows_in": {"direction": "input", "payload_bits": row_layout(cfg).size,
                        "carries": "Q/K/V rows of max_head_dim data words, element 0 in the "
                                   "low bits, in the order of the program's loads"},
            "results": {"direction": "output", "payload_bits": result_layout(cfg).size,
                        "fields": fields(result_layout(cfg)),
                        "carries": "output rows with position and head, in STORE/STORE_G "
                                   "order"},
        },
        "buffers": top.geometry,
        "error_codes": {e.name: {"value": e.value, "meaning": " ".join(ERROR_DOC[e].split())}
                        for e in ErrorCode},
        "counters": COUNTERS,
        "pes": cfg.num_pes,
    }


def run(args):
    import json
    import time
    from pathlib import Path
    from sim.cli import UserError
    from hw.top import SaloTop, top_geometry
    from sim.runner import generate_verilog

    cfg = config_for(args)
    t0 = time.perf_counter()
    try:
        top_geometry(cfg)           # checks the buffer sizes before elaborating
    except ValueError as e:
        raise UserError(f"cannot generate the top for this config: {e}") from None
    top = SaloTop(cfg)
    out = Path(args.output)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create output directory {str(out)!r}: {e}") from None
    text = generate_verilog(lambda: top, TOP_NAME)
    (out / f"{TOP_NAME}.v").write_text(text)
    man = manifest(cfg, top)
    (out / "manifest.json").write_text(json.dumps(man, indent=1) + "\n")
    dt = time.perf_counter() - t0
    print(f"{cfg.describe()} [{cfg.hash()}]")
    print(f"  wrote {out / (TOP_NAME + '.v')} ({len(text.splitlines())} lines) and "
          f"{out / 'manifest.json'} in {dt:.1f} s")
    return 0
