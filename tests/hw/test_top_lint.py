"""``verilator --lint-only -Wall`` of the accelerator top (waivers:
sim/lint_waivers.vlt) for the small, fpga and salo-dac22 presets.

Amaranth's alias and tie-off wires are filtered by ``sim.runner.lint_verilog``;
everything else must be clean.  fpga and salo-dac22 take minutes (the
salo-dac22 Verilog is tens of MB): ``pytest -m slow tests/hw/test_top_lint.py``.
"""

from __future__ import annotations

import collections
import re
import time

import pytest

from hw.config import PRESETS

@pytest.mark.parametrize("name", ["small",
                                  pytest.param("fpga", marks=pytest.mark.slow),
                                  pytest.param("salo-dac22", marks=pytest.mark.slow)])
def test_top_lint(lint, name):
    from hw.top import SaloTop
    cfg = PRESETS[name]
    t0 = time.monotonic()
    problems = lint(lambda: SaloTop(cfg), name="salo_top", key={"config": cfg.to_dict()})
    dt = time.monotonic() - t0
    by_rule = collections.Counter(re.match(r"%\w+(-\w+)?", p).group(0) for p in problems)
    print(f"lint of the top for {name}: {dt:.1f} s, {len(problems)} reports: {dict(by_rule)}")
    assert problems == [], "\n".join(problems[:40])
