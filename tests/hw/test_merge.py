"""MergeUnit: cocotb on Verilator (bit-exact vs sim.array_model.merge /
normalize, random passes, timing and back-pressure) and Verilator -Wall lint,
for two width presets so that width changes flow through."""

from __future__ import annotations

import pytest

from hw.config import preset
from hw.merge import MergeUnit, merge_params

# (preset, divider steps per cycle): both presets with the default 2 steps
# (recip_frac + 1 = 33 / 47 is odd: the padded divider), and small with 1 step
CASES = [("small", 2), ("small-wide", 2), ("small", 1)]


def _factory(name, steps):
    cfg = preset(name)
    return lambda: MergeUnit(**merge_params(cfg, div_steps_per_cycle=steps))


@pytest.mark.parametrize("preset_name,steps", CASES, ids=[f"{p}-div{s}" for p, s in CASES])
def test_merge_unit(rtl, preset_name, steps):
    rtl(_factory(preset_name, steps), name="merge_unit",
        key={"unit": "merge", "preset": preset_name, "div_steps": steps},
        test_module="tests.hw.tb_merge",
        params={"preset": preset_name, "div_steps": steps, "seed": 1234})


@pytest.mark.parametrize("preset_name,steps", CASES, ids=[f"{p}-div{s}" for p, s in CASES])
def test_merge_unit_lint(lint, preset_name, steps):
    problems = lint(_factory(preset_name, steps), name="merge_unit",
                    key={"unit": "merge", "preset": preset_name, "div_steps": steps})
    assert problems == [], "\n".join(problems)
