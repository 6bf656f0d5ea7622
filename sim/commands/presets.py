"""``salo presets``: list the named configurations."""

from __future__ import annotations

from hw.config import PRESET_NOTES, PRESETS


def register(sub):
    p = sub.add_parser(
        "presets", help="list the named accelerator configurations",
        description="List the named configurations (use with --preset NAME). "
                    "With --json NAME, print that preset as a config file.")
    p.add_argument("--json", metavar="NAME",
                   help="print preset NAME as JSON (save it, edit it, pass it with --config)")
    p.set_defaults(func=run)


def run(args):
    from hw.config import preset
    if args.json:
        print(preset(args.json).to_json())
        return 0
    width = max(map(len, PRESETS))
    for name, cfg in PRESETS.items():
        print(f"{name:<{width}}  {cfg.hash()}  {cfg.num_pes:5d} PEs  {PRESET_NOTES[name]}")
        print(f"{'':<{width}}  {cfg.describe()}")
    return 0
