"""Array tests on Verilator: :class:`hw.array.ArrayCore` (PE array + merge
units) for four shapes of the ``small`` preset, all scenarios of a shape in
one cocotb module run (``tests.hw.tb_array``: single pass; a >= 16-pass
back-to-back schedule of >= 4 tiles with 3-pass windows, sequence-edge masks,
global rows/columns and random columns, with the measured cycles per pass
and the RMS error vs the float reference in the log).  Plus the lint of the
32x32 ``salo-dac22`` configuration."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from hw.array import ArrayCore, PEArray
from hw.config import PRESETS
from hw.merge import merge_output_layout, merge_params, normalize_cycles
from hw.pe import PE
from hw.top import top_geometry

#: (rows, cols, global rows, global cols, random cols, column stage, wsum
#: stage); the first is the ``fpga`` preset's geometry, the second streams at
#: the smallest head dim its wsum_stage allows
SHAPES = [(4, 4, 1, 1, 0, 1, 1), (8, 8, 1, 1, 2, 1, 1), (8, 4, 0, 1, 0, 0, 0),
          (4, 8, 2, 0, 0, 0, 0)]


def shape_config(shape):
    R, C, Gr, Gc, Rc, B, S = shape
    return dataclasses.replace(PRESETS["small"], rows=R, cols=C, global_rows=Gr,
                               global_cols=Gc, random_cols=Rc, column_stage=B,
                               wsum_stage=S)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_array_core(rtl, shape):
    cfg = shape_config(shape)
    index_width = merge_output_layout(head_dim_max=cfg.max_head_dim,
                                      out_width=cfg.out_width)["index"].shape.width
    t0 = time.monotonic()
    bdir = rtl(lambda: ArrayCore(cfg), name="array_core", key={"config": cfg.to_dict()},
               test_module="tests.hw.tb_array", top_only=True,
               params={"config": cfg.to_dict(), "exp_latency": PE.exp_latency,
                       "ws_lead": PE.ws_lead,
                       "min_head_dim": top_geometry(cfg)["min_head_dim"],
                       "index_width": index_width, "seed": 2024,
                       "normalize_cycles": normalize_cycles(
                           recip_frac=cfg.recip_frac,
                           div_steps_per_cycle=merge_params(cfg)["div_steps_per_cycle"])})
    bt = (bdir / "build_time.txt").read_text().strip()
    print(f"array {shape}: Verilator build {bt} s (recorded when its build dir was made), "
          f"total {time.monotonic() - t0:.1f} s")
    for line in (bdir / "test.log").read_text().splitlines():
        if "STREAM" in line or "RMS" in line or "checked" in line:
            print(line.strip())


@pytest.mark.parametrize("top,preset_name", [
    # 32x32: minutes of conversion and lint -> `pytest -m slow`
    pytest.param("ArrayCore", "salo-dac22", marks=pytest.mark.slow),
    # a small all-features shape: same code paths, seconds instead of minutes
    ("ArrayCore", "small-all"),
    ("PEArray", "small-all"),
])
def test_array_lint(lint, top, preset_name):
    if preset_name == "small-all":
        cfg = shape_config((3, 2, 2, 1, 2, 1, 0))
    else:
        cfg = PRESETS[preset_name]
    cls = {"ArrayCore": ArrayCore, "PEArray": PEArray}[top]
    t0 = time.monotonic()
    problems = lint(lambda: cls(cfg), name=top.lower(), key={"config": cfg.to_dict()})
    print(f"lint {top} {preset_name} ({cfg.describe()}): {time.monotonic() - t0:.0f} s, "
          f"{len(problems)} findings beyond the waivers and alias filter")
    assert problems == [], "\n".join(problems[:40])
