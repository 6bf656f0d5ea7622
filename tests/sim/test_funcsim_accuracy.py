"""Acceptance: every reference workload at N=512 (2D: 16x16 grid), random
N(0, 1) Q/K/V, functional simulator vs float64 reference.  Prints the figure
per workload (pytest -s)."""

import functools
from pathlib import Path

import pytest

from hw.config import preset
from scheduler.pattern import load_pattern
from sim.driver import scaled_workload, workload_error

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WORKLOADS = ["longformer-base", "longformer-16k", "vil-stage1", "vil-stage2", "bigbird-base"]


@functools.lru_cache(maxsize=None)
def _err(name, pname):
    cfg = preset(pname)
    p = scaled_workload(load_pattern(EXAMPLES / f"{name}.json"), cfg)
    e = workload_error(p, cfg)
    print(f"\n{name} on {pname}: N={p.seq_len} d={p.head_dim} relative RMS error {e:.3%}")
    return e


@pytest.mark.parametrize("name", WORKLOADS)
def test_wide_format_within_half_percent(name):
    assert _err(name, "small-wide") <= 0.005


@pytest.mark.slow
@pytest.mark.parametrize("name", WORKLOADS)
def test_wide_preset_d64_within_half_percent(name):
    assert _err(name, "wide") <= 0.005


@pytest.mark.parametrize("name", WORKLOADS)
def test_default_preset_within_five_percent(name):
    # 9-bit SALO data with 16-bit/11-fraction outputs: measured 4.0% .. 4.7%
    assert _err(name, "small") <= 0.05
