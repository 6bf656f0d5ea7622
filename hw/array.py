"""The PE array: R x C local PEs, global-key columns, random-key columns and
global query rows, with the input skew done inside (see ``docs/array.md``).

Geometry and timing follow ``docs/arithmetic.md`` sections 3 and 4; the
bit-exact model is :func:`sim.array_model.run_pass`.

Port timing (one clock domain ``sync``).  ``T_n`` is the cycle in which query
element 0 of pass ``n`` is on the ``q`` port; ``d`` is the head size of the
pass (set by the driver through ``q_last``); x = 0 .. d-1.
Every input is *unskewed*: the driver presents element x of every word in
the same cycle and the array delays internally.

==========================  =================================================
``q[i]`` (R words)          query element x of local row i at ``T_n + x``
``q_valid/last/parity``      with the query elements (``last`` at x = d-1,
                            ``parity`` = n mod 2); shared
                            by all local and global rows
``col_lo[i], col_hi[i]``    local mask of row i: PE column j is valid iff
                            ``col_lo <= j <= col_hi`` (empty when lo > hi);
                            sampled at ``T_n + d - 1`` (the ``q_last`` cycle)
``gcol_en`` (R*Gc bits)     bit ``i*Gc + g``: global column g valid for row i;
                            sampled at ``T_n + d - 1``
``rcol_en`` (R*Rc bits)     bit ``i*Rc + r``: random column r valid for row i;
                            sampled at ``T_n + d - 1``
``gq[g]`` (Gr words)        query element x of global row g at ``T_n + x``
``grow_lo[g], grow_hi[g]``  column range of global row g, at ``T_n + d - 1``
``kv[s]`` (R+C-1 words)     key slot s element x at ``T_n + x``; value slot s
                            element x at ``T_n + 3d + x`` (the V phase)
``v_valid``                 with the value elements (``T_n + 3d + x``)
``v_parity`` (R+Gr bits)    the value phase's pass parity, with ``v_valid``;
                            bit r for row r (the first PE of each row
                            selects its pass slot with it: one driver per
                            row, so the top can place a copy near each row)
``gkv[g]`` (Gc words)       global key g element x at ``T_n + x``, its value
                            element x at ``T_n + 3d + x`` (broadcast to all rows)
``rkv[i*Rc + r]``           random key r of row i at ``T_n + x``, value at
                            ``T_n + 3d + x``
==========================  =================================================

Passes stream back to back: ``T_{n+1} = T_n + 2d`` (then the diagonal
ports carry K_0, idle, K_1, V_0, K_2, V_1, ...) or start after the previous
pass's V phase, ``T_{n+1} >= T_n + 4d`` (a start in between would put K_{n+1}
on the ports while V_n is there).  All passes in flight have the same d.
A new pass needs ``2d >= L + 1`` (``L`` = exp latency); with the config's
``wsum_stage``, ``d >= `` :attr:`hw.config.AcceleratorConfig.min_head_dim_wsum`
(the merge units hold two passes awaiting their elements).

Row ends (outputs; row index r < R local rows, R + g global row g).  With
``P = C + Gc + Rc + B`` (the PEs of a local row, plus ``B`` = the config's
``column_stage`` register stages in front of its global/random-column PEs
when it has any, :attr:`PEArray.column_stage`) and ``L`` the PE's
``exp_latency`` (rest of the score multiplier's pipeline + exp unit, 5):

* ``rs_valid[r]`` with ``rs_sum[r], rs_exp[r], rs_parity[r]``: the pass's
  row sum, at ``T_n + P + d + L`` for a local row, ``T_n + 1 + g + C + d + L``
  for global row g;
* ``ws[r]``: weighted-sum element x at
  ``T_n + P + W + 3d + x`` (local), ``T_n + 1 + g + C + W + 3d + x`` (global
  row g), ``W`` = ``PE.ws_lead`` (the PE's p*v pipeline and product shift, 4)
  plus, with the config's ``wsum_stage``, one cycle per PE of the chain
  (``P - B`` for a local row, ``C`` for a global row): :meth:`PEArray.ws_delay`;
  its valid and parity come a cycle ahead, ``ws_valid_next[r]`` and
  ``ws_parity_next[r]`` at ``T_n + P + W + 3d + x - 1`` (the consumer
  registers them, or a function of them: :class:`ArrayCore` registers
  them as its ``ws_valid``, ``ws_parity``).

The row sum and exponent of a row end are those of :func:`sim.array_model.run_pass`;
the weighted-sum elements share that exponent.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.fanout import delay_line
from hw.pe import PE, chain_row, chain_value_delay, pe_params

__all__ = ["PEArray", "ArrayCore", "col_index_width", "column_stage", "wsum_stage_delay"]


def column_stage(cfg) -> int:
    """Register stages in front of a local row's global/random-column PEs
    (:attr:`PEArray.column_stage`): the config's ``column_stage`` when the
    config has such columns, else 0."""
    return cfg.column_stage if cfg.global_cols + cfg.random_cols else 0


def wsum_stage_delay(cfg, chain_pes: int) -> int:
    """Cycles the config's ``wsum_stage`` adds to a row end's weighted sum
    for a row chain of ``chain_pes`` PEs: one per PE (each PE's extra
    register between shift and add)."""
    return cfg.wsum_stage * chain_pes


def col_index_width(cfg) -> int:
    """Bits of a mask column bound: values 0..C (lo = C gives an empty range)."""
    return max(1, cfg.cols.bit_length())


class PEArray(wiring.Component):
    """R x C local PEs + Gc global-key columns + Rc random-key columns per
    local row + Gr global query rows.  Port timing: module docstring."""

    def __init__(self, cfg):
        self.cfg = cfg
        R, C = cfg.rows, cfg.cols
        Gr, Gc, Rc = cfg.global_rows, cfg.global_cols, cfg.random_cols
        dw, ew = cfg.data_width, cfg.exp_width
        cw = col_index_width(cfg)
        self.col_width = cw
        NR = R + Gr
        self.row_ends = NR
        self.chain_len = C + Gc + Rc
        #: register stages between a local row's last local PE and its first
        #: global/random-column PE (:func:`hw.pe.chain_row`'s ``stage_before``;
        #: FPGA timing: those PEs take their keys from the broadcast ports,
        #: their placement is pulled away from the local PEs, and the
        #: weighted-sum partial then crossed the chip in front of their
        #: shifter and adder): :func:`column_stage`, the config's ``column_stage``
        #: when the row has such columns
        self.column_stage = column_stage(cfg)
        #: cycles through a local row chain: its PEs and the column stage
        self.row_latency = self.chain_len + self.column_stage
        ports = {
            "q": In(data.ArrayLayout(signed(dw), R)),
            "q_valid": In(1), "q_last": In(1), "q_parity": In(1),
            "col_lo": In(data.ArrayLayout(unsigned(cw), R)),
            "col_hi": In(data.ArrayLayout(unsigned(cw), R)),
            "kv": In(data.ArrayLayout(signed(dw), R + C - 1)),
            "v_valid": In(1), "v_parity": In(NR),
            "rs_sum": Out(data.ArrayLayout(unsigned(cfg.row_sum_width), NR)),
            "rs_exp": Out(data.ArrayLayout(signed(ew), NR)),
            "rs_valid": Out(NR), "rs_parity": Out(NR),
            "ws": Out(data.ArrayLayout(signed(cfg.wsum_width), NR)),
            "ws_valid_next": Out(NR), "ws_parity_next": Out(NR),
        }
        if Gc:
            ports["gcol_en"] = In(R * Gc)
            ports["gkv"] = In(data.ArrayLayout(signed(dw), Gc))
        if Rc:
            ports["rcol_en"] = In(R * Rc)
            ports["rkv"] = In(data.ArrayLayout(signed(dw), R * Rc))
        if Gr:
            ports["gq"] = In(data.ArrayLayout(signed(dw), Gr))
            ports["grow_lo"] = In(data.ArrayLayout(unsigned(cw), Gr))
            ports["grow_hi"] = In(data.ArrayLayout(unsigned(cw), Gr))
        #: exp latency L of every PE
        self.exp_latency = PE.exp_latency
        super().__init__(ports)

    # cycles from T_n to the row-end outputs (add d for rs, 3d + x for ws)
    def rs_delay(self, row: int) -> int:
        """Row sum of row end ``row`` is valid at ``T_n + d + rs_delay(row)``."""
        cfg = self.cfg
        if row < cfg.rows:
            return self.row_latency + self.exp_latency
        return 1 + (row - cfg.rows) + cfg.cols + self.exp_latency

    def ws_delay(self, row: int) -> int:
        """Weighted-sum element x of row end ``row`` is at ``T_n + 3d + x + ws_delay(row)``."""
        cfg = self.cfg
        extra = PE.ws_lead                  # the PE's p*v pipeline and product shift
        if row < cfg.rows:
            return self.row_latency + extra + wsum_stage_delay(cfg, self.chain_len)
        return 1 + (row - cfg.rows) + cfg.cols + extra + wsum_stage_delay(cfg, cfg.cols)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        R, C = cfg.rows, cfg.cols
        Gr, Gc, Rc = cfg.global_rows, cfg.global_cols, cfg.random_cols
        P = self.chain_len
        params = pe_params(cfg)

        def kv_used(i, j):      # is PE(i, j)'s kv_out read by a neighbour?
            if i < R:
                return j < C and ((i + 1 < R and j + 1 < C) or (i == R - 1 and Gr > 0))
            return i - R + 1 < Gr

        S = cfg.wsum_stage
        local_pes = [[PE(**params, pass_q=p + 1 < P, pass_kv=kv_used(i, p),
                         rs_parity=p == P - 1, rs_chain_in=p > 0,
                         value_delay=chain_value_delay(p, S)) for p in range(P)]
                     for i in range(R)]
        global_pes = [[PE(**params, pass_q=j + 1 < C, pass_kv=kv_used(R + g, j),
                          rs_parity=j == C - 1, rs_chain_in=j > 0,
                          value_delay=chain_value_delay(j, S)) for j in range(C)]
                      for g in range(Gr)]

        def in_range(lo, hi, j):
            if j == 0:
                return ~lo.any()        # lo == 0; hi >= 0 always holds (unsigned)
            return (lo <= j) & (hi >= j)

        def hook_row(pes, q_word, ctrl, vctrl, mask_bits, kv_inputs, prefix, stage_before=None):
            """Connect one row chain: horizontal query/control, row-sum and
            weighted-sum chains, the PE's pair_valid and kv_in."""
            q_valid, q_last, q_parity = ctrl
            v_valid, v_parity = vctrl
            for p, pe in enumerate(pes):
                m.submodules[f"{prefix}_{p}"] = pe
            chain_row(m, pes, q=q_word, q_valid=q_valid, q_last=q_last,
                      q_parity=q_parity, v_valid=v_valid, v_parity=v_parity,
                      stage_before=stage_before, stage_prefix=prefix)
            for p, pe in enumerate(pes):
                m.d.comb += [pe.pair_valid.eq(mask_bits[p])]
                if kv_inputs[p] is not None:
                    m.d.comb += pe.kv_in.eq(kv_inputs[p])

        def row_end(r, pe):
            # the PE's weighted-sum control runs PE.ws_lead cycles ahead of
            # its data: delay it to pair it with ws_out
            lag = PE.ws_lead
            # likewise the row-sum exponent and valid lead the sum by PE.rs_lead
            m.d.comb += [self.rs_sum[r].eq(pe.rs_sum_out),
                         self.rs_exp[r].eq(delay_line(m, pe.rs_exp_out, PE.rs_lead, f"rse{r}")),
                         self.rs_valid[r].eq(delay_line(m, pe.rs_valid_out, PE.rs_lead,
                                                    f"rsv{r}")),
                         self.rs_parity[r].eq(pe.rs_parity_out),
                         self.ws[r].eq(pe.ws_out)]
            wsv_next = delay_line(m, pe.ws_valid_out, lag - 1, f"wsv{r}")
            wsp_next = delay_line(m, pe.ws_parity_out, lag - 1, f"wsp{r}")
            m.d.comb += [self.ws_valid_next[r].eq(wsv_next), self.ws_parity_next[r].eq(wsp_next)]

        ctrl = (self.q_valid, self.q_last, self.q_parity)

        # ---- skew of the shared ports
        # top row: column j > 0 takes slot C-1-j delayed by j cycles
        top_kv = [None] + [delay_line(m, self.kv[C - 1 - j], j, f"kv_top{j}") for j in range(1, C)]
        # global-key columns: broadcast word delayed by C + g (+ the column stage)
        B = self.column_stage
        gkv = [delay_line(m, self.gkv[g], C + B + g, f"gkv{g}") for g in range(Gc)]

        # ---- local rows
        for i in range(R):
            pes = local_pes[i]
            # mask range travels with the query: stage j = port delayed j cycles
            lo = [self.col_lo[i]]
            hi = [self.col_hi[i]]
            for j in range(1, C):
                lo.append(delay_line(m, lo[-1], 1, f"lo{i}_{j}"))
                hi.append(delay_line(m, hi[-1], 1, f"hi{i}_{j}"))
            mask = [in_range(lo[j], hi[j], j) for j in range(C)]
            mask += [delay_line(m, self.gcol_en[i * Gc + g], C + B + g, f"gen{i}_{g}")
                     for g in range(Gc)]
            mask += [delay_line(m, self.rcol_en[i * Rc + r], C + B + Gc + r, f"ren{i}_{r}")
                     for r in range(Rc)]
            kv_inputs = []
            for j in range(C):
                if j == 0:
                    kv_inputs.append(self.kv[i + C - 1])
                elif i == 0:
                    kv_inputs.append(top_kv[j])
                else:
                    kv_inputs.append(None)   # diagonal, connected below
            kv_inputs += gkv
            kv_inputs += [delay_line(m, self.rkv[i * Rc + r], C + B + Gc + r, f"rkv{i}_{r}")
                          for r in range(Rc)]
            hook_row(pes, self.q[i], ctrl, (self.v_valid, self.v_parity[i]), mask, kv_inputs,
                     f"pe{i}", stage_before=C if B else None)
            row_end(i, pes[-1])
        for i in range(1, R):
            for j in range(1, C):
                m.d.comb += local_pes[i][j].kv_in.eq(local_pes[i - 1][j - 1].kv_out)

        # ---- global query rows: keys pass down vertically from the bottom local row
        for g in range(Gr):
            pes = global_pes[g]
            dctrl = tuple(delay_line(m, s, 1 + g, f"g{g}_{s.name}") for s in ctrl)
            dvctrl = (delay_line(m, self.v_valid, 1 + g, f"g{g}_v_valid"),
                      delay_line(m, self.v_parity[R + g], 1 + g, f"g{g}_v_parity"))
            q_word = delay_line(m, self.gq[g], 1 + g, f"gq{g}")
            lo = [delay_line(m, self.grow_lo[g], 1 + g, f"glo{g}_0")]
            hi = [delay_line(m, self.grow_hi[g], 1 + g, f"ghi{g}_0")]
            for j in range(1, C):
                lo.append(delay_line(m, lo[-1], 1, f"glo{g}_{j}"))
                hi.append(delay_line(m, hi[-1], 1, f"ghi{g}_{j}"))
            mask = [in_range(lo[j], hi[j], j) for j in range(C)]
            above = local_pes[R - 1] if g == 0 else global_pes[g - 1]
            kv_inputs = [above[j].kv_out for j in range(C)]
            hook_row(pes, q_word, dctrl, dvctrl, mask, kv_inputs, f"gpe{g}")
            row_end(R + g, pes[-1])
        return m


class ArrayCore(wiring.Component):
    """:class:`PEArray` with a :class:`hw.merge.MergeUnit` at every row end
    (R local rows, then Gr global rows).

    Ports: every port of :class:`PEArray` (same names and timing; the raw
    per-pass row-end partials stay visible), plus

    ==============================  ===========================================
    ``head_dim``                    d (1..max_head_dim), constant while passes
                                    are in flight
    ``merge_first, merge_last``     pass flags of the local rows (shared by all
                                    local rows): ``first`` starts a new tile
                                    (merge into the exact zero), ``last``
                                    normalizes and emits after this pass;
                                    sampled at ``T_n + d - 1`` (``q_last``)
    ``gmerge_first, gmerge_last``   Gr bits, the same for each global row (a
                                    global row usually merges over all tiles:
                                    first on the first pass of the schedule,
                                    last on its final pass)
    ``o_valid/o_data/o_index/o_last``  per row end r: the merge unit's output
                                    stream (normalized element o[index] of
                                    the row's tile; ``o_last`` at index d-1)
    ``o_ready``                     per row end: back-pressure of that stream
    ``merge_error/busy/idle``       per row end: the merge unit's flags
    ==============================  ===========================================

    The flags reach the merge unit through a fixed delay line: the row sum of
    a pass arrives ``rs_delay + 1`` cycles after the pass's ``q_last`` cycle
    (independent of d), so ``P + L + 1`` registers for the local rows (P
    with the column stage, see :class:`PEArray`) and
    ``C + L + g + 2`` for global row g.
    """

    def __init__(self, cfg):
        from hw.merge import merge_output_layout

        self.cfg = cfg
        self.array = PEArray(cfg)
        NR = self.array.row_ends
        Gr = cfg.global_rows
        layout = merge_output_layout(head_dim_max=cfg.max_head_dim, out_width=cfg.out_width)
        iw = layout["index"].shape.width
        self.index_width = iw
        ports = dict(self.array.signature.members.items())
        ports.update({
            # the array's early valid and parity registered: in step with ws
            "ws_valid": Out(NR), "ws_parity": Out(NR),
            "head_dim": In(cfg.head_dim_width),
            "merge_first": In(1), "merge_last": In(1),
            "o_valid": Out(NR), "o_ready": In(NR), "o_last": Out(NR),
            "o_data": Out(data.ArrayLayout(signed(cfg.out_width), NR)),
            "o_index": Out(data.ArrayLayout(unsigned(iw), NR)),
            "merge_error": Out(NR), "merge_busy": Out(NR), "merge_idle": Out(NR),
        })
        if Gr:
            ports.update({"gmerge_first": In(Gr), "gmerge_last": In(Gr)})
        self.exp_latency = self.array.exp_latency
        super().__init__(ports)

    def rs_delay(self, row: int) -> int:
        return self.array.rs_delay(row)

    def ws_delay(self, row: int) -> int:
        return self.array.ws_delay(row)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        R, Gr = cfg.rows, cfg.global_rows
        m.submodules.array = arr = self.array
        for name, member in arr.signature.members.items():
            if member.flow == wiring.In:
                m.d.comb += getattr(arr, name).eq(getattr(self, name))
            else:
                m.d.comb += getattr(self, name).eq(getattr(arr, name))
        m.d.sync += [self.ws_valid.eq(arr.ws_valid_next), self.ws_parity.eq(arr.ws_parity_next)]
        # pass flags: one delay line for all local rows, one per global row
        n_loc = self.rs_delay(0) + 1
        loc_first = delay_line(m, self.merge_first, n_loc, "mfirst_local")
        loc_last = delay_line(m, self.merge_last, n_loc, "mlast_local")
        from hw.merge import MergeUnit, merge_params

        for r in range(self.array.row_ends):
            m.submodules[f"merge{r}"] = mu = MergeUnit(**merge_params(cfg))
            if r < R:
                first, last = loc_first, loc_last
            else:
                n = self.rs_delay(r) + 1
                first = delay_line(m, self.gmerge_first[r - R], n, f"mfirst{r}")
                last = delay_line(m, self.gmerge_last[r - R], n, f"mlast{r}")
            m.d.comb += [
                mu.head_dim.eq(self.head_dim),
                mu.rs_valid.eq(arr.rs_valid[r]), mu.rs_sum.eq(arr.rs_sum[r]),
                mu.rs_exp.eq(arr.rs_exp[r]), mu.rs_first.eq(first), mu.rs_last.eq(last),
                mu.el_valid.eq(self.ws_valid[r]), mu.el_data.eq(arr.ws[r]),
                mu.output.ready.eq(self.o_ready[r]),
                self.o_valid[r].eq(mu.output.valid), self.o_last[r].eq(mu.output.p.last),
                self.o_data[r].eq(mu.output.p.data), self.o_index[r].eq(mu.output.p.index),
                self.merge_error[r].eq(mu.error), self.merge_busy[r].eq(mu.busy),
                self.merge_idle[r].eq(mu.idle),
            ]
        return m
