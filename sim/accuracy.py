"""Accuracy of the piecewise-linear 2**x unit against float, per segment count."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from hw.config import AcceleratorConfig
from hw.exp_table import pwl_error_bound
from .models import exp2_pwl

__all__ = ["ExpAccuracy", "exp_accuracy", "exp_accuracy_table"]


@dataclass(frozen=True)
class ExpAccuracy:
    """Relative error of the exp unit over every in-range input of a config."""
    segments: int
    prob_frac: int
    inputs: int
    max_rel_error: float
    mean_rel_error: float
    bound: float


def exp_accuracy(cfg: AcceleratorConfig) -> ExpAccuracy:
    """Evaluate ``exp2_pwl`` on every score whose integer part lies inside the
    exponent range (outside it the unit saturates or flushes by design)."""
    sf = cfg.score_frac
    s = np.arange(cfg.exp_min << sf, (cfg.exp_max + 1) << sf, dtype=np.int64)
    m, e = exp2_pwl(s, cfg)
    approx = m.astype(np.float64) * np.exp2(e.astype(np.float64) - cfg.prob_frac)
    exact = np.exp2(s.astype(np.float64) / (1 << sf))
    rel = np.abs(approx - exact) / exact
    return ExpAccuracy(cfg.exp_segments, cfg.prob_frac, int(s.size), float(rel.max()),
                       float(rel.mean()),
                       pwl_error_bound(segments=cfg.exp_segments, prob_frac=cfg.prob_frac))


def exp_accuracy_table(cfg: AcceleratorConfig, segment_counts=(4, 8, 16)) -> list[ExpAccuracy]:
    """``exp_accuracy`` for ``cfg`` with each segment count substituted."""
    return [exp_accuracy(dataclasses.replace(cfg, exp_segments=n)) for n in segment_counts]
