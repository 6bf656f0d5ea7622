"""PE test on Verilator: a 1 x P row of PEs (P = the preset's row chain length)
streams back-to-back passes with random data and masks; every PE's row-sum
and weighted-sum output is checked bit-exact (value and cycle) against
``sim.array_model.row_chain`` of the prefix of the row (cocotb module
``tests.hw.tb_pe``)."""

from __future__ import annotations

import pytest
from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.config import PRESETS
from hw.pe import PE, pe_params


class PERow(wiring.Component):
    """Test fixture: P PEs chained as one array row.  Every PE has its own
    ``kv`` word and ``pair_valid`` bit (the testbench applies the skew), and
    every PE's row-sum / weighted-sum outputs are visible as top ports."""

    def __init__(self, cfg, P: int):
        self.cfg, self.P = cfg, P
        self.pes = [PE(**pe_params(cfg), pass_q=j + 1 < P, pass_kv=False)
                    for j in range(P)]
        dw = cfg.data_width
        super().__init__({
            "q": In(signed(dw)), "q_valid": In(1), "q_first": In(1), "q_last": In(1),
            "q_parity": In(1),
            "kv": In(data.ArrayLayout(signed(dw), P)),
            "pair_valid": In(P),
            "v_valid": In(1), "v_parity": In(1),
            "rs_sum": Out(data.ArrayLayout(unsigned(cfg.row_sum_width), P)),
            "rs_exp": Out(data.ArrayLayout(signed(cfg.exp_width), P)),
            "rs_valid": Out(P), "rs_parity": Out(P),
            "ws": Out(data.ArrayLayout(signed(cfg.wsum_width), P)),
            "ws_valid": Out(P), "ws_parity": Out(P),
        })

    def elaborate(self, platform):
        m = Module()
        for j, pe in enumerate(self.pes):
            m.submodules[f"pe{j}"] = pe
            if j == 0:
                m.d.comb += [pe.q_in.eq(self.q), pe.q_valid_in.eq(self.q_valid),
                             pe.q_first_in.eq(self.q_first), pe.q_last_in.eq(self.q_last),
                             pe.q_parity_in.eq(self.q_parity),
                             pe.rs_sum_in.eq(0), pe.rs_exp_in.eq(self.cfg.exp_min),
                             pe.rs_valid_in.eq(0),
                             pe.ws_in.eq(0), pe.ws_valid_in.eq(self.v_valid),
                             pe.ws_parity_in.eq(self.v_parity)]
            else:
                left = self.pes[j - 1]
                m.d.comb += [pe.q_in.eq(left.q_out), pe.q_valid_in.eq(left.q_valid_out),
                             pe.q_first_in.eq(left.q_first_out), pe.q_last_in.eq(left.q_last_out),
                             pe.q_parity_in.eq(left.q_parity_out),
                             pe.rs_sum_in.eq(left.rs_sum_out), pe.rs_exp_in.eq(left.rs_exp_out),
                             pe.rs_valid_in.eq(left.rs_valid_out),
                             pe.ws_in.eq(left.ws_out), pe.ws_valid_in.eq(left.ws_valid_out),
                             pe.ws_parity_in.eq(left.ws_parity_out)]
            m.d.comb += [pe.kv_in.eq(self.kv[j]), pe.pair_valid.eq(self.pair_valid[j]),
                         self.rs_sum[j].eq(pe.rs_sum_out), self.rs_exp[j].eq(pe.rs_exp_out),
                         self.rs_valid[j].eq(pe.rs_valid_out),
                         self.rs_parity[j].eq(pe.rs_parity_out),
                         self.ws[j].eq(pe.ws_out), self.ws_valid[j].eq(pe.ws_valid_out),
                         self.ws_parity[j].eq(pe.ws_parity_out)]
        return m


@pytest.mark.parametrize("preset", ["small", "small-wide"])
def test_pe_row(rtl, preset):
    cfg = PRESETS[preset]
    P = cfg.row_pes
    L = PE.exp_latency
    rtl(lambda: PERow(cfg, P), name="pe_row", key={"preset": preset, "P": P},
        test_module="tests.hw.tb_pe",
        params={"preset": preset, "P": P, "exp_latency": L, "seed": 1234})
