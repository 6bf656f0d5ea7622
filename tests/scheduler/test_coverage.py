"""Every pair of the mask is computed exactly once, read back from the
decoded program (coverage_counts) and compared with the loop oracle."""

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hw.config import preset
from hw.isa import decode, encode
from scheduler.coverage import check_coverage, coverage_counts
from scheduler.pattern import PatternError, parse_pattern
from scheduler.schedule import CoverageError, compile_pattern
try:                                   # tests/ is a package (normal run)
    from tests.scheduler.oracle import oracle_for_pattern
    from tests.scheduler.strategies import patterns
except ImportError:                     # run without the package markers
    from oracle import oracle_for_pattern
    from strategies import patterns

BASE = preset("small")
CONFIGS = {
    "small": BASE,
    "small-8x8": preset("small-8x8"),                       # random columns
    "no-globals": dataclasses.replace(BASE, global_rows=0, global_cols=0),
    "3x5-2g": dataclasses.replace(BASE, rows=3, cols=5, global_rows=2, global_cols=2,
                                  random_cols=1, kv_buffer_rows=8),
    "5x2": dataclasses.replace(BASE, rows=5, cols=2, kv_buffer_rows=6),
    "1x1": dataclasses.replace(BASE, rows=1, cols=1, random_cols=1),
}

@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patterns(), st.sampled_from(sorted(CONFIGS)))
def test_coverage_exact(pd, cname):
    try:
        p = parse_pattern(pd)
        want = oracle_for_pattern(pd, p)
        assume(want.any(axis=1).all())
        s = compile_pattern(p, CONFIGS[cname])
    except PatternError:
        assume(False)
    np.testing.assert_array_equal(coverage_counts(s), want.astype(np.int64))
    check_coverage(s)


@pytest.mark.parametrize("cname", sorted(CONFIGS))
@pytest.mark.parametrize("pd", [
    # N not a multiple of R or C, window narrower than C
    {"seq_len": 23, "head_dim": 4, "window": {"left": 1, "right": 1}},
    # window of 1
    {"seq_len": 13, "head_dim": 4, "window": {"left": 0, "right": 0}},
    # dilation > 1 with global tokens
    {"seq_len": 31, "head_dim": 4, "window": {"left": 3, "right": 2, "dilation": 3},
     "global_tokens": [0, 17]},
    # causal, dilated, global
    {"seq_len": 29, "head_dim": 4, "window": {"left": 4, "right": 4, "dilation": 2},
     "global_tokens": [5], "causal": True},
    # 2D with wrap, global token
    {"seq_len": 1 + 35, "head_dim": 4, "grid": {"height": 5, "width": 7, "radius_h": 1,
                                                 "radius_w": 2}, "global_tokens": [0]},
])
def test_coverage_odd_sizes(pd, cname):
    p = parse_pattern(pd)
    s = compile_pattern(p, CONFIGS[cname])
    np.testing.assert_array_equal(coverage_counts(s), oracle_for_pattern(pd, p).astype(np.int64))
    check_coverage(s)


def _sched():
    p = parse_pattern({"seq_len": 30, "head_dim": 4, "window": {"left": 3, "right": 3},
                       "global_tokens": [2], "heads": 2})
    return compile_pattern(p, BASE)


def test_check_detects_double_count():
    """Enabling the global column for a row whose band already holds the global
    key (token 2 for rows 0..5) must be reported as a pair computed twice."""
    s = _sched()
    p_, r_ = np.nonzero(~s.gcol_en[:, :, 0] & (s.col_lo <= s.col_hi))
    # first tile (rows 0..3 all have token 2 in their band [p-3, p+3])
    cand = [(a, b) for a, b in zip(p_.tolist(), r_.tolist()) if a < 2]
    assert cand
    s.gcol_en[cand[0][0], cand[0][1], 0] = True
    with pytest.raises(CoverageError, match="twice"):
        check_coverage(s)


def test_check_detects_missing_pair():
    s = _sched()
    i = int(np.flatnonzero(s.col_lo[:, 1] < s.col_hi[:, 1])[0])
    s.col_lo[i, 1] += 1
    with pytest.raises(CoverageError, match="differ"):
        check_coverage(s)


def test_heads_identical_and_program_roundtrip():
    s = _sched()
    check_coverage(s)
    back = decode(encode(s.program, s.cfg), s.cfg)
    np.testing.assert_array_equal(back.opcode, s.program.opcode)
    for n, v in s.program.fields.items():
        np.testing.assert_array_equal(back.field(n), v)
