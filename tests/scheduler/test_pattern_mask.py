"""The mask the tool computes equals the schema's definition (loop oracle)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings

from scheduler.pattern import (PatternError, dense_mask, parse_pattern,
                               random_keys)
try:                                   # tests/ is a package (normal run)
    from tests.scheduler.oracle import oracle_for_pattern
    from tests.scheduler.strategies import patterns
except ImportError:                     # run without the package markers
    from oracle import oracle_for_pattern
    from strategies import patterns

def parse_or_skip(pd):
    try:
        return parse_pattern(pd)
    except PatternError:
        assume(False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patterns())
def test_mask_matches_definition(pd):
    p = parse_or_skip(pd)
    want = oracle_for_pattern(pd, p)
    if not want.any(axis=1).all():
        with pytest.raises(PatternError, match="attends no key"):
            dense_mask(p)
        return
    np.testing.assert_array_equal(dense_mask(p), want)


@pytest.mark.parametrize("pd", [
    {"seq_len": 10, "head_dim": 4, "window": {"left": 2, "right": 1, "dilation": 3},
     "global_tokens": [4]},
    {"seq_len": 1 + 12, "head_dim": 4, "grid": {"height": 3, "width": 4, "radius_h": 1,
                                                 "radius_w": 1}, "global_tokens": [0]},
    {"seq_len": 9, "head_dim": 4, "window": {"left": 0, "right": 0}, "causal": True},
])
def test_mask_examples(pd):
    p = parse_pattern(pd)
    np.testing.assert_array_equal(dense_mask(p), oracle_for_pattern(pd, p))


def test_random_keys_distinct_and_seeded():
    a = random_keys(50, 7, 3)
    assert all(len(set(r)) == 7 for r in a.tolist())
    np.testing.assert_array_equal(a, random_keys(50, 7, 3))
    assert not np.array_equal(a, random_keys(50, 7, 4))


@pytest.mark.parametrize("n,r", [(50, 3), (50, 12), (50, 13), (50, 50), (7, 1)])
def test_random_keys_distinct_in_range(n, r):
    a = random_keys(n, r, 11)
    assert a.shape == (n, r) and a.min() >= 0 and a.max() < n
    assert all(len(set(row)) == r for row in a.tolist())
