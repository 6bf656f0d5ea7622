"""`verilator --lint-only -Wall` of every PE unit, both width presets: nothing
may be reported beyond the waivers of sim/lint_waivers.vlt.  A planted
defect checks that the lint (and the narrowness of the waivers) still bites."""

import pytest
from amaranth.hdl import Module, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.align_add import AlignAdd
from hw.config import preset
from hw.exp2 import Exp2Pwl
from hw.score_mac import ScoreMac
from hw.weighted_acc import WeightedAcc

UNITS = {
    "score_mac": lambda c: ScoreMac(data_width=c.data_width, acc_width=c.acc_width),
    "exp2_pwl": lambda c: Exp2Pwl(acc_width=c.acc_width, score_frac=c.score_frac,
                                  prob_width=c.prob_width, prob_frac=c.prob_frac,
                                  exp_width=c.exp_width, segments=c.exp_segments),
    "align_add_rowsum": lambda c: AlignAdd(a_width=c.row_sum_width, b_width=c.prob_width,
                                           out_width=c.row_sum_width,
                                           exp_width=c.exp_width, signed=False),
    "align_add_signed": lambda c: AlignAdd(a_width=c.wsum_width, b_width=c.product_width,
                                           out_width=c.wsum_width + 1,
                                           exp_width=c.exp_width, signed=True),
    "weighted_acc": lambda c: WeightedAcc(prob_width=c.prob_width, data_width=c.data_width,
                                          in_width=c.wsum_width, out_width=c.wsum_width,
                                          shift_width=c.shift_width),
}


@pytest.mark.parametrize("unit", list(UNITS))
@pytest.mark.parametrize("preset_name", ["small", "small-wide"])
def test_lint_clean(lint, preset_name, unit):
    cfg = preset(preset_name)
    warnings = lint(lambda: UNITS[unit](cfg), name=unit,
                    key={"unit": unit, "config": cfg.to_dict()})
    assert warnings == [], "\n".join(warnings)


class _Planted(wiring.Component):
    """A truncating assignment leaves bits of a named port unused: the
    UNUSEDSIGNAL waiver (only `$`-named temporaries) must not hide it."""

    def __init__(self):
        super().__init__({"a": In(signed(8)), "y": Out(signed(4))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq(self.a)      # Amaranth truncates: y = a[3:0]
        return m


def test_lint_reports_planted_defect(lint):
    warnings = lint(_Planted, name="planted", key={"planted": 1})
    assert any("UNUSEDSIGNAL" in w and "'a'[7:4]" in w for w in warnings), warnings
