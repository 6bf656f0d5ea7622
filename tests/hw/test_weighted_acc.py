"""WeightedAcc on Verilator, bit-exact vs the row-chain formula, two width presets."""

import pytest

from hw.config import preset
from hw.weighted_acc import WeightedAcc


@pytest.mark.parametrize("preset_name", ["small", "small-wide"])
def test_weighted_acc_rtl(rtl, preset_name):
    cfg = preset(preset_name)
    g = dict(prob_width=cfg.prob_width, data_width=cfg.data_width,
             in_width=cfg.wsum_width, out_width=cfg.wsum_width, shift_width=cfg.shift_width)
    rtl(lambda: WeightedAcc(**g), name="weighted_acc", key={"unit": "weighted_acc", **g},
        test_module="tests.hw.tb_weighted_acc", top_only=True, params={**g, "seed": 1})
