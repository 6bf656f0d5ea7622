"""A multiplier with registered operands, a registered product and one more
register for the product in the fabric.

On an ECP5 (``platform.family == "ecp5"``, see :data:`ECP5`) the first two
are one ``MULT18X18D`` with its own input and output registers enabled;
anywhere else (simulation, lint, other FPGAs) the same registers are written
out in Amaranth and the synthesis tool maps ``*`` as it likes.

Why: Yosys maps ``$mul`` onto the ECP5 DSP block in its combinational mode
and leaves every register in the fabric, so a fabric-register -> DSP ->
fabric-register path pays two long routes into and out of the DSP row plus
the block's 3.9 ns.  Measured on LFE5U-85F-6 (16 lanes of 18x18 multiply
and accumulate, nextpnr, seed 1): 134 MHz with fabric registers, 218 MHz
with the block's registers; in the accelerator top the fabric version's
routes grow to 3-6 ns each (below 65 MHz).  The DSP blocks sit in a few
rows, so in a full design the route from a block's output to the logic
using the product also takes up to 5.6 ns: the product is registered once
more in the fabric, where the placer can put it next to its users.

The two versions are the same machine cycle for cycle (:data:`MUL_LATENCY`
= 3): the operands presented in cycle ``t`` are registered at its end, their
product is registered at the end of ``t + 1`` (in the block) and of
``t + 2`` (in the fabric) and is on ``p`` in ``t + 3``.  All registers load
every cycle, or with ``enable=True`` in the cycles the ``en`` input is high
(a pipeline that stalls as a whole; the block's CE0); no reset: the users
keep their own valid bits.  Only the behavioural version is simulated here
(Yosys ships no simulation model of ``MULT18X18D``); the primitive's ports
and parameters follow Lattice's sysDSP usage guide (FPGA-TN-02205) and are
the ones nextpnr-ecp5 times as ``MULT18X18D_REGS_ALL``.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import ClockSignal, Const, Instance, Module, Shape, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["MUL_LATENCY", "SynthesisTarget", "ECP5", "PipelinedMultiplier"]

#: cycles from the operands to their product (operand register, product
#: register, fabric product register)
MUL_LATENCY = 3

#: the ECP5 DSP block's operand width (two's complement)
_ECP5_OPERAND_BITS = 18


@dataclass(frozen=True)
class SynthesisTarget:
    """The ``platform`` object the FPGA flow hands to Amaranth's ``convert``
    so that components may pick vendor primitives; ``family`` as in
    Amaranth's vendor platforms (``"ecp5"``)."""

    family: str


#: pass as ``platform=`` when converting for an ECP5 (``fpga.flow``, ``fpga.boards``)
ECP5 = SynthesisTarget("ecp5")


def _fits_ecp5(shape: Shape) -> bool:
    """``shape`` fits an 18-bit two's-complement DSP operand."""
    return shape.width <= (_ECP5_OPERAND_BITS if shape.signed else _ECP5_OPERAND_BITS - 1)


class PipelinedMultiplier(wiring.Component):
    """``p`` = ``a * b``, :data:`MUL_LATENCY` cycles after ``a`` and ``b``.

    Parameters: ``a_shape``, ``b_shape`` (Amaranth shapes of the operands);
    ``p`` has the exact shape of ``a * b``; ``enable`` adds the input ``en``,
    the clock enable of all registers (then "cycle" below counts enabled
    cycles).

    Registered: both operands (end of cycle t), the product (end of t + 1)
    and the product again (end of t + 2, ``p``), none of them with a reset.  ``p`` is a register
    output; no input reaches an output combinationally.  On an ECP5 and when
    both operands fit 18-bit two's complement, the first two are the DSP
    block's own (``use_dsp_registers`` tells which version :meth:`elaborate`
    built last).
    """

    latency = MUL_LATENCY

    def __init__(self, *, a_shape, b_shape, enable: bool = False):
        self.a_shape = Shape.cast(a_shape)
        self.b_shape = Shape.cast(b_shape)
        self.enable = bool(enable)
        p_shape = (Signal(self.a_shape) * Signal(self.b_shape)).shape()
        self.use_dsp_registers = False
        ports = {"a": In(self.a_shape), "b": In(self.b_shape), "p": Out(p_shape)}
        if self.enable:
            ports["en"] = In(1)
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        self.use_dsp_registers = (getattr(platform, "family", None) == "ecp5"
                                  and _fits_ecp5(self.a_shape) and _fits_ecp5(self.b_shape))
        en = self.en if self.enable else Const(1, 1)
        # no register here has a reset (data: the users carry valid flags;
        # FPGA timing, the reset net reaches fewer flip-flops)
        p_out = Signal.like(self.p, name="p_r", reset_less=True)
        m.d.comb += self.p.eq(p_out)
        if not self.use_dsp_registers:
            a_r = Signal(self.a_shape, reset_less=True)
            b_r = Signal(self.b_shape, reset_less=True)
            p_r = Signal.like(self.p, name="p_mul", reset_less=True)
            with m.If(en):
                m.d.sync += [a_r.eq(self.a), b_r.eq(self.b), p_r.eq(a_r * b_r),
                             p_out.eq(p_r)]
            return m

        n = _ECP5_OPERAND_BITS
        a18, b18 = Signal(signed(n)), Signal(signed(n))
        m.d.comb += [a18.eq(self.a), b18.eq(self.b)]    # sign- or zero-extended
        p36 = Signal(signed(2 * n))
        ports = {f"i_A{i}": a18[i] for i in range(n)}
        ports.update({f"i_B{i}": b18[i] for i in range(n)})
        ports.update({f"i_C{i}": Const(0, 1) for i in range(n)})
        ports.update({f"o_P{i}": p36[i] for i in range(2 * n)})
        for reg in ("INPUTA", "INPUTB", "OUTPUT"):
            ports.update({f"p_REG_{reg}_CLK": "CLK0", f"p_REG_{reg}_CE": "CE0",
                          f"p_REG_{reg}_RST": "RST0"})
        m.submodules.dsp = Instance(
            "MULT18X18D",
            p_REG_INPUTC_CLK="NONE", p_REG_PIPELINE_CLK="NONE",
            p_GSR="DISABLED", p_RESETMODE="SYNC", p_SOURCEB_MODE="B_SHIFT",
            p_MULT_BYPASS="DISABLED", p_CAS_MATCH_REG="FALSE", p_HIGHSPEED_CLK="NONE",
            i_SIGNEDA=Const(1, 1), i_SIGNEDB=Const(1, 1),
            i_SOURCEA=Const(0, 1), i_SOURCEB=Const(0, 1),
            i_CLK0=ClockSignal("sync"), i_CE0=en, i_RST0=Const(0, 1),
            **{f"i_CLK{k}": Const(0, 1) for k in (1, 2, 3)},
            **{f"i_CE{k}": Const(0, 1) for k in (1, 2, 3)},
            **{f"i_RST{k}": Const(0, 1) for k in (1, 2, 3)},
            **ports)
        with m.If(en):
            m.d.sync += p_out.eq(p36)
        return m
