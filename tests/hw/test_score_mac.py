"""ScoreMac on Verilator, bit-exact vs sim.models.score_mac, two width presets."""

import pytest

from hw.config import preset
from hw.score_mac import ScoreMac


@pytest.mark.parametrize("preset_name", ["small", "small-wide"])
def test_score_mac_rtl(rtl, preset_name):
    cfg = preset(preset_name)
    rtl(lambda: ScoreMac(data_width=cfg.data_width, acc_width=cfg.acc_width),
        name="score_mac", key={"unit": "score_mac", "config": cfg.to_dict()},
        test_module="tests.hw.tb_score_mac", top_only=True,
        params={"preset": preset_name, "latency": ScoreMac.latency, "seed": 1})
