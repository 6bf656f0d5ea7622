"""PE test on Verilator: a 1 x P row of PEs (P = the preset's row chain length)
streams back-to-back passes with random data and masks; every PE's row-sum
and weighted-sum output is checked bit-exact (value and cycle) against
``sim.array_model.row_chain`` of the prefix of the row (cocotb module
``tests.hw.tb_pe``)."""

from __future__ import annotations

import dataclasses

import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.config import PRESETS
from hw.pe import PE, chain_row, chain_value_delay, pe_params


class PERow(wiring.Component):
    """Test fixture: P PEs chained as one array row.  Every PE has its own
    ``kv`` word and ``pair_valid`` bit (the testbench applies the skew), and
    every PE's row-sum / weighted-sum outputs are visible as top ports."""

    def __init__(self, cfg, P: int):
        self.cfg, self.P = cfg, P
        self.pes = [PE(**pe_params(cfg), pass_q=j + 1 < P, pass_kv=False, rs_chain_in=j > 0,
                       value_delay=chain_value_delay(j, cfg.wsum_stage))
                    for j in range(P)]
        dw = cfg.data_width
        super().__init__({
            "q": In(signed(dw)), "q_valid": In(1), "q_last": In(1),
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
        chain_row(m, self.pes, q=self.q, q_valid=self.q_valid,
                  q_last=self.q_last, q_parity=self.q_parity, v_valid=self.v_valid,
                  v_parity=self.v_parity)
        for j, pe in enumerate(self.pes):
            # the row-sum exponent/valid lead the sum by PE.rs_lead cycles
            e, ev = pe.rs_exp_out, pe.rs_valid_out
            for k in range(PE.rs_lead):
                e2, ev2 = Signal.like(e, name=f"rse{j}_{k}"), Signal(name=f"rsv{j}_{k}")
                m.d.sync += [e2.eq(e), ev2.eq(ev)]
                e, ev = e2, ev2
            m.d.comb += [pe.kv_in.eq(self.kv[j]), pe.pair_valid.eq(self.pair_valid[j]),
                         self.rs_sum[j].eq(pe.rs_sum_out), self.rs_exp[j].eq(e),
                         self.rs_valid[j].eq(ev),
                         self.rs_parity[j].eq(pe.rs_parity_out),
                         self.ws[j].eq(pe.ws_out)]
            # the PE's weighted-sum control leads its data by PE.ws_lead
            # cycles: delay it like a row end of the array does
            v, p = pe.ws_valid_out, pe.ws_parity_out
            for k in range(PE.ws_lead):
                v2, p2 = Signal(name=f"wsv{j}_{k}"), Signal(name=f"wsp{j}_{k}")
                m.d.sync += [v2.eq(v), p2.eq(p)]
                v, p = v2, p2
            m.d.comb += [self.ws_valid[j].eq(v), self.ws_parity[j].eq(p)]
        return m


@pytest.mark.parametrize("preset,wsum_stage", [("small", 0), ("small-wide", 0), ("small", 1)])
def test_pe_row(rtl, preset, wsum_stage):
    cfg = dataclasses.replace(PRESETS[preset], wsum_stage=wsum_stage)
    P = cfg.row_pes
    rtl(lambda: PERow(cfg, P), name="pe_row", key={"config": cfg.to_dict(), "P": P},
        test_module="tests.hw.tb_pe",
        params={"config": cfg.to_dict(), "P": P, "exp_latency": PE.exp_latency,
                "ws_latency": PE.ws_latency_of(wsum_stage),
                "ws_hop": PE.ws_hop_of(wsum_stage), "seed": 1234})


def test_chain_row_checks_value_delays():
    """With the weighted-sum stage, a PE's value delay must match its place
    in the chain (its control arrives one cycle later per PE before it)."""
    cfg = dataclasses.replace(PRESETS["small"], wsum_stage=1)
    assert [chain_value_delay(p, 1) for p in range(4)] == [0, 1, 2, 3]
    assert chain_value_delay(3, 0) == 0
    pes = [PE(**pe_params(cfg), value_delay=0, rs_chain_in=j > 0) for j in range(2)]
    for pe in pes:
        pe._MustUse__silence = True     # (never elaborated: no UnusedElaboratable warning)
    m = Module()
    m._MustUse__silence = True
    with pytest.raises(ValueError, match="PE 1 of a row chain has value_delay = 0, needs 1"):
        chain_row(m, pes, q=0, q_valid=0, q_last=0, q_parity=0, v_valid=0, v_parity=0)
    with pytest.raises(ValueError, match="wsum_stage = 2") as exc:
        PE(**dict(pe_params(cfg), wsum_stage=2))
    # (the half-built PE in the raising frame is never elaborated: silence
    # its UnusedElaboratable warning)
    tb = exc.value.__traceback__
    while tb is not None:
        if isinstance(tb.tb_frame.f_locals.get("self"), PE):
            tb.tb_frame.f_locals["self"]._MustUse__silence = True
        tb = tb.tb_next
