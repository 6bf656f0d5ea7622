"""Subcommands of ``salo`` (see ``sim.cli``)."""
