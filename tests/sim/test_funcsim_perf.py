"""Functional simulator speed on one head of longformer-base (N=4096, d=64)."""

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest

from hw.config import preset
from scheduler.pattern import load_pattern
from scheduler.schedule import compile_pattern
from sim.driver import quantize_inputs
from sim.funcsim import simulate

EX = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.slow
@pytest.mark.parametrize("pname", ["salo-dac22", "wide"])
def test_longformer_base_one_head_under_60s(pname):
    p = dataclasses.replace(load_pattern(EX / "longformer-base.json"), heads=1)
    cfg = preset(pname)
    s = compile_pattern(p, cfg)
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 4096, 64)) for _ in range(3))
    qi, ki, vi, _ = quantize_inputs(q, k, v, cfg)
    t = time.perf_counter()
    simulate(s, qi, ki, vi)
    dt = time.perf_counter() - t
    print(f"\nlongformer-base, 1 head, {pname}: {s.passes_per_head} passes in {dt:.1f} s")
    assert dt < 60
