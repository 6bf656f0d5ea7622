"""Exp2Pwl on Verilator, bit-exact vs sim.models.pe_probability, two width presets.

Coverage: ``small`` (acc_width 18): every one of the 2**18 scores.
``small-wide`` (acc_width 40, 2**40 scores is too many): every integer part in
[exp_min-1, exp_max+1] with all segment boundaries (+-1) and 256 random
fractions each, all 2**16 fractions of integer part 0, the extremes of the
40-bit range and 4096 random scores over it.  Both: 4000 random scores with
random valid_in bubbles and zero_in masks.  Each with the multiplier of the
slope term (``lut_mult=False``) and with the LUT form the PE uses
(``lut_mult=True``: two chunk tables for ``small``, the shift-and-add trees
for ``small-wide``).
"""

import pytest

from hw.config import preset
from hw.exp2 import Exp2Pwl

#: exhaustive sweep up to this score width (small: 18 bits = 262144 scores)
EXHAUSTIVE_MAX_BITS = 18


def exp2_of(cfg, lut_mult=False):
    return Exp2Pwl(acc_width=cfg.acc_width, score_frac=cfg.score_frac,
                   prob_width=cfg.prob_width, prob_frac=cfg.prob_frac,
                   exp_width=cfg.exp_width, segments=cfg.exp_segments, lut_mult=lut_mult)


@pytest.mark.parametrize("lut_mult", [False, True], ids=["mul", "lut_mult"])
@pytest.mark.parametrize("preset_name", ["small", "small-wide"])
def test_exp2_rtl(rtl, preset_name, lut_mult):
    cfg = preset(preset_name)
    rtl(lambda: exp2_of(cfg, lut_mult), name="exp2_pwl",
        key={"unit": "exp2", "config": cfg.to_dict(), "lut_mult": lut_mult},
        test_module="tests.hw.tb_exp2", top_only=True,
        params={"preset": preset_name, "latency": Exp2Pwl.latency,
                "exhaustive_max_bits": EXHAUSTIVE_MAX_BITS, "seed": 1})
