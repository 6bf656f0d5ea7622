"""Score multiply-accumulate unit of a PE (stage 1 of SALO's PE)."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed
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
    everything happens ``MUL_LATENCY`` cycles later: latency
    ``1 + MUL_LATENCY`` (instance attribute :attr:`latency`).

    ``zero_port=True`` (the PE's setting, FPGA timing: no clear multiplexer
    in front of the adder) replaces the input ``clear`` by ``zero``: ``acc``
    becomes 0 at the end of a cycle with ``zero`` high (not delayed; it
    overrides ``en``), and every enabled cycle adds q*k to ``acc``.  A
    score then starts from an ``acc`` zeroed after the previous one was
    read; the user keeps ``en`` (delayed by the latency) low in a ``zero``
    cycle.  ``acc`` then has no reset (it keeps its value through a reset:
    the user zeroes it; FPGA timing, the reset net reaches fewer
    flip-flops).
    """

    latency = 1

    def __init__(self, *, data_width: int, acc_width: int, product_reg: bool = False,
                 zero_port: bool = False):
        if data_width < 1:
            raise ValueError(f"data_width = {data_width} is invalid: allowed >= 1")
        if acc_width < 2 * data_width - 1:
            raise ValueError(f"acc_width = {acc_width} is invalid: allowed >= "
                             f"2*data_width-1 = {2 * data_width - 1}")
        self.data_width = data_width
        self.acc_width = acc_width
        self.product_reg = bool(product_reg)
        self.latency = 1 + MUL_LATENCY if product_reg else 1
        self.zero_port = bool(zero_port)
        super().__init__({
            "q": In(signed(data_width)),
            "k": In(signed(data_width)),
            "en": In(1),
            ("zero" if zero_port else "clear"): In(1),
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
            prod, en = mul.p, self.en
            clear = Const(0, 1) if self.zero_port else self.clear
            for n in range(mul.latency):
                # (kept apart, hw.fanout: the same in every row of a column)
                en_d = kept_apart_signal(name=f"en_d{n}")
                m.d.sync += en_d.eq(en)
                en = en_d
                if not self.zero_port:
                    clear_d = kept_apart_signal(name=f"clear_d{n}")
                    m.d.sync += clear_d.eq(clear)
                    clear = clear_d
        else:
            prod, en = self.q * self.k, self.en
            clear = Const(0, 1) if self.zero_port else self.clear
        # with ``zero``: no reset (see above).  With ``clear``: reset (its
        # flip-flops' LSR then holds the reset, not the saturation: Yosys
        # maps a saturation to a constant onto a reset-less flip-flop's LSR,
        # 4x4 MAC grid 75.9 -> 67.9 MHz)
        acc = Signal.like(self.acc, name="acc_r", reset_less=self.zero_port)
        base = acc if self.zero_port else Mux(clear, 0, acc)
        total = Signal(signed(max(w, 2 * self.data_width) + 1))
        m.d.comb += [total.eq(base + prod), self.acc.eq(acc)]
        if self.zero_port:
            # (a synchronous reset of acc's flip-flops: no logic level in
            # front of the adder)
            with m.If(self.zero):
                m.d.sync += acc.eq(0)
            with m.Elif(en):
                m.d.sync += acc.eq(saturate(total, w))
        else:
            with m.If(en):
                m.d.sync += acc.eq(saturate(total, w))
        return m
