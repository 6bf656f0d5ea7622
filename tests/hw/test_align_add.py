"""AlignAdd on Verilator, bit-exact vs sim.models.align_add, two width presets.

Two geometries per preset, widths from the config: the unsigned row sum
(S + m -> S, row_sum_width / prob_width) and a signed one
(wsum_width + product_width -> wsum_width + 1).
"""

import pytest

from hw.align_add import AlignAdd
from hw.config import preset


def geometries(cfg):
    return {
        "rowsum": dict(a_width=cfg.row_sum_width, b_width=cfg.prob_width,
                       out_width=cfg.row_sum_width, exp_width=cfg.exp_width, signed=False),
        "signed": dict(a_width=cfg.wsum_width, b_width=cfg.product_width,
                       out_width=cfg.wsum_width + 1, exp_width=cfg.exp_width, signed=True),
    }


@pytest.mark.parametrize("geometry", ["rowsum", "signed"])
@pytest.mark.parametrize("preset_name", ["small", "small-wide"])
def test_align_add_rtl(rtl, preset_name, geometry):
    cfg = preset(preset_name)
    g = geometries(cfg)[geometry]
    # row sum: S never exceeds out_width - m, so the sum fits (as in the PE chain)
    a_max = (1 << g["out_width"]) - (1 << g["b_width"]) if geometry == "rowsum" else None
    rtl(lambda: AlignAdd(**g), name="align_add", key={"unit": "align_add", **g},
        test_module="tests.hw.tb_align_add", top_only=True, params={**g, "a_max": a_max, "seed": 1})
