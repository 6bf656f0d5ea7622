"""MergeUnit: cocotb on Verilator (bit-exact vs sim.array_model.merge /
normalize, random passes, timing and back-pressure) and Verilator -Wall lint,
for two width presets so that width changes flow through."""

from __future__ import annotations

import pytest

from hw.config import preset
from hw.merge import MergeUnit, merge_params

# (preset, divider steps per cycle, min_head_dim): both presets with the
# default 2 steps (recip_frac + 1 = 33 / 47 is odd: the padded divider), and
# small as the accelerator top builds it (min_head_dim 4: the two-cycle
# element and row-sum merges, no transparent read) with 2 steps and with 1
# (the fpga preset's), and min_head_dim 3 (two-cycle merges, the read
# transparent for a write in the same cycle)
CASES = [("small", 2, 1), ("small-wide", 2, 1), ("small", 1, 4), ("small", 2, 4),
         ("small", 2, 3)]
IDS = [f"{p}-div{s}" + (f"-min{d}" if d > 1 else "") for p, s, d in CASES]


def _factory(name, steps, min_d):
    cfg = preset(name)
    return lambda: MergeUnit(**merge_params(cfg, div_steps_per_cycle=steps),
                             min_head_dim=min_d)


@pytest.mark.parametrize("preset_name,steps,min_d", CASES, ids=IDS)
def test_merge_unit(rtl, preset_name, steps, min_d):
    mu = _factory(preset_name, steps, min_d)()
    mu._MustUse__silence = True
    rtl(_factory(preset_name, steps, min_d), name="merge_unit",
        key={"unit": "merge", "preset": preset_name, "div_steps": steps, "min_d": min_d},
        test_module="tests.hw.tb_merge",
        params={"preset": preset_name, "div_steps": steps, "seed": 1234,
                "emit_latency": mu.emit_latency, "rs_latency": mu.rs_latency,
                "out_latency": mu.out_latency, "min_head_dim": min_d, "deep": int(mu.deep)})


@pytest.mark.parametrize("preset_name,steps,min_d", CASES, ids=IDS)
def test_merge_unit_lint(lint, preset_name, steps, min_d):
    problems = lint(_factory(preset_name, steps, min_d), name="merge_unit",
                    key={"unit": "merge", "preset": preset_name, "div_steps": steps,
                         "min_d": min_d})
    assert problems == [], "\n".join(problems)
