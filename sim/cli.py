"""The ``salo`` command line.

Each subcommand lives in its own module under ``sim.commands`` exposing
``register(subparsers)``; the module list below is the only place that names
them.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from hw.config import ConfigError

#: one module per subcommand, in the order ``salo --help`` lists them
COMMAND_MODULES = [
    "sim.commands.presets",
    "sim.commands.accuracy",
    "sim.commands.mask", "sim.commands.compile", "sim.commands.run", "sim.commands.show",
    "sim.commands.synth", "sim.commands.bitstream", "sim.commands.gen",
]


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="salo",
        description="Generate, program and simulate SALO-style hybrid sparse "
                    "attention accelerators.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UserError, ConfigError) as e:
        print(f"salo {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # output piped into e.g. `head`: not an error of ours
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
