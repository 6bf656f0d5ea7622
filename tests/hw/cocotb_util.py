"""Helpers shared by the cocotb testbenches in tests/hw (not a test module)."""

from __future__ import annotations

import numpy as np

from hw.config import AcceleratorConfig, preset

#: at most this many mismatches are listed in a failure message
MAX_LISTED = 12


def config_from(params: dict) -> AcceleratorConfig:
    """The config named by ``params``: ``{"config": {...}}`` or ``{"preset": name}``."""
    if "config" in params:
        return AcceleratorConfig.from_dict(params["config"])
    return preset(params["preset"])


def signed_range(width: int) -> tuple[int, int]:
    return -(1 << (width - 1)), (1 << (width - 1)) - 1


def check_equal(what: str, inputs: dict, expected: dict, got: dict, cycles=None) -> None:
    """Assert ``got[name] == expected[name]`` elementwise for every output name.

    ``inputs`` (name -> array) and ``cycles`` (array, optional) are only used
    to describe the failing vectors: input values, expected, got and cycle.
    """
    n = len(next(iter(expected.values())))
    bad = np.zeros(n, dtype=bool)
    for k in expected:
        e = np.asarray(expected[k], dtype=np.int64)
        g = np.asarray(got[k], dtype=np.int64)
        assert e.shape == g.shape == (n,), f"{what}: {k}: shapes {e.shape} {g.shape}"
        bad |= e != g
    idx = np.flatnonzero(bad)
    if len(idx) == 0:
        return
    lines = []
    for i in idx[:MAX_LISTED]:
        ins = ", ".join(f"{k}={int(v[i])}" for k, v in inputs.items())
        exp = ", ".join(f"{k}={int(v[i])}" for k, v in expected.items())
        gt = ", ".join(f"{k}={int(v[i])}" for k, v in got.items())
        cyc = f"cycle {int(cycles[i])}" if cycles is not None else f"vector {i}"
        lines.append(f"{cyc}: inputs {ins}: expected {exp}, got {gt}")
    more = f"\n  ... and {len(idx) - MAX_LISTED} more" if len(idx) > MAX_LISTED else ""
    raise AssertionError(f"{what}: {len(idx)} of {n} vectors mismatch:\n  "
                         + "\n  ".join(lines) + more)
