"""Score multiply-accumulate unit of a PE (stage 1 of SALO's PE)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.dsp import MUL_LATENCY, PipelinedMultiplier
from hw.fanout import kept_apart_signal
from hw.saturate import saturate

__all__ = ["ScoreMac"]


class ScoreMac(wiring.Component):
    """Saturating multiply-accumulate ``acc <= sat((0 if clear else acc) + q*k)``.

    Parameters (widths computed by the caller from the config):
    ``data_width`` (q, k: signed) and ``acc_width`` (acc: signed, saturating;
    at least ``2*data_width - 1``).

    Ports: in ``q``, ``k``, ``en``, ``clear``; out ``acc``.

    Timing: latency 1 (default).  ``acc`` is the only register: on a clock
    edge with ``en`` high it takes the saturated sum; with ``en`` low it holds
    (``clear`` is ignored then).  ``clear`` with ``en`` starts a new score with
    q*k (no bubble).  Reset value 0.  Bit-exact vs
    :func:`sim.models.score_mac` (saturation after every step).

    ``product_reg=True`` (the PE's setting, for FPGA timing): q*k comes from a
    :class:`hw.dsp.PipelinedMultiplier` (operands and product registered, in
    the DSP block on an ECP5) and ``en``/``clear`` are delayed to match, so
    everything happens ``MUL_LATENCY`` = 2 cycles later: latency 3 (instance
    attribute :attr:`latency`).
    """

    latency = 1

    def __init__(self, *, data_width: int, acc_width: int, product_reg: bool = False):
        if data_width < 1:
            raise ValueError(f"data_width = {data_width} is invalid: allowed >= 1")
        if acc_width < 2 * data_width - 1:
            raise ValueError(f"acc_width = {acc_width} is invalid: allowed >= "
                             f"2*data_width-1 = {2 * data_width - 1}")
        self.data_width = data_width
        self.acc_width = acc_width
        self.product_reg = bool(product_reg)
        self.latency = 1 + MUL_LATENCY if product_reg else 1
        super().__init__({
            "q": In(signed(data_width)),
            "k": In(signed(data_width)),
            "en": In(1),
            "clear": In(1),
            "acc": Out(signed(acc_width)),
        })

    def elaborate(self, platform):
        m = Module()
        w = self.acc_width
        # exact: max(acc_width, 2*data_width) + 1 bits, no overflow before saturation
        if self.product_reg:
            m.submodules.mul = mul = PipelinedMultiplier(a_shape=signed(self.data_width),
                                                         b_shape=signed(self.data_width))
            m.d.comb += [mul.a.eq(self.q), mul.b.eq(self.k)]
            prod, en, clear = mul.p, self.en, self.clear
            for n in range(mul.latency):
                # (kept apart, hw.fanout: the same in every row of a column)
                en_d = kept_apart_signal(name=f"en_d{n}")
                clear_d = kept_apart_signal(name=f"clear_d{n}")
                m.d.sync += [en_d.eq(en), clear_d.eq(clear)]
                en, clear = en_d, clear_d
        else:
            prod, en, clear = self.q * self.k, self.en, self.clear
        base = Mux(clear, 0, self.acc)
        total = Signal(signed(max(w, 2 * self.data_width) + 1))
        m.d.comb += total.eq(base + prod)
        with m.If(en):
            m.d.sync += self.acc.eq(saturate(total, w))
        return m
