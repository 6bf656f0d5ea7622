"""Bit-exact unit models against independent integer/float oracles."""

import dataclasses

import numpy as np
import pytest

from hw.config import PRESETS
from sim.accuracy import exp_accuracy_table
from sim.array_model import PassInputs, empty_partial, local_key_slots, merge, normalize, run_pass
from sim.fixed import dequantize, quantize
from sim.models import align_add, exp2_pwl, score_mac
from sim.reference import masked_attention, relative_rms_error

WIDTHS = ["small", "small-wide"]


@pytest.mark.parametrize("name", WIDTHS)
def test_exp_accuracy_within_documented_bound(name):
    rows = exp_accuracy_table(PRESETS[name], (4, 8, 16))
    for r in rows:
        print(f"{name}: {r.segments:2d} segments max {r.max_rel_error:.3e} "
              f"mean {r.mean_rel_error:.3e} bound {r.bound:.3e}")
        assert r.max_rel_error <= r.bound
    # with enough mantissa bits, more segments must help
    if PRESETS[name].prob_frac >= 12:
        assert rows[0].max_rel_error > rows[1].max_rel_error > rows[2].max_rel_error


@pytest.mark.parametrize("name", WIDTHS)
def test_exp_saturation_and_flush(name):
    c = PRESETS[name]
    sf = c.score_frac
    m, e = exp2_pwl(np.array([(c.exp_max + 1) << sf, (c.exp_min - 1) << sf,
                              c.exp_min << sf, 0]), c)
    assert e[0] == c.exp_max and m[0] == (1 << (c.prob_frac + 1)) - 1
    assert (m[1], e[1]) == (0, c.exp_min)
    # the minimax line may sit a little below 1.0 at f = 0, never more than the bound
    bound = exp_accuracy_table(c, (c.exp_segments,))[0].bound
    assert e[2] == c.exp_min and m[2] >= (1 - bound) * (1 << c.prob_frac)
    assert e[3] == 0 and abs(m[3] / (1 << c.prob_frac) - 1) <= bound


@pytest.mark.parametrize("name", WIDTHS)
def test_score_mac_saturates_every_step(name):
    c = PRESETS[name]
    rng = np.random.default_rng(1)
    lo, hi = -(1 << (c.data_width - 1)), (1 << (c.data_width - 1)) - 1
    q = rng.integers(lo, hi + 1, size=(200, 16))
    k = rng.integers(lo, hi + 1, size=(200, 16))
    q[0], k[0] = lo, lo          # most negative squared, repeatedly: positive saturation
    q[1], k[1] = lo, hi          # negative saturation
    got = score_mac(q, k, c)
    amax, amin = (1 << (c.acc_width - 1)) - 1, -(1 << (c.acc_width - 1))
    for r in range(q.shape[0]):
        acc = 0
        for x in range(q.shape[1]):
            acc = min(amax, max(amin, acc + int(q[r, x]) * int(k[r, x])))
        assert got[r] == acc, r


def test_align_add_is_floor_of_exact_scaling():
    rng = np.random.default_rng(2)
    a = rng.integers(-1 << 20, 1 << 20, 500)
    b = rng.integers(-1 << 20, 1 << 20, 500)
    ea = rng.integers(-16, 16, 500)
    eb = rng.integers(-16, 16, 500)
    ea[:5] = -100  # shifts far beyond the word width: sign fill
    s, e = align_add(a, ea, b, eb)
    for i in range(500):
        E = max(ea[i], eb[i])
        want = int(a[i]) // 2 ** int(E - ea[i]) + int(b[i]) // 2 ** int(E - eb[i])
        assert (s[i], e[i]) == (want, E)


def _naive_reference(q, k, v, mask):
    out = np.zeros_like(v)
    for i in range(q.shape[0]):
        ks = [j for j in range(k.shape[0]) if mask[i, j]]
        w = np.array([np.exp(q[i] @ k[j]) for j in ks])
        out[i] = (w[:, None] * v[ks]).sum(0) / w.sum()
    return out


def test_float_reference_matches_naive_loop():
    rng = np.random.default_rng(3)
    q, k, v = rng.standard_normal((3, 9, 5))
    mask = rng.random((9, 9)) < 0.4
    mask[np.arange(9), np.arange(9)] = True
    np.testing.assert_allclose(masked_attention(q, k, v, mask), _naive_reference(q, k, v, mask))


@pytest.mark.parametrize("name,limit", [("small", 0.06), ("small-wide", 0.005)])
def test_array_model_single_pass_close_to_float(name, limit):
    """A full band pass through the bit-exact array model (local PEs only,
    global/random parts masked off) against masked softmax in base 2."""
    c = dataclasses.replace(PRESETS[name], global_rows=0, global_cols=0, random_cols=0)
    rng = np.random.default_rng(4)
    d, R, C = 16, c.rows, c.cols
    errs = []
    for trial in range(20):
        qf = rng.standard_normal((R, d)) * 0.35
        kf = rng.standard_normal((c.key_slots, d)) * 0.35
        vf = rng.standard_normal((c.key_slots, d))
        q, k, v = (quantize(x, c.data_width, c.data_frac) for x in (qf, kf, vf))
        valid = np.ones((R, C), dtype=bool)
        local, _ = run_pass(PassInputs(q, k, v, valid), c)
        acc = merge(empty_partial((R,), d, c), local)
        out = dequantize(normalize(acc, c), c.out_frac)
        mask = np.zeros((R, c.key_slots), dtype=bool)
        mask[np.arange(R)[:, None], local_key_slots(c)] = True
        ref = masked_attention(dequantize(q, c.data_frac), dequantize(k, c.data_frac),
                               dequantize(v, c.data_frac), mask, base=2.0)
        errs.append(relative_rms_error(out, ref))
    print(f"{name}: relative RMS error over 20 passes: mean {np.mean(errs):.4f} max {np.max(errs):.4f}")
    assert np.max(errs) < limit


def test_masked_pairs_contribute_nothing():
    c = dataclasses.replace(PRESETS["small"], global_rows=0, global_cols=0)
    rng = np.random.default_rng(5)
    q = rng.integers(-60, 60, (c.rows, 8))
    k = rng.integers(-60, 60, (c.key_slots, 8))
    v = rng.integers(-200, 200, (c.key_slots, 8))
    valid = rng.random((c.rows, c.cols)) < 0.5
    valid[:, 0] = True
    base, _ = run_pass(PassInputs(q, k, v, valid), c)
    # garbage in every masked pair's key and value must not change a bit
    slots = local_key_slots(c)
    k2, v2 = k.copy(), v.copy()
    for s in range(c.key_slots):
        if not valid[slots == s].any():
            k2[s] = rng.integers(-255, 255, 8)
            v2[s] = rng.integers(-255, 255, 8)
    again, _ = run_pass(PassInputs(q, k2, v2, valid), c)
    for a, b in ((base.out, again.out), (base.sum, again.sum), (base.exp, again.exp)):
        np.testing.assert_array_equal(a, b)


def test_split_window_merge_equals_float_of_union():
    """Three passes over disjoint key ranges merged == softmax over the union."""
    c = dataclasses.replace(PRESETS["small-wide"], global_rows=0, global_cols=0)
    rng = np.random.default_rng(6)
    d, R = 8, c.rows
    q = quantize(rng.standard_normal((R, d)) * 0.4, c.data_width, c.data_frac)
    acc = empty_partial((R,), d, c)
    keys_all, vals_all = [], []
    for p in range(3):
        k = quantize(rng.standard_normal((c.key_slots, d)) * 0.4, c.data_width, c.data_frac)
        # the driver scales V by a power of two to use the word's range (here x8)
        v = quantize(rng.standard_normal((c.key_slots, d)) * 8, c.data_width, c.data_frac)
        local, _ = run_pass(PassInputs(q, k, v, np.ones((R, c.cols), bool)), c)
        acc = merge(acc, local)
        keys_all.append(k); vals_all.append(v)
    K = np.concatenate(keys_all); V = np.concatenate(vals_all)
    mask = np.zeros((R, K.shape[0]), dtype=bool)
    for p in range(3):
        mask[np.arange(R)[:, None], p * c.key_slots + local_key_slots(c)] = True
    ref = masked_attention(*(dequantize(x, c.data_frac) for x in (q, K, V)), mask, base=2.0)
    out = dequantize(normalize(acc, c), c.out_frac)
    assert relative_rms_error(out, ref) < 0.005
