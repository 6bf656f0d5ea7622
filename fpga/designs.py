"""What ``salo synth`` synthesizes: the design choices behind
:func:`fpga.flow.design_for`, and the pin shell that fits any of them into
an FPGA package.

Designs (``--design``):

=========  ==================================================================
``top``    the accelerator top ``hw.top.SaloTop`` (found by name, see
           :data:`TOP_CLASS_NAMES`; a function ``hw.top.build_top(cfg)``
           takes precedence if the lead adds one)
``array``  ``hw.array.ArrayCore`` (PE array + merge units), else ``hw.array.PEArray``
``pe-row`` one local row of the array: ``cfg.row_pes`` chained :class:`hw.pe.PE`
``pe``     one :class:`hw.pe.PE`
``merge``  one :class:`hw.merge.MergeUnit` (a row end)
``mac-grid``  R x C :class:`hw.score_mac.ScoreMac` wired like the array's score
           stage (queries move right, keys move down the diagonal, every hop
           registered): the "units only" stand-in
``auto``   the first of top, array, pe-row, mac-grid that imports and elaborates
=========  ==================================================================

Every design is wrapped in :class:`SerialShell` (5 pins: clk, rst, sdi,
load, sdo) so that it fits any package and no logic is optimized away: all
inputs of the design come from one long shift register fed by ``sdi``, all
outputs are captured into another (``load``) and shifted out on ``sdo``.
The shell costs one flip-flop per input bit and one flip-flop plus one LUT
(the load/shift mux) per output bit; the report states both counts so they
can be subtracted.  Paths inside the design start and end at registers of
the shell, so Fmax is the design's own register-to-register Fmax.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field

from amaranth.hdl import Cat, Module, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["DESIGNS", "Design", "DesignUnavailable", "SerialShell", "MacGrid", "PeRow",
           "build_design"]

#: choices of ``--design`` (``auto`` tries the others in this order except ``pe``)
DESIGNS = ("auto", "top", "array", "pe-row", "pe", "merge", "mac-grid")
_AUTO_ORDER = ("top", "array", "pe-row", "mac-grid")


class DesignUnavailable(Exception):
    """The requested design cannot be built (module missing or elaboration failed)."""


@dataclass
class Design:
    """A design to synthesize."""

    #: design choice actually built (``top``, ``array``, ...)
    name: str
    #: human description (class and size), printed in the report
    description: str
    #: the wiring.Component
    component: object
    #: Verilog of the design inside :class:`SerialShell`
    verilog: str = ""
    #: shell overhead: flip-flops feeding the inputs / capturing the outputs
    shell_in_bits: int = 0
    shell_out_bits: int = 0
    #: why other designs were skipped (``auto``), one line each
    notes: list = field(default_factory=list)


# ----------------------------------------------------------------- the shell
def _ports(component):
    """[(name, flow, Value)] of a wiring.Component's port members."""
    out = []
    for path, member, value in component.signature.flatten(component):
        out.append(("__".join(map(str, path)), member.flow, Value.cast(value)))
    return out


class SerialShell(wiring.Component):
    """Wrap ``inner`` (a wiring.Component) behind 3 data pins.

    ``sdi`` shifts into a register chain whose bits drive every input port
    of ``inner``; with ``load`` high the output capture register takes every
    output port of ``inner``, with ``load`` low it shifts right and ``sdo``
    is its bit 0.  Registered: both chains and ``sdo`` (latency 1).  The
    chains have no reset (test scaffolding: they stay off the reset net,
    whose fan-out in the 4x4 accelerator top is ~24k flip-flops).
    """

    def __init__(self, inner):
        if not isinstance(inner, wiring.Component):
            self._MustUse__silence = True     # not built: no "never used" warning
            raise TypeError(f"SerialShell needs a wiring.Component, got {type(inner).__name__}")
        self.inner = inner
        ports = _ports(inner)
        self.in_bits = sum(len(v) for _, f, v in ports if f == wiring.In)
        self.out_bits = sum(len(v) for _, f, v in ports if f == wiring.Out)
        if self.out_bits == 0:
            self._MustUse__silence = True
            raise ValueError("the wrapped design has no outputs (everything would be removed)")
        super().__init__({"sdi": In(1), "load": In(1), "sdo": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = self.inner
        ports = _ports(self.inner)
        ins = [v for _, f, v in ports if f == wiring.In]
        outs = [v for _, f, v in ports if f == wiring.Out]
        if self.in_bits:
            # (no reset: test scaffolding, not on the reset network)
            chain = Signal(self.in_bits, name="shell_in", reset_less=True)
            m.d.sync += chain.eq(Cat(chain[1:], self.sdi))
            off = 0
            for v in ins:
                m.d.comb += v.eq(chain[off:off + len(v)])
                off += len(v)
        cap = Signal(self.out_bits, name="shell_out", reset_less=True)
        with m.If(self.load):
            m.d.sync += cap.eq(Cat(*outs))
        with m.Else():
            m.d.sync += cap.eq(cap >> 1)
        m.d.comb += self.sdo.eq(cap[0])
        return m


# ------------------------------------------------------------- stand-ins
class MacGrid(wiring.Component):
    """R x C score MACs wired like the array's score stage.

    ``q[i]`` enters row i at column 0 and moves one column right per cycle;
    ``kv[s]`` (R+C-1 slots) enters on the diagonals like the array's key
    ports and moves one row down / one column right per cycle; ``en`` and
    ``clear`` travel with q.  Every hop is a register; ``acc[i*C + j]`` is
    the accumulator of PE(i, j).  A stand-in with the array's MAC and
    register structure, not the accelerator.
    """

    def __init__(self, cfg):
        from hw.score_mac import ScoreMac  # noqa: F401  (fail early if missing)
        self.cfg = cfg
        R, C, dw = cfg.rows, cfg.cols, cfg.data_width
        ports = {}
        for i in range(R):
            ports[f"q{i}"] = In(signed(dw))
        for s in range(R + C - 1):
            ports[f"kv{s}"] = In(signed(dw))
        ports["en"] = In(1)
        ports["clear"] = In(1)
        for i in range(R):
            for j in range(C):
                ports[f"acc{i}_{j}"] = Out(signed(cfg.acc_width))
        super().__init__(ports)

    def elaborate(self, platform):
        from hw.score_mac import ScoreMac
        m = Module()
        cfg = self.cfg
        R, C, dw = cfg.rows, cfg.cols, cfg.data_width
        # q, en, clear entering PE(i, j): registered copies travelling right
        q_at = [[None] * C for _ in range(R)]
        ctl_at = [None] * C
        for i in range(R):
            q = getattr(self, f"q{i}")
            for j in range(C):
                q_at[i][j] = q
                nq = Signal(signed(dw), name=f"q_{i}_{j}")
                m.d.sync += nq.eq(q)
                q = nq
        ctl = Cat(self.en, self.clear)
        for j in range(C):
            ctl_at[j] = ctl
            nc = Signal(2, name=f"ctl_{j}")
            m.d.sync += nc.eq(ctl)
            ctl = nc
        # key entering PE(i, j): from PE(i-1, j-1) registered, or a port on the edge.
        # PE(i, j) pairs slot i + C-1-j (docs/arithmetic.md section 3).
        k_at = [[None] * C for _ in range(R)]
        for i in range(R):
            for j in range(C):
                if i == 0 or j == 0:
                    k_at[i][j] = getattr(self, f"kv{i + C - 1 - j}")
                else:
                    k = Signal(signed(dw), name=f"k_{i}_{j}")
                    m.d.sync += k.eq(k_at[i - 1][j - 1])
                    k_at[i][j] = k
        for i in range(R):
            for j in range(C):
                mac = ScoreMac(data_width=dw, acc_width=cfg.acc_width)
                m.submodules[f"mac_{i}_{j}"] = mac
                m.d.comb += [mac.q.eq(q_at[i][j]), mac.k.eq(k_at[i][j]),
                             mac.en.eq(ctl_at[j][0]), mac.clear.eq(ctl_at[j][1]),
                             getattr(self, f"acc{i}_{j}").eq(mac.acc)]
        return m


class PeRow(wiring.Component):
    """One local row of the array: ``cfg.row_pes`` chained :class:`hw.pe.PE`.

    The query and its control enter PE 0 and travel right through the PEs'
    own registered ``q_*_out``; the row-sum and weighted-sum chains run from
    PE 0 (inputs = exact zero, not valid) to the row end (outputs); every PE
    has its own ``kv`` and ``pair_valid`` port (in the array they come from
    the diagonal neighbour).
    """

    def __init__(self, cfg):
        from hw.pe import PE, pe_params
        self.cfg = cfg
        self._pes = [PE(**pe_params(cfg), rs_chain_in=j > 0) for j in range(cfg.row_pes)]
        pe0 = self._pes[0]
        ports = {}
        for name in ("q_in", "q_valid_in", "q_last_in", "q_parity_in",
                     "ws_valid_in", "ws_parity_in"):
            ports[name] = In(len(Value.cast(getattr(pe0, name))))
        for j in range(cfg.row_pes):
            ports[f"kv{j}"] = In(signed(cfg.data_width))
            ports[f"pair_valid{j}"] = In(1)
        last = self._pes[-1]
        for name in ("rs_sum_out", "rs_exp_out", "rs_valid_out", "rs_parity_out",
                     "ws_out", "ws_valid_out", "ws_parity_out"):
            ports[name] = Out(len(Value.cast(getattr(last, name))))
        super().__init__(ports)

    def elaborate(self, platform):
        from hw.pe import chain_row
        m = Module()
        pes = self._pes
        for j, pe in enumerate(pes):
            m.submodules[f"pe{j}"] = pe
            m.d.comb += [pe.kv_in.eq(getattr(self, f"kv{j}")),
                         pe.pair_valid.eq(getattr(self, f"pair_valid{j}"))]
        chain_row(m, pes, q=self.q_in, q_valid=self.q_valid_in,
                  q_last=self.q_last_in, q_parity=self.q_parity_in,
                  v_valid=self.ws_valid_in, v_parity=self.ws_parity_in)
        last = pes[-1]
        for name in ("rs_sum_out", "rs_exp_out", "rs_valid_out", "rs_parity_out",
                     "ws_out", "ws_valid_out", "ws_parity_out"):
            m.d.comb += getattr(self, name).eq(getattr(last, name))
        return m


# ------------------------------------------------------------- construction
#: class names tried in ``hw.top`` (first match wins), then any Component
#: subclass defined there whose constructor takes the config.
TOP_CLASS_NAMES = ("Accelerator", "SaloTop", "AcceleratorTop", "Top", "SaloAccelerator")
ARRAY_CLASS_NAMES = ("ArrayCore", "PEArray")


def _construct(cls, cfg):
    params = list(inspect.signature(cls).parameters)
    if "cfg" in params:
        return cls(cfg=cfg)
    if "config" in params:
        return cls(config=cfg)
    return cls(cfg)


def _from_module(modname, names, cfg):
    try:
        mod = importlib.import_module(modname)
    except ModuleNotFoundError as e:
        if e.name in (modname, modname.split(".")[0]) or e.name == modname:
            raise DesignUnavailable(f"{modname} does not exist yet") from None
        raise DesignUnavailable(f"{modname} does not import: {e}") from None
    except Exception as e:  # a module being written may fail in any way
        raise DesignUnavailable(f"{modname} does not import: {type(e).__name__}: {e}") from None
    builder = getattr(mod, "build_top", None) if modname == "hw.top" else None
    if callable(builder):
        return builder(cfg), f"{modname}.build_top(cfg)"
    candidates = [getattr(mod, n) for n in names if isinstance(getattr(mod, n, None), type)]
    if not candidates:
        candidates = [c for c in vars(mod).values()
                      if isinstance(c, type) and issubclass(c, wiring.Component)
                      and c.__module__ == mod.__name__]
    if not candidates:
        raise DesignUnavailable(f"{modname} has no wiring.Component class "
                                f"(looked for {', '.join(names)})")
    errors = []
    for cls in candidates:
        try:
            return _construct(cls, cfg), f"{modname}.{cls.__name__}"
        except Exception as e:
            errors.append(f"{cls.__name__}: {type(e).__name__}: {e}")
    raise DesignUnavailable(f"{modname}: no class could be built from the config ("
                            + "; ".join(errors) + ")")


def _to_verilog(component, top_name, platform=None):
    """Verilog of ``SerialShell(component)``: proves the design elaborates
    (raises DesignUnavailable) and is the input of synthesis.  ``platform``:
    a :class:`hw.dsp.SynthesisTarget` (vendor primitives) or None."""
    from amaranth.back import verilog
    try:
        shell = SerialShell(component)
        text = verilog.convert(shell, name=top_name, platform=platform, emit_src=False)
    except Exception as e:
        raise DesignUnavailable(f"{type(component).__name__} does not elaborate: "
                                f"{type(e).__name__}: {e}") from None
    return shell, text


def _build_one(name, cfg, top_name, platform=None):
    if name == "top":
        comp, what = _from_module("hw.top", TOP_CLASS_NAMES, cfg)
        desc = f"accelerator top {what}: {cfg.describe()}"
    elif name == "array":
        comp, what = _from_module("hw.array", ARRAY_CLASS_NAMES, cfg)
        desc = (f"{what} ({cfg.rows}x{cfg.cols} local PEs, {cfg.global_rows} global row(s), "
                f"{cfg.global_cols} global col(s), {cfg.random_cols} random col(s); "
                f"{cfg.num_pes} PEs)")
    elif name in ("pe-row", "pe"):
        try:
            if name == "pe":
                from hw.pe import PE, pe_params
                comp = PE(**pe_params(cfg))
                desc = "one hw.pe.PE"
            else:
                comp = PeRow(cfg)
                desc = f"one array row: {cfg.row_pes} chained hw.pe.PE (fpga.designs.PeRow)"
        except DesignUnavailable:
            raise
        except Exception as e:
            raise DesignUnavailable(f"hw.pe unavailable: {type(e).__name__}: {e}") from None
    elif name == "merge":
        try:
            from hw.merge import MergeUnit, merge_params
            from hw.top import top_geometry
            comp = MergeUnit(**merge_params(cfg),
                             min_head_dim=top_geometry(cfg)["min_head_dim"])
        except Exception as e:
            raise DesignUnavailable(f"hw.merge unavailable: {type(e).__name__}: {e}") from None
        desc = "one hw.merge.MergeUnit (a row end, as the top builds it)"
    elif name == "mac-grid":
        try:
            comp = MacGrid(cfg)
        except Exception as e:
            raise DesignUnavailable(f"hw.score_mac unavailable: {type(e).__name__}: {e}") from None
        desc = (f"{cfg.rows}x{cfg.cols} hw.score_mac.ScoreMac grid with the array's q/k "
                f"wiring (fpga.designs.MacGrid; score stage only, NOT the accelerator)")
    else:
        raise ValueError(f"unknown design {name!r}; choose from {', '.join(DESIGNS)}")
    shell, text = _to_verilog(comp, top_name, platform)
    return Design(name=name, description=desc, component=comp, verilog=text,
                  shell_in_bits=shell.in_bits, shell_out_bits=shell.out_bits)


def build_design(cfg, design: str = "auto", top_name: str = "salo_fpga_top",
                 platform=None) -> Design:
    """Build ``design`` (one of :data:`DESIGNS`) for ``cfg``, wrap it in
    :class:`SerialShell` and convert it to Verilog (top module ``top_name``).

    ``auto`` takes the first of top, array, pe-row, mac-grid that exists and
    elaborates and records in ``notes`` why the others were skipped.  An
    explicit choice that cannot be built raises :class:`DesignUnavailable`.
    ``platform``: see :func:`_to_verilog` (:data:`hw.dsp.ECP5` for an ECP5).
    """
    if design not in DESIGNS:
        raise ValueError(f"unknown design {design!r}; choose from {', '.join(DESIGNS)}")
    if design != "auto":
        return _build_one(design, cfg, top_name, platform)
    notes = []
    for name in _AUTO_ORDER:
        try:
            d = _build_one(name, cfg, top_name, platform)
        except DesignUnavailable as e:
            notes.append(f"{name}: skipped: {e}")
            continue
        d.notes = notes
        return d
    raise DesignUnavailable("no design could be built: " + "; ".join(notes))
