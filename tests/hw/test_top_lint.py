"""``verilator --lint-only -Wall`` of the accelerator top (waivers:
sim/lint_waivers.vlt) for the small, fpga and salo-dac22 presets."""

from __future__ import annotations

import time

import pytest

from hw.config import PRESETS


@pytest.mark.parametrize("name", ["small", "fpga",
                                  pytest.param("salo-dac22", marks=pytest.mark.slow)])
def test_top_lint(lint, name):
    from hw.top import SaloTop
    cfg = PRESETS[name]
    t0 = time.monotonic()
    problems = lint(lambda: SaloTop(cfg), name="salo_top", key={"config": cfg.to_dict()})
    print(f"lint of the top for {name}: {time.monotonic() - t0:.1f} s")
    assert problems == [], "\n".join(problems[:40])
