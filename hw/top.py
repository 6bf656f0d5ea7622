"""The accelerator top: PE array, merge units, on-chip buffers, feeders,
instruction sequencer, output path and host stream interfaces, generated
from one :class:`hw.config.AcceleratorConfig`.

Host protocol (all streams are ``amaranth.lib.stream``, AXI-Stream style
valid/ready; a beat transfers when both are high; see ``docs/top.md``):

* ``instructions``: one 64-bit instruction word (:func:`hw.isa.instruction_layout`)
  per beat, the program in order, ending with END.
* ``masks``: one mask record (:func:`hw.isa.mask_record_layout`) per PASS, in
  program order (the plan's records restart at every SET_HEAD).
* ``rows_in``: Q/K/V rows (:func:`hw.top_status.row_layout`), in the order
  the loads of the program consume them: LOAD_Q ``count`` query rows;
  LOAD_KV, for each position, its K row then its V row; LOAD_GQ one query
  row; LOAD_GKV the K row then the V row; LOAD_RKV for each of the R*Rc
  (row, column) entries row-major its K row then its V row (zeros for an
  unused entry).
* ``results``: one output row per beat (:func:`hw.top_status.result_layout`),
  in the order of the STORE / STORE_G instructions, with its head and
  position.

Control/status: ``head_dim`` (d, held constant while running),
``watchdog_limit`` (0 = off), ``busy``, ``done``, ``error``
(:class:`hw.top_status.ErrorCode`) and the performance counters of
:data:`hw.top_status.COUNTERS`.

Pipeline (cycle c0 = the sequencer starts a pass; d = ``head_dim``):

* S0 (c0+1 .. c0+d, element x at c0+1+x): buffer read addresses (Q tile,
  K rows from the pass base; :class:`hw.row_buffer.BankedRowBuffer`);
* S1: block RAM read; the read words registered;
* S2 (c0+3+x): banks rotated to slots (into the buffers' output
  registers), global/random key elements selected (into registers);
* S3 (c0+4+x): K or V set selected; into the array's port registers;
* T_n of :mod:`hw.array` = c0 + :data:`FEED` (element x at c0+5+x).
* The V phase of the pass repeats S0..S2 from c0+1+3d with the V set.

Passes start every 2d cycles when the program and the host keep up (the
array's back-to-back rule: the next start is exactly 2d or at least 4d after
the previous one).  Registered: every array input (S3 registers or gates
of registers), the ``results`` payload and valid, the status outputs
(counters, error), ``instructions.ready`` (a 2-word fetch queue's; the
sequencer takes the next word from the queue in the cycle the current
instruction completes), ``masks.ready`` (a one-record stage's empty flag:
a record is taken when the stage is empty and reaches the sequencer in the
next cycle; a PASS completes in the cycle it uses the staged record).  Not
registered: ``rows_in.ready`` is combinational from the sequencer state (a
load completes in the cycle its last row is accepted); a host must not make
a ``valid`` depend combinationally on a ``ready``.  Error codes latch one
cycle after their cause (the conditions are registered) and reach ``error``
:data:`COUNT_DELAY` = 2 cycles later; ``done`` rises 3 cycles after END
executes.  The performance counters add each cycle's increments
:data:`COUNT_DELAY` cycles late (registered enables), so they are complete
when ``done`` or ``error`` rises.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from hw.array import PEArray, col_index_width
from hw.dsp import PipelinedMultiplier
from hw.fanout import (delay_line, drive_from_data_register, kept_apart_signal, register_copies,
                       register_with_registered_enable)
from hw.isa import HEAD_BITS, Opcode, instruction_layout, mask_record_layout
from hw.kv_residency import KvResidency
from hw.merge import MergeUnit, merge_output_layout, merge_params
from hw.pe import PE
from hw.row_buffer import BankedRowBuffer
from hw.top_output import OutputPath, StoreKind, _eq, _pick
from hw.top_status import (COUNTER_BITS, COUNTERS, WATCHDOG_BITS, ErrorCode, result_layout,
                           row_layout)

__all__ = ["SaloTop", "top_geometry"]


def _log2(n: int) -> int:
    return (n - 1).bit_length()


#: registers between a cycle's performance-counter increments and the
#: counters (and, alike, between `ended`/`err` and the `done`/`error` outputs)
COUNT_DELAY = 2

#: registers between the array's row ends and the merge units' inputs
MERGE_INPUT_LATENCY = 1

#: elements per group of a register row written under one copy of its
#: write enable (FPGA routing)
ROW_GROUP = 8

#: cycles from a pass start (sequencer, cycle c0) to the array's T_n: buffer
#: read address (c0+1), memory read, read-word register, the buffer's output
#: register, port register
FEED = 5


def _max_beats(cfg) -> int:
    """Row beats of the longest load instruction (LOAD_KV of the whole K/V
    buffer, or LOAD_RKV of every random column): two rows per entry."""
    return 2 * max(cfg.kv_buffer_rows, cfg.rows * max(cfg.random_cols, 1), 1)


def top_geometry(cfg) -> dict:
    """Buffer organisation derived from the config (also written into the
    ``salo gen`` manifest).

    * K/V: a :class:`hw.row_buffer.BankedRowBuffer` with two sets (K, V) of
      ``kv_banks`` = the power of two >= R+C-1 banks (position p in bank
      p mod kv_banks, so any R+C-1 consecutive positions lie in distinct
      banks), ``kv_capacity`` = kv_banks * kv_bank_depth >=
      ``kv_buffer_rows`` rows (position p at row p mod kv_capacity).
    * Q: a BankedRowBuffer of ``q_banks`` (the power of two >= R) banks, 2
      tiles (the LOAD_Q double buffer of the ISA) + Gr global query
      registers.
    * outputs: ``out_tiles`` = out_buffer_rows // R tiles of R rows.
    """
    nb, bd = cfg.kv_banks, cfg.kv_bank_depth
    out_tiles = cfg.out_buffer_rows // cfg.rows          # >= 2 by the config's check
    L = PE.exp_latency
    # d >= FEED - 1: the pass registers (mask, parity, merge flags) are
    # replaced at the next start (2d) after the array sampled them at q_last
    # (FEED + d - 1); d >= ceil((L+1)/2): the array's back-to-back rule;
    # the config's min_head_dim_wsum (wsum_stage: the merge units' queue)
    return {"kv_banks": nb, "kv_bank_depth": bd, "kv_capacity": nb * bd,
            "q_banks": max(2, 1 << _log2(cfg.rows)),
            "q_rows": 2 * cfg.rows, "global_q_rows": cfg.global_rows,
            "out_tiles": out_tiles, "out_rows": out_tiles * cfg.rows,
            "min_head_dim": max(1, -(-(L + 1) // 2), FEED - 1, cfg.min_head_dim_wsum),
            "exp_latency": L,
            "feed_latency": FEED}


class SaloTop(wiring.Component):
    """The whole accelerator for ``cfg``: see the module docstring for the
    host protocol, the pipeline and what is registered.

    Latency: a pass's K phase reaches the array :data:`FEED` = 5 cycles
    after the sequencer starts it; its outputs reach the output buffer after the array's
    row-end delays plus the merge unit's normalization (``hw.merge``); a
    STORE row leaves 3 cycles after its tile is complete (no back-pressure).
    """

    def __init__(self, cfg):
        self.cfg = cfg
        self.geometry = top_geometry(cfg)
        ports = {
            # raw words: the ISA union has empty operand structs (NOP, SYNC,
            # END, LOAD_RKV) that would become zero-width debug wires
            # (Verilator ASCRANGE); the decoder views the word through
            # instruction_layout(cfg) below
            "instructions": In(stream.Signature(unsigned(instruction_layout(cfg).size))),
            "masks": In(stream.Signature(mask_record_layout(cfg))),
            "rows_in": In(stream.Signature(row_layout(cfg))),
            "results": Out(stream.Signature(result_layout(cfg))),
            "head_dim": In(cfg.head_dim_width),
            "watchdog_limit": In(WATCHDOG_BITS),
            "busy": Out(1), "done": Out(1), "error": Out(ErrorCode),
        }
        for name in COUNTERS:
            ports[name] = Out(COUNTER_BITS)
        super().__init__(ports)

    def _predecode(self, m, nx):
        """Range check and last row-beat index of the instruction word ``nx``
        (the head of the fetch queue), both registered with it."""
        cfg = self.cfg
        R, Gr, Gc, Rc = cfg.rows, cfg.global_rows, cfg.global_cols, cfg.random_cols
        ops = nx.operands
        bad = Signal(name="nx_range_bad")
        last = Signal(range(_max_beats(cfg) + 1), name="nx_last_beat")

        def span_bad(cnt, addr, max_cnt):
            return _eq(cnt, 0) | (cnt > max_cnt) | (addr + cnt > cfg.max_seq_len)
        with m.Switch(nx.opcode):
            with m.Case(Opcode.LOAD_Q):
                m.d.comb += [bad.eq(span_bad(ops.load_q.count, ops.load_q.addr, R)),
                             last.eq(ops.load_q.count - 1)]
            with m.Case(Opcode.LOAD_KV):
                m.d.comb += [bad.eq(span_bad(ops.load_kv.count, ops.load_kv.addr,
                                             cfg.kv_buffer_rows)),
                             last.eq((ops.load_kv.count << 1) - 1)]
            with m.Case(Opcode.LOAD_GQ):
                m.d.comb += bad.eq(ops.load_gq.row >= Gr)
            with m.Case(Opcode.LOAD_GKV):
                m.d.comb += [bad.eq(ops.load_gkv.col >= Gc), last.eq(1)]
            with m.Case(Opcode.LOAD_RKV):
                m.d.comb += [bad.eq(Rc == 0), last.eq(max(1, 2 * R * Rc) - 1)]
            with m.Case(Opcode.STORE):
                m.d.comb += bad.eq(span_bad(ops.store.count, ops.store.addr, R))
            with m.Case(Opcode.STORE_G):
                m.d.comb += bad.eq(ops.store_g.row >= Gr)
        return bad, last

    # ------------------------------------------------------------------ build
    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        geo = self.geometry
        R, C, Gr, Gc, Rc = cfg.rows, cfg.cols, cfg.global_rows, cfg.global_cols, cfg.random_cols
        D = cfg.max_head_dim
        S = cfg.key_slots
        NB, BD, CAP = geo["kv_banks"], geo["kv_bank_depth"], geo["kv_capacity"]
        lgNB, lgBD, lgCAP = _log2(NB), _log2(BD), _log2(CAP)
        n_out = geo["out_tiles"]
        cw = col_index_width(cfg)
        iw = cfg.index_width
        dw = cfg.data_width
        rowl = row_layout(cfg)
        d = self.head_dim

        m.submodules.array = arr = PEArray(cfg)
        NRE = arr.row_ends
        mus = []
        for r in range(NRE):
            mu = MergeUnit(**merge_params(cfg), min_head_dim=geo["min_head_dim"])
            m.submodules[f"merge{r}"] = mu
            mus.append(mu)

        # ----------------------------------------------------- error handling
        err = Signal(ErrorCode)
        ended = Signal()
        started = Signal()
        # a register set together with `ended` or `err` (FPGA timing: no
        # OR of the error code in front of its large fan-out)
        halted = Signal()
        halt_now = Signal()              # comb: halted is set at the end of this cycle
        raises = []                      # (condition, code), first has priority

        def fail(cond, code):
            # the flag is assigned in the caller's m.If/m.Case context, so it
            # is only high where that context is active; registered before
            # the priority chain into `err` (FPGA timing: the error latches
            # one cycle later; a failing instruction never completes, so
            # nothing else happens in between)
            flag = Signal(name=f"fail{len(raises)}_{code.name.lower()}")
            flag_r = Signal(name=f"fail{len(raises)}_{code.name.lower()}_r")
            m.d.comb += flag.eq(cond)
            m.d.sync += flag_r.eq(flag)
            raises.append((flag_r, code))

        # --------------------------------------------------- instruction fetch
        # a 2-word queue in front of the instruction register: the host's
        # `ready` is then the queue's (a register compare), and a word's
        # range checks and beat count are computed while it waits in the
        # queue and registered with it (FPGA timing: none of this is on the
        # path from the completion logic back to the host or the registers)
        iwidth = instruction_layout(cfg).size
        m.submodules.ifetch = ifetch = SyncFIFO(width=iwidth, depth=2)
        ir_raw = Signal(iwidth)
        ir = instruction_layout(cfg)(ir_raw)
        ir_valid = Signal()
        # first cycle of the current instruction (kept apart: the
        # instruction register's selects below are copies of it, hw.fanout)
        ir_fresh = kept_apart_signal(name="ir_fresh")
        ir_range_bad = Signal()          # its fields are out of range (FIELD_RANGE)
        max_beats = _max_beats(cfg)
        ir_last_beat = Signal(range(max_beats + 1))    # index of its last row beat
        ir_done = Signal()               # comb: the current instruction completes
        # d's checks and d-1, 3d-1 registered, from a copy of d registered
        # next to them (FPGA timing: d comes from far away and has a large
        # fan-out; it is constant while running); no instruction is taken
        # before they are (d_seen, three cycles after reset: 3d-1 is 2d + the
        # registered d-1, FPGA timing: one adder between registers)
        d_seq = kept_apart_signal(d.shape(), name="d_seq", reset_less=True)
        d_ok, d_seen, d_seen0, d_seen1 = Signal(), Signal(), Signal(), Signal()
        d_m1 = Signal.like(d)
        d3_m1 = Signal(range(3 * D))
        m.d.sync += [d_seq.eq(d), d_seen0.eq(1), d_seen1.eq(d_seen0), d_seen.eq(d_seen1),
                     d_ok.eq((d_seq >= geo["min_head_dim"]) & (d_seq <= D)),
                     d_m1.eq(d_seq - 1), d3_m1.eq((d_seq << 1) + d_m1)]
        ins = self.instructions
        m.d.comb += [ins.ready.eq(~halted & d_seen & d_ok & ifetch.w_rdy),
                     ifetch.w_en.eq(ins.valid & ins.ready), ifetch.w_data.eq(ins.payload)]
        fail(ins.valid & ~halted & d_seen & ~d_ok, ErrorCode.BAD_HEAD_DIM)
        n_instr = Signal(COUNTER_BITS)
        with m.If(ins.valid & ins.ready):
            m.d.sync += started.eq(1)
        # (counted COUNT_DELAY cycles later, like the cycle counters below:
        # the 48-bit counter's enable comes from a flip-flop, not from the
        # host handshake)
        with m.If(delay_line(m, ins.valid & ins.ready, COUNT_DELAY, "inc_instr")):
            m.d.sync += n_instr.eq(n_instr + 1)
        nx = instruction_layout(cfg)(ifetch.r_data)
        nx_range_bad, nx_last_beat = self._predecode(m, nx)
        take = Signal()
        m.d.comb += [take.eq(ifetch.r_rdy & ~halted & (~ir_valid | ir_done)),
                     ifetch.r_en.eq(take)]
        m.d.sync += ir_fresh.eq(take)
        ir_fresh_d1 = Signal()           # second cycle of the current instruction
        m.d.sync += ir_fresh_d1.eq(ir_fresh)
        # The instruction register: the word taken, its predecoded range
        # check and beat count, and its opcode decoded into one flag per
        # opcode (FPGA timing: the sequencer's cases and the row beats below
        # test one flip-flop each, not a compare of the opcode field).  Each
        # is loaded under the take decision, built without a clock enable
        # (hw.fanout.register_with_registered_enable; FPGA timing: the
        # decision, 6-7 LUT levels deep, was routed to ~80 clock enables);
        # the selects are registered copies of the decision (twins of
        # ir_fresh): one for the word, one for the decoded flags.
        word_loaded, flags_loaded = register_copies(m, take, 2, "ir_loaded")
        m.d.comb += [
            ir_raw.eq(register_with_registered_enable(m, ifetch.r_data, word_loaded,
                                                      name="ir_word")),
            ir_range_bad.eq(register_with_registered_enable(m, nx_range_bad, flags_loaded,
                                                            name="ir_range_bad_r")),
            ir_last_beat.eq(register_with_registered_enable(m, nx_last_beat, flags_loaded,
                                                            name="ir_last_beat_r"))]
        ir_is = {op: register_with_registered_enable(m, nx.opcode == op, flags_loaded,
                                                     name=f"ir_is_{op.name.lower()}")
                 for op in Opcode}
        # a load instruction with its fields in range, one flag per load
        # opcode (FPGA timing: the row beats test one select instead of the
        # opcode flag's and the range flag's)
        loads = (Opcode.LOAD_Q, Opcode.LOAD_KV, Opcode.LOAD_GQ, Opcode.LOAD_GKV,
                 Opcode.LOAD_RKV)
        ir_load_ok = {op: register_with_registered_enable(
            m, (nx.opcode == op) & ~nx_range_bad, flags_loaded,
            name=f"ir_ok_{op.name.lower()}") for op in loads}
        ir_is_illegal = register_with_registered_enable(
            m, ~Cat(*(nx.opcode == op for op in Opcode)).any(), flags_loaded, name="ir_is_illegal")
        with m.If(take):
            m.d.sync += ir_valid.eq(1)
        with m.Elif(ir_done):
            m.d.sync += ir_valid.eq(0)
        # ir_valid & ~halted in a register of its own (FPGA timing: one
        # flip-flop, not two, in front of every case of the sequencer)
        ir_live = Signal()
        m.d.sync += ir_live.eq((take | (ir_valid & ~ir_done)) & ~halted & ~halt_now)
        # ir_live & ir_is[PASS] in a register of its own (FPGA timing: the
        # PASS decision is the deepest input of the take decision; this
        # saves it the AND of the two and the flag's hold multiplexer)
        live_pass = Signal(name="ir_live_pass")
        m.d.sync += live_pass.eq(Mux(take, nx.opcode == Opcode.PASS,
                                     ir_is[Opcode.PASS] & ir_valid & ~ir_done)
                                 & ~halted & ~halt_now)
        ops = ir.operands
        head = Signal(HEAD_BITS)

        # beat counter inside the current load instruction
        # (kept apart: its low bit has a copy of its own, ld_odd, below)
        ld_cnt = kept_apart_signal(range(max_beats + 1), name="ld_cnt")
        ld_inc = Signal()                # comb: a beat that is not the last
        ld_clr = Signal()                # comb: the last beat
        # last_beat (ld_cnt == ir_last_beat) from registers: in an
        # instruction's first cycle (ld_cnt = 0) its predecoded "one beat"
        # flag, later a flag registered at each beat (FPGA timing: the
        # compare sat in front of the take decision, 7 LUT levels)
        last_beat = Signal()
        lb_first = Signal(name="lb_first", reset_less=True)
        lb_reg = Signal(name="lb_reg")
        m.d.sync += [lb_first.eq(nx_last_beat == 0),
                     lb_reg.eq(Mux(ld_inc, ld_cnt + 1 == ir_last_beat, last_beat))]
        m.d.comb += last_beat.eq(Mux(flags_loaded, lb_first, lb_reg))
        # (cleared by each load instruction's last beat, below, not by
        # ir_done: FPGA timing, ir_done holds the PASS decision; only loads
        # count beats, and a halt is final)
        ld_cnt_next = Signal.like(ld_cnt)
        m.d.comb += ld_cnt_next.eq(Mux(ld_clr, 0, Mux(ld_inc, ld_cnt + 1, ld_cnt)))
        m.d.sync += ld_cnt.eq(ld_cnt_next)
        # ld_cnt[0] (a K or a V row beat of LOAD_KV) in a kept-apart copy
        # for the K/V set's ready select and kv_advance only (FPGA timing:
        # ld_cnt[0]'s net, with its many loads, was routed 3.0 ns to that
        # select at the head of the take decision)
        ld_odd = kept_apart_signal(name="ld_odd")
        m.d.sync += ld_odd.eq(ld_cnt_next[0])
        rin = self.rows_in

        wait_data = Signal()
        wait_mask = Signal()
        wait_instr = Signal()
        m.d.comb += wait_instr.eq(started & ~halted & ~ir_valid & ~ifetch.r_rdy & ~ins.valid)

        # ------------------------------------------------------------ buffers
        # Q, K and V: hw.row_buffer.BankedRowBuffer (block RAM banks; a row
        # written in ceil(d/chunk) cycles, K and V rows at the same time;
        # element x of consecutive rows per cycle, latency 4)
        # Q: 2 tiles (the LOAD_Q double buffer), tile b at rows b*NBQ ..
        qcur = Signal()                  # bank of the tile being computed
        q_pending = Signal()             # LOAD_Q filled ~qcur since the last first=1
        q_ever = Signal()
        qcount = [Signal(range(R + 1), name=f"qcount{b}") for b in range(2)]
        NBQ = geo["q_banks"]
        lgNBQ = _log2(NBQ)
        m.submodules.qbuf = qbuf = BankedRowBuffer(banks=NBQ, rows=2 * NBQ, max_head_dim=D,
                                                   data_width=dw, slots=R)
        # a LOAD_Q row beat and the tile row it writes, decoded here from
        # registers and the row valid, not through the sequencer's opcode
        # switch (FPGA timing: the switch's next beat count is deep logic);
        # the row counts the beats of one LOAD_Q (its last beat resets it)
        q_beat = Signal()
        m.d.comb += q_beat.eq(ir_live & ir_load_ok[Opcode.LOAD_Q]
                              & rin.valid & qbuf.w_ready[0])
        q_wrow = Signal(range(NBQ))      # row of the tile being loaded
        with m.If(q_beat):
            m.d.sync += q_wrow.eq(Mux(last_beat, 0, q_wrow + 1))
        m.d.comb += [qbuf.w_en.eq(q_beat),
                     qbuf.w_row.eq(Cat(q_wrow, ~qcur)), qbuf.w_data.eq(rin.payload),
                     qbuf.r_row[0].eq(Cat(Const(0, lgNBQ), qcur))]
        # K (set 0) and V (set 1): position p at row p mod CAP (NB banks, see
        # top_geometry); K and V rows share the write data path
        m.submodules.kvbuf = kvbuf = BankedRowBuffer(banks=NB, rows=CAP, max_head_dim=D,
                                                     data_width=dw, slots=S, sets=2)
        # chunks per row minus one, registered (d is constant while running)
        d_chunks_m1 = Signal.like(kvbuf.w_chunks_m1)
        m.d.sync += d_chunks_m1.eq((d - 1) >> _log2(kvbuf.chunk))
        # (a pass decided in the cycle after its last row was taken reads
        # element x from x + 2 cycles after the take on: its chunk is
        # written x div chunk + 2 cycles after the take, hw.row_buffer's
        # write-to-read timing)
        m.d.comb += [kvbuf.w_chunks_m1.eq(d_chunks_m1), qbuf.w_chunks_m1.eq(d_chunks_m1)]
        # global queries, global keys/values, random keys/values: registers,
        # data without a reset like the row staging register row_r (FPGA
        # routing: the reset net reached ~20k flip-flops; a row is written
        # before a pass reads it, and its load flags have a reset)
        gq_reg = [Signal(rowl, name=f"gq{g}", reset_less=True) for g in range(Gr)]
        gq_loaded = [Signal(name=f"gq_loaded{g}") for g in range(Gr)]
        gfirst_pend = [Signal(name=f"gfirst_pend{g}") for g in range(Gr)]
        gout = [Signal(range(3), name=f"gout{g}") for g in range(Gr)]
        gout_inc = [Signal(name=f"gout_inc{g}") for g in range(Gr)]
        # global keys/values: LOAD_GKV writes gk/gv_next at any time (no
        # hazard, so it overlaps the passes in flight); a pass copies the key
        # to gk_cur when it starts (its K phase reads it) and the value to
        # gv_pend[its parity], which moves to gv_cur when its V phase starts
        gk_next = [Signal(rowl, name=f"gk_next{g}", reset_less=True) for g in range(Gc)]
        gv_next = [Signal(rowl, name=f"gv_next{g}", reset_less=True) for g in range(Gc)]
        gv_pend = [[Signal(rowl, name=f"gv_pend{e}_{g}", reset_less=True) for g in range(Gc)] for e in range(2)]
        # the rows a phase reads (global key, global value, global query) are
        # copied into shift registers when it starts and move one element
        # towards element 0 per cycle of the phase, so element x is always
        # read from the same flip-flops (FPGA routing: no multiplexer over a
        # row spread out over the chip; before, its select nets were the
        # router's worst detours)
        gk_cur = [Signal(D * dw, name=f"gk_cur{g}", reset_less=True) for g in range(Gc)]
        gv_cur = [Signal(D * dw, name=f"gv_cur{g}", reset_less=True) for g in range(Gc)]
        gq_cur = [Signal(D * dw, name=f"gq_cur{g}", reset_less=True) for g in range(Gr)]
        n_groups = -(-D // ROW_GROUP)

        def shift_row(row, source, load, shift, name):
            # a shift register row: per group k of ROW_GROUP elements it loads
            # source(k, lo, hi) (its bits lo..hi) in the cycle after `load` and
            # moves one element towards element 0 in the cycles after
            # `shift`, from its own register copies of the two (hw.fanout)
            loads = register_copies(m, load, n_groups, f"{name}_load")
            shifts = register_copies(m, shift, n_groups, f"{name}_shift")
            moved = Cat(row[dw:], Const(0, dw))
            for k in range(n_groups):
                lo, hi = k * ROW_GROUP * dw, min(D, (k + 1) * ROW_GROUP) * dw
                with m.If(loads[k]):
                    m.d.sync += row[lo:hi].eq(source(k, lo, hi))
                with m.Elif(shifts[k]):
                    m.d.sync += row[lo:hi].eq(moved[lo:hi])
        gk_loaded = [Signal(name=f"gk_loaded{g}") for g in range(Gc)]
        # random keys/values: two sets indexed by pass parity, so LOAD_RKV
        # for pass n+1 may run while pass n still reads its own set
        rk_reg = [[Signal(rowl, name=f"rk{e}_{j}", reset_less=True) for j in range(R * Rc)] for e in range(2)]
        rv_reg = [[Signal(rowl, name=f"rv{e}_{j}", reset_less=True) for j in range(R * Rc)] for e in range(2)]
        # the register rows above are written a cycle after their beat from
        # registers (FPGA timing: the row and the enables come from
        # flip-flops, not from the sequencer's decision); every read window
        # starts later than that (see the load hazards)
        row_r = Signal(rowl, reset_less=True)
        wr_gq = [Signal(name=f"wr_gq{g}") for g in range(Gr)]
        wr_gk = [Signal(name=f"wr_gk{g}") for g in range(Gc)]
        wr_gv = [Signal(name=f"wr_gv{g}") for g in range(Gc)]
        wr_rk = [[Signal(name=f"wr_rk{e}_{j}") for j in range(R * Rc)] for e in range(2)]
        wr_rv = [[Signal(name=f"wr_rv{e}_{j}") for j in range(R * Rc)] for e in range(2)]
        m.d.sync += row_r.eq(self.rows_in.payload)
        for en, dst in ([*zip(wr_gq, gq_reg), *zip(wr_gk, gk_next), *zip(wr_gv, gv_next)]
                        + [(a, b) for e in range(2) for a, b in zip(wr_rk[e], rk_reg[e])]
                        + [(a, b) for e in range(2) for a, b in zip(wr_rv[e], rv_reg[e])]):
            # (one copy of the enable per group of ROW_GROUP elements,
            # hw.fanout: a single one would be the clock enable of the whole
            # row, hundreds of flip-flops spread out)
            groups = range(0, D, ROW_GROUP)
            for g0, en_r in zip(groups, register_copies(m, en, len(groups), f"{en.name}_r")):
                with m.If(en_r):
                    m.d.sync += [dst[x].eq(row_r[x]) for x in range(g0, min(D, g0 + ROW_GROUP))]

        # ------------------------------------------------------- pass engine
        sw = cfg.index_width + 2                     # kv_base width (ISA)
        kactive = Signal()
        kx = Signal(range(D))
        kbase = Signal(signed(sw))
        kpar = Signal()
        par = Signal()                               # parity of the next pass
        four_d_max = 4 * D
        since = Signal(range(four_d_max + 1), init=four_d_max)
        vpend = [Signal(name=f"vpend{e}") for e in range(2)]
        vtimer = [Signal(range(3 * D), name=f"vtimer{e}") for e in range(2)]
        # vtimer == 0, registered (FPGA timing: the V start drives the buffer
        # read addresses; 3d - 1 > 0, so a started timer is never zero)
        vzero = [Signal(name=f"vzero{e}") for e in range(2)]
        vbase = [Signal(signed(sw), name=f"vbase{e}") for e in range(2)]
        vactive = Signal()
        vx = Signal(range(D))
        vcur_base = Signal(signed(sw))
        vcur_par = Signal()
        # the same parity once per array row (FPGA timing: each row's first
        # PE selects its pass slot with it; one register reached every row)
        vcur_par_row = [kept_apart_signal(name=f"vcur_par_row{r}") for r in range(NRE)]
        # current pass's mask (array inputs, sampled by the array at q_last)
        m_lo = [Signal(cw, name=f"m_lo{i}") for i in range(R)]
        m_hi = [Signal(cw, name=f"m_hi{i}") for i in range(R)]
        m_gcol = Signal(max(1, R * Gc))
        m_rcol = Signal(max(1, R * Rc))
        m_glo = [Signal(cw, name=f"m_glo{g}") for g in range(Gr)]
        m_ghi = [Signal(cw, name=f"m_ghi{g}") for g in range(Gr)]
        # merge flags of the current pass (local rows; per global row)
        l_en, l_first, l_last = Signal(), Signal(), Signal()
        g_en = [Signal(name=f"g_en{g}") for g in range(Gr)]
        g_first = [Signal(name=f"g_first{g}") for g in range(Gr)]
        g_last = [Signal(name=f"g_last{g}") for g in range(Gr)]
        in_tile = Signal()
        drain = Signal(range(4 * D + NRE + C + arr.chain_len + 16))
        drain_const = max(max(arr.ws_delay(r) for r in range(NRE)), 0) + FEED + 1

        # a pass start in two cycles (FPGA timing: the sequencer's decision
        # is deep, its targets are spread over the chip): in cycle c0-1 the
        # sequencer decides (`go_pass`, comb) and the parameters below (comb,
        # set by PASS or STORE_G) are registered with the pass's parity;
        # the pass starts in c0 (`start_pass`, a register) from those
        # registers.  Sequencer bookkeeping (tile, Q bank, output slots,
        # parity) happens at the decision.
        go_pass = Signal()
        # (kept apart: it has copies below, hw.fanout)
        start_pass = kept_apart_signal(name="start_pass")
        p_base = Signal(signed(sw))
        p_lo = [Signal(cw, name=f"p_lo{i}") for i in range(R)]
        p_hi = [Signal(cw, name=f"p_hi{i}") for i in range(R)]
        p_gcol = Signal(max(1, R * Gc))
        p_rcol = Signal(max(1, R * Rc))
        p_glo = [Signal(cw, name=f"p_glo{g}") for g in range(Gr)]
        p_ghi = [Signal(cw, name=f"p_ghi{g}") for g in range(Gr)]
        p_len, p_lfirst, p_llast = Signal(), Signal(), Signal()
        p_gen = [Signal(name=f"p_gen{g}") for g in range(Gr)]
        p_gfirst = [Signal(name=f"p_gfirst{g}") for g in range(Gr)]
        p_glast = [Signal(name=f"p_glast{g}") for g in range(Gr)]
        empty_lo = (1 << cw) - 1                     # lo > hi: empty range
        m.d.comb += [x.eq(empty_lo) for x in p_lo + p_glo]
        p_all = [p_base, p_gcol, p_rcol, p_len, p_lfirst, p_llast,
                 *p_lo, *p_hi, *p_glo, *p_ghi, *p_gen, *p_gfirst, *p_glast]
        s_all = [Signal.like(x, name=f"s_{x.name}") for x in p_all]
        (s_base, s_gcol, s_rcol, s_len, s_lfirst, s_llast), rest = s_all[:6], s_all[6:]
        s_lo, rest = rest[:R], rest[R:]
        s_hi, rest = rest[:R], rest[R:]
        s_glo, rest = rest[:Gr], rest[Gr:]
        s_ghi, rest = rest[:Gr], rest[Gr:]
        s_gen, s_gfirst, s_glast = rest[:Gr], rest[Gr:2 * Gr], rest[2 * Gr:]
        s_par = Signal()                             # the starting pass's parity
        m.d.sync += start_pass.eq(go_pass)
        # a copy of start_pass for the buffer read addresses (hw.fanout:
        # the net stays local)
        (start_addr,) = register_copies(m, go_pass, 1, "start_addr")
        # and one for the sequencer's cases (FPGA timing: start_pass's own
        # net reaches hundreds of loads; it was in front of the take decision)
        (start_seq,) = register_copies(m, go_pass, 1, "start_seq")
        # the parameters are registered every cycle, not only at a decision
        # (FPGA timing: the decision would be the clock enable of all of
        # them); every reader of s_* is gated by start_pass or one of its
        # copies, i.e. reads them in the cycle right after the decision
        m.d.sync += [a.eq(b) for a, b in zip(s_all, p_all)]
        m.d.sync += s_par.eq(par)
        with m.If(go_pass):
            m.d.sync += par.eq(~par)

        two_d = Signal(range(2 * D + 1))
        four_d = Signal(range(4 * D + 1))
        m.d.comb += [two_d.eq(d_seq << 1), four_d.eq(d_seq << 2)]
        # the sequencer may decide now: the start (next cycle) is 2d or >= 4d
        # after the previous start (`since` counts from it, saturating at
        # 4d); registered from `since` two cycles ahead (a start or a
        # decision in between rules it out: d >= 3)
        slot_ok = Signal(init=1)
        since_next = Signal.like(since)
        since_2 = Signal(range(4 * D + 3))
        m.d.comb += [since_next.eq(Mux(since < four_d, since + 1, since)),
                     since_2.eq(Mux(since + 2 < four_d, since + 2, four_d))]
        m.d.sync += slot_ok.eq(~start_pass & ~go_pass
                               & ((since_2 == two_d) | (since_2 >= four_d)))

        # output path; its store-command queue takes STORE, RELEASE, STORE_G
        index_bits = merge_output_layout(head_dim_max=D, out_width=cfg.out_width)[
            "index"].shape.width
        m.submodules.output = op = OutputPath(
            rows=R, global_rows=Gr, max_head_dim=D, out_width=cfg.out_width, out_tiles=n_out,
            index_width=iw, head_bits=HEAD_BITS, index_bits=index_bits)
        push = op.commands.payload
        push_valid, push_ready = op.commands.valid, op.commands.ready
        # tiles: closed (last pass started) and emitted (merge units finished)
        outstanding = Signal(range(3))
        out_inc, out_dec = Signal(), Signal()
        close_slot = Signal(range(n_out))
        last_slot = Signal(range(n_out))
        has_finished = Signal()

        # K/V ring hazard: a write of position p must not hit a physical row
        # an in-flight pass still reads (K phase, pending or active V phase)
        def kv_conflict(pos):
            readers = [(start_pass, s_base), (kactive, kbase), (vactive, vcur_base)]
            readers += [(vpend[e], vbase[e]) for e in range(2)]
            conds = []
            # diff < S as "high bits zero and low bits < S" (FPGA timing:
            # Yosys maps a compare of the whole difference to a second
            # carry chain; the low bits' compare fits a LUT)
            lgS = (S - 1).bit_length()
            for act, b in readers:
                diff = Signal(lgCAP, name=None)
                m.d.comb += diff.eq(pos - b)
                low_ok = (diff[:lgS] < S) if lgS else Const(1, 1)
                conds.append(act & ~diff[lgS:].any() & low_ok)
            out = Signal()
            m.d.comb += out.eq(Cat(*conds).any())
            return out

        # LOAD_KV's position register and its conflict flag, registered from
        # registers only (FPGA timing): while a LOAD_KV runs no pass starts,
        # so the readers of one cycle ago are a superset of today's.  In the
        # instruction's first cycle the flag is computed from the
        # instruction register's position field and the position loads from
        # it; LOAD_KV's beats start in its second cycle; the position
        # advances with a V row.  The beat is decoded here from registers
        # and the row valid, not through the sequencer's opcode switch (FPGA
        # timing: no clock enable from the fetch logic)
        kv_pos = kept_apart_signal(iw + 1, name="kv_pos")   # (kv_wrow copies it: hw.fanout)
        # The conflict flag of the position kv_pos holds next cycle, in one
        # register: the flags of the three positions it may hold are
        # computed from registers (the instruction's position in its first
        # cycle, kv_pos + 1 when a V row is written, else kv_pos) and this
        # cycle's beat decision selects one after the subtractions (FPGA
        # timing: a select of the three registered flags sat in front of
        # the take decision, 7 LUT levels)
        kv_conflict_r = Signal(name="kv_conflict_r")
        ir_is_kv = Signal()
        m.d.comb += ir_is_kv.eq(ir_live & ir_load_ok[Opcode.LOAD_KV])
        kv_blocked = ir_fresh | kv_conflict_r   # the conflict flag is one cycle old
        kv_beat = Signal()               # a LOAD_KV row beat (== beat in LOAD_KV)
        kv_advance = Signal()            # a V row is written, kv_pos moves on
        # the set the next row goes to (K, then V) takes a row now
        kv_set_ready = Signal()
        m.d.comb += kv_set_ready.eq(Mux(ld_odd, kvbuf.w_ready[1], kvbuf.w_ready[0]))
        m.d.comb += [kv_beat.eq(ir_is_kv & ~kv_blocked & kv_set_ready & rin.valid),
                     kv_advance.eq(kv_beat & ld_odd)]
        # kv_pos + 1 kept in a register too (FPGA timing: no increment in
        # front of the conflict check's subtractions)
        kv_pos_p1 = Signal.like(kv_pos, init=1)
        kv_pos_next = Signal.like(kv_pos)
        kv_pos_p1_next = Signal.like(kv_pos)
        # (not from the fetch queue under the take decision: 7 LUT levels)
        # The position field in a register of its own, loaded from the
        # fetch queue's head every cycle (no clock enable): in the cycle
        # after a take, i.e. in the instruction's first cycle, it holds the
        # word taken (FPGA timing: the instruction register sits by the
        # sequencer, this copy by the conflict check)
        ir_kv_addr = kept_apart_signal(Value.cast(ops.load_kv.addr).shape(),
                                       name="ir_kv_addr", reset_less=True)
        m.d.sync += ir_kv_addr.eq(nx.operands.load_kv.addr)
        m.d.comb += [
            kv_pos_next.eq(Mux(ir_fresh, ir_kv_addr,
                               Mux(kv_advance, kv_pos_p1, kv_pos))),
            kv_pos_p1_next.eq(Mux(ir_fresh, ir_kv_addr + 1,
                                  Mux(kv_advance, kv_pos_p1 + 1, kv_pos_p1)))]
        # the K/V buffer's write row is a copy (hw.fanout: its write rotation
        # fans every bit out to hundreds of LUTs; kv_pos itself stays near
        # the conflict check)
        (kv_wrow,) = register_copies(m, kv_pos_next[:lgCAP], 1, "kv_wrow")
        m.d.sync += [kv_pos.eq(kv_pos_next), kv_pos_p1.eq(kv_pos_p1_next),
                     kv_conflict_r.eq(Mux(ir_fresh, kv_conflict(ir_kv_addr),
                                          Mux(kv_advance, kv_conflict(kv_pos_p1),
                                              kv_conflict(kv_pos))))]
        # (unconditional: only the enables depend on the instruction)
        m.d.comb += [kvbuf.w_row.eq(kv_wrow), kvbuf.w_data.eq(rin.payload)]

        # (the _d1 registers kept apart: the shift register rows have copies
        # of them, hw.fanout)
        kactive_d1, vactive_d1 = kept_apart_signal(name="kactive_d1"), kept_apart_signal(name="vactive_d1")
        kactive_d2, kactive_d3, kactive_d4 = Signal(), Signal(), Signal()
        vactive_d2, vactive_d3, vactive_d4 = Signal(), Signal(), Signal()

        # K/V residency: a pass must read only rows holding its positions
        m.submodules.kv_residency = kv_res = KvResidency(
            banks=NB, bank_depth=BD, slots=S, index_width=iw, base_width=sw)
        # its write (a V row) and clear (SET_HEAD) registered on the way
        # (FPGA timing), and once more per bank inside: they take effect in
        # the tags 3 cycles after the beat or the SET_HEAD, still before any
        # pass that could depend on them reads the tags (a pass decided in
        # the next cycle starts a cycle later, its check reads the tags 2
        # cycles after its start: 4 cycles after the beat)
        res_clear, res_write = Signal(), Signal()
        m.d.sync += [kv_res.clear.eq(res_clear), kv_res.write_en.eq(res_write),
                     kv_res.write_pos.eq(kv_pos)]

        # ------------------------------------------------------- all idle?
        # all_idle_r: nothing was in flight two cycles ago (FPGA timing: the
        # idle flags of the sequencer, the drain counter, the merge units and
        # the output path are registered where they are, then ANDed and
        # registered); SYNC/END skip their first two cycles, so the previous
        # instruction's effects (a pass start, a queued store) are seen
        all_idle_r = Signal()
        settled = Signal()              # the current instruction's third cycle or later
        m.d.comb += settled.eq(~ir_fresh & ~ir_fresh_d1)

        # ------------------------------------- register-row loads (row beats)
        # a LOAD_GQ / LOAD_GKV / LOAD_RKV row beat and the register row it
        # writes, decoded from registers (opcode flags of the word, the
        # hazards) and the row valid, not through the sequencer's opcode
        # switch (FPGA timing: the enables have a copy per 8 elements of the
        # row, spread along it)
        # the global query registers are read in the K phase (S0/S1)
        gq_hz = Signal()
        m.d.comb += gq_hz.eq(start_seq | kactive | kactive_d1 | kactive_d2)
        gq_beat, gkv_beat, rkv_beat = Signal(), Signal(), Signal()
        m.d.comb += [gq_beat.eq(ir_live & ir_load_ok[Opcode.LOAD_GQ] & ~gq_hz & rin.valid),
                     gkv_beat.eq(ir_live & ir_load_ok[Opcode.LOAD_GKV] & rin.valid)]
        for g in range(Gr):
            with m.If(gq_beat & _eq(ops.load_gq.row, g)):
                m.d.comb += wr_gq[g].eq(1)
                m.d.sync += [gq_loaded[g].eq(1), gfirst_pend[g].eq(1)]
        for g in range(Gc):
            with m.If(gkv_beat & _eq(ops.load_gkv.col, g)):
                with m.If(ld_cnt[0]):
                    m.d.comb += wr_gv[g].eq(1)
                    m.d.sync += gk_loaded[g].eq(1)
                with m.Else():
                    m.d.comb += wr_gk[g].eq(1)
        # LOAD_RKV: set `par` (the next pass's) is free once no pass of that
        # parity is in its K phase or before the end of its V phase
        rkv_hz = Signal()
        if Rc:
            m.d.comb += [rkv_hz.eq(Mux(par, vpend[1], vpend[0])
                                   | ((vactive | vactive_d1 | vactive_d2) & (vcur_par == par))
                                   | ((kactive | kactive_d1 | kactive_d2) & (kpar == par))),
                         rkv_beat.eq(ir_live & ir_load_ok[Opcode.LOAD_RKV] & ~rkv_hz
                                     & rin.valid)]
            idx = ld_cnt >> 1
            for j in range(R * Rc):
                for e in range(2):
                    with m.If(rkv_beat & _eq(idx, j) & (par == e)):
                        with m.If(ld_cnt[0]):
                            m.d.comb += wr_rv[e][j].eq(1)
                        with m.Else():
                            m.d.comb += wr_rk[e][j].eq(1)

        # ------------------------------------------------------ mask stage
        # the mask stream through a register, the record's "some row has
        # pairs" and "global column g used" decoded with it
        # (FPGA timing: the PASS decision tests flags, not compares and ORs
        # of the record's fields; `masks.ready` is this register's
        # empty flag).  It takes a record only when empty: one record per two
        # cycles, and passes start at least two cycles apart
        mk = Signal(mask_record_layout(cfg), name="mask_r")
        mk_valid = Signal()
        mk_grow_work = Signal(max(1, Gr))    # global row g's range is not empty
        mk_local_work = Signal()         # some row has pairs (a range, a global or random column)
        mk_gcol_any = Signal(max(1, Gc))     # some row takes global column g
        mk_used = Signal()               # comb: a PASS takes the staged record
        rin_m = self.masks.payload
        m.d.comb += self.masks.ready.eq(~mk_valid)
        with m.If(~mk_valid):
            row_work = Cat(*[rin_m.rows[i].col_lo <= rin_m.rows[i].col_hi for i in range(R)])
            gcol_in = Cat(*[rin_m.rows[i].gcol_en for i in range(R)]) if Gc else Const(0, 1)
            rcol_in = Cat(*[rin_m.rows[i].rcol_en for i in range(R)]) if Rc else Const(0, 1)
            m.d.sync += [mk.eq(rin_m), mk_valid.eq(self.masks.valid),
                         mk_local_work.eq(Cat(row_work, gcol_in.any(), rcol_in.any()).any())]
            if Gc:
                m.d.sync += mk_gcol_any.eq(Cat(*[Cat(*[gcol_in[i * Gc + g] for i in range(R)]).any()
                                                 for g in range(Gc)]))
            if Gr:
                m.d.sync += mk_grow_work.eq(Cat(*[rin_m.grows[g].col_lo <= rin_m.grows[g].col_hi
                                                  for g in range(Gr)]))
        with m.Elif(mk_used):
            m.d.sync += mk_valid.eq(0)

        # ------------------------------------------------------ the sequencer
        OP = ops
        # PASS: under its own live flag (see live_pass)
        with m.If(live_pass):
            f = OP["pass"]
            rec = mk
            rec_lo = [rec.rows[i].col_lo for i in range(R)]
            rec_hi = [rec.rows[i].col_hi for i in range(R)]
            rec_gcol = Cat(*[rec.rows[i].gcol_en for i in range(R)]) if Gc else Const(0, 1)
            rec_rcol = Cat(*[rec.rows[i].rcol_en for i in range(R)]) if Rc else Const(0, 1)
            rec_glo = [rec.grows[g].col_lo for g in range(Gr)]
            rec_ghi = [rec.grows[g].col_hi for g in range(Gr)]
            tile_ok = Signal()
            m.d.comb += tile_ok.eq(in_tile | f.first)
            gmerge = [Signal(name=f"gmerge{g}") for g in range(Gr)]
            m.d.comb += [gmerge[g].eq(f.grow & gq_loaded[g]) for g in range(Gr)]
            local_work = mk_local_work
            bad_g = Cat(Const(0, 1), *[f.grow & mk_grow_work[g] & ~gq_loaded[g]
                                       for g in range(Gr)]).any()
            bad_gk = Cat(Const(0, 1), *[mk_gcol_any[g] & ~gk_loaded[g]
                                        for g in range(Gc)]).any()
            with m.If((f.first & ~q_ever) | (f.last & ~tile_ok)):
                fail(Const(1), ErrorCode.PROTOCOL)
            with m.Elif(~mk_valid):
                m.d.comb += wait_mask.eq(1)
            with m.Elif((local_work & ~tile_ok) | bad_g | bad_gk):
                fail(Const(1), ErrorCode.PROTOCOL)
            with m.Else():
                bank_ok = ~f.first | (outstanding < 2)
                gbank_ok = Cat(Const(1, 1), *[~(gmerge[g] & gfirst_pend[g] & gout[g].any())
                                              for g in range(Gr)]).all()
                fifo_ok = ~(f.last & has_finished) | push_ready
                go = Signal()
                m.d.comb += go.eq(slot_ok & bank_ok & gbank_ok & fifo_ok)
                with m.If(go):
                    m.d.comb += [go_pass.eq(1), mk_used.eq(1),
                                 ir_done.eq(1)]
                    m.d.sync += in_tile.eq(tile_ok & ~f.last)
                    with m.If(f.first & q_pending):
                        m.d.sync += [qcur.eq(~qcur), q_pending.eq(0)]
                    for g in range(Gr):
                        with m.If(gmerge[g]):
                            m.d.sync += gfirst_pend[g].eq(0)
                    with m.If(f.last):
                        m.d.comb += out_inc.eq(1)
                        m.d.sync += [last_slot.eq(close_slot), has_finished.eq(1),
                                     close_slot.eq(Mux(close_slot == n_out - 1, 0,
                                                       close_slot + 1))]
                        # the previous finished tile can no longer be stored
                        with m.If(has_finished):
                            m.d.comb += [push.kind.eq(StoreKind.RELEASE),
                                         push.slot.eq(last_slot), push_valid.eq(1)]
        with m.If(ir_live):
            with m.If(ir_is[Opcode.NOP]):
                m.d.comb += ir_done.eq(1)
            with m.If(ir_is[Opcode.SET_HEAD]):
                # K/V rows and global keys of the previous head stop
                # counting; not in a start cycle: the residency check of
                # that pass reads the tags two cycles later, before this
                # clear (registered) takes effect
                with m.If(~start_seq):
                    m.d.comb += [ir_done.eq(1), res_clear.eq(1)]
                    m.d.sync += [head.eq(OP.set_head.head)] + [x.eq(0) for x in gk_loaded]
            with m.If(ir_is[Opcode.LOAD_Q]):
                cnt = OP.load_q.count
                with m.If(ir_range_bad):
                    fail(Const(1), ErrorCode.FIELD_RANGE)
                with m.Else():
                    m.d.comb += [rin.ready.eq(qbuf.w_ready[0]),
                                 wait_data.eq(~rin.valid & qbuf.w_ready[0])]
                    # (q_beat, not beat: the same cycles here, without the
                    # other opcodes' ready logic in front of qcount's enables)
                    with m.If(q_beat):
                        with m.If(last_beat):
                            m.d.comb += [ir_done.eq(1), ld_clr.eq(1)]
                            m.d.sync += [q_pending.eq(1), q_ever.eq(1)]
                            with m.If(qcur):
                                m.d.sync += qcount[0].eq(cnt)
                            with m.Else():
                                m.d.sync += qcount[1].eq(cnt)
                        with m.Else():
                            m.d.comb += ld_inc.eq(1)
            with m.If(ir_is[Opcode.LOAD_KV]):
                with m.If(ir_range_bad):
                    fail(Const(1), ErrorCode.FIELD_RANGE)
                with m.Else():
                    m.d.comb += [rin.ready.eq(~kv_blocked & kv_set_ready),
                                 wait_data.eq(~rin.valid & ~kv_blocked & kv_set_ready)]
                    with m.If(kv_beat):
                        m.d.comb += kvbuf.w_en.eq(Mux(ld_cnt[0], 0b10, 0b01))
                        # resident once its V row (the second) is written
                        m.d.comb += res_write.eq(kv_advance)
                        with m.If(last_beat):
                            m.d.comb += [ir_done.eq(1), ld_clr.eq(1)]
                        with m.Else():
                            m.d.comb += ld_inc.eq(1)
            with m.If(ir_is[Opcode.LOAD_GQ]):
                with m.If(ir_range_bad):
                    fail(Const(1), ErrorCode.FIELD_RANGE)
                with m.Else():
                    m.d.comb += [rin.ready.eq(~gq_hz), wait_data.eq(~rin.valid & ~gq_hz)]
                    with m.If(gq_beat):
                        m.d.comb += ir_done.eq(1)
            with m.If(ir_is[Opcode.LOAD_GKV]):
                with m.If(ir_range_bad):
                    fail(Const(1), ErrorCode.FIELD_RANGE)
                with m.Else():
                    m.d.comb += [rin.ready.eq(1), wait_data.eq(~rin.valid)]
                    with m.If(gkv_beat):
                        with m.If(ld_cnt[0]):
                            m.d.comb += [ir_done.eq(1), ld_clr.eq(1)]
                        with m.Else():
                            m.d.comb += ld_inc.eq(1)    # (ld_cnt 0 -> 1)
            with m.If(ir_is[Opcode.LOAD_RKV]):
                if Rc == 0:
                    fail(Const(1), ErrorCode.FIELD_RANGE)
                else:
                    m.d.comb += [rin.ready.eq(~rkv_hz), wait_data.eq(~rin.valid & ~rkv_hz)]
                    with m.If(rkv_beat):
                        with m.If(last_beat):
                            m.d.comb += [ir_done.eq(1), ld_clr.eq(1)]
                        with m.Else():
                            m.d.comb += ld_inc.eq(1)
            with m.If(ir_is[Opcode.STORE]):
                cnt, addr = OP.store.count, OP.store.addr
                with m.If(ir_range_bad):
                    fail(Const(1), ErrorCode.FIELD_RANGE)
                with m.Elif(~has_finished):
                    fail(Const(1), ErrorCode.PROTOCOL)
                with m.Else():
                    m.d.comb += [push.kind.eq(StoreKind.STORE), push.slot.eq(last_slot),
                                 push.addr.eq(addr), push.count.eq(cnt),
                                 push.head.eq(head), push_valid.eq(1)]
                    with m.If(push_ready):
                        m.d.comb += ir_done.eq(1)
            with m.If(ir_is[Opcode.STORE_G]):
                row, addr = OP.store_g.row, OP.store_g.addr
                gsel = [Signal(name=f"gsel{g}") for g in range(Gr)]
                m.d.comb += [gsel[g].eq(_eq(row, g)) for g in range(Gr)]
                loaded = Cat(Const(0, 1), *[gsel[g] & gq_loaded[g] for g in range(Gr)]).any()
                with m.If(ir_range_bad):
                    fail(Const(1), ErrorCode.FIELD_RANGE)
                with m.Elif(~loaded):
                    fail(Const(1), ErrorCode.PROTOCOL)
                with m.Else():
                    # a closing pass with every pair masked: merging the exact
                    # zero changes nothing; its last=1 makes the merge unit
                    # normalize and emit the row
                    gbank_ok = Cat(Const(1, 1), *[~(gsel[g] & gfirst_pend[g] & gout[g].any())
                                                  for g in range(Gr)]).all()
                    go = Signal()
                    m.d.comb += go.eq(slot_ok & gbank_ok & push_ready)
                    m.d.comb += [push.kind.eq(StoreKind.STORE_G), push.row.eq(row),
                                 push.addr.eq(addr), push.head.eq(head)]
                    with m.If(go):
                        m.d.comb += [go_pass.eq(1), ir_done.eq(1), push_valid.eq(1)]
                        for g in range(Gr):
                            with m.If(gsel[g]):
                                m.d.comb += gout_inc[g].eq(1)
                                m.d.sync += gfirst_pend[g].eq(1)
            with m.If(ir_is[Opcode.SYNC]):
                with m.If(all_idle_r & settled):
                    m.d.comb += ir_done.eq(1)
            with m.If(ir_is[Opcode.END]):
                with m.If(all_idle_r & settled):
                    m.d.comb += ir_done.eq(1)
                    m.d.sync += [ended.eq(1), halted.eq(1)]
                    m.d.comb += halt_now.eq(1)
            with m.If(ir_is_illegal):
                fail(Const(1), ErrorCode.ILLEGAL_OPCODE)
        # the pass parameters follow the current PASS or STORE_G word (and
        # the state it reads) whenever that is the current instruction, not
        # only at its decision (FPGA timing: the decision's conditions were
        # the synchronous reset of the s_* registers, 5 LUT levels and a
        # long route); every reader of s_* is gated by start_pass, i.e.
        # reads them only in the cycle after a decision
        with m.If(ir_is[Opcode.PASS]):
            m.d.comb += [p_base.eq(f.kv_base), p_gcol.eq(rec_gcol),
                         p_rcol.eq(rec_rcol), p_len.eq(tile_ok),
                         p_lfirst.eq(f.first), p_llast.eq(f.last)]
            m.d.comb += [a.eq(b) for a, b in zip(p_lo + p_hi, rec_lo + rec_hi)]
            for g in range(Gr):
                m.d.comb += [p_glo[g].eq(Mux(gmerge[g], rec_glo[g], empty_lo)),
                             p_ghi[g].eq(Mux(gmerge[g], rec_ghi[g], 0)),
                             p_gen[g].eq(gmerge[g]),
                             p_gfirst[g].eq(gfirst_pend[g])]
        with m.Elif(ir_is[Opcode.STORE_G]):
            for g in range(Gr):
                m.d.comb += [p_gen[g].eq(gsel[g]),
                             p_gfirst[g].eq(gsel[g] & gfirst_pend[g]),
                             p_glast[g].eq(gsel[g])]

        # ---------------------------------------------------- pass start
        m.d.sync += since.eq(since_next)
        with m.If(kactive):
            m.d.sync += kx.eq(kx + 1)
            with m.If(kx == d_m1):
                m.d.sync += kactive.eq(0)
        with m.If(drain.any()):
            m.d.sync += drain.eq(drain - 1)
        n_pass = Signal(COUNTER_BITS)
        # the cycle after a start: m_* hold its mask (kept apart: the shift
        # register rows have copies of it, hw.fanout)
        pairs_new = kept_apart_signal(name="pairs_new")
        m.d.sync += pairs_new.eq(start_pass)
        with m.If(start_pass):
            m.d.sync += [kactive.eq(1), kx.eq(0), kbase.eq(s_base), kpar.eq(s_par),
                         since.eq(1), drain.eq(drain_const + four_d),
                         n_pass.eq(n_pass + 1),
                         l_en.eq(s_len), l_first.eq(s_lfirst), l_last.eq(s_llast),
                         m_gcol.eq(s_gcol), m_rcol.eq(s_rcol)]
            m.d.sync += [a.eq(b) for a, b in zip(m_lo + m_hi + m_glo + m_ghi,
                                                 s_lo + s_hi + s_glo + s_ghi)]
            m.d.sync += [a.eq(b) for a, b in zip(g_en + g_first + g_last,
                                                 s_gen + s_gfirst + s_glast)]
            for e in range(2):
                with m.If(s_par == e):
                    m.d.sync += [vpend[e].eq(1), vtimer[e].eq(d3_m1), vzero[e].eq(0),
                                 vbase[e].eq(s_base)]
        # the pass's global value rows into gv_pend[its parity] in the cycle
        # after the start (c0+1; a LOAD_GKV decided with the pass writes
        # gv_next at the end of c0+1 at the earliest; gv_pend[e] is read at
        # the V start, 3d later), a register copy of the enable per group of
        # ROW_GROUP elements (hw.fanout)
        for e in range(2):
            loads = register_copies(m, start_pass & (s_par == e), n_groups, f"gv_pend{e}_load")
            for k in range(n_groups):
                for g in range(Gc):
                    lo, hi = k * ROW_GROUP, min(D, (k + 1) * ROW_GROUP)
                    with m.If(loads[k]):
                        m.d.sync += [gv_pend[e][g][x].eq(gv_next[g][x]) for x in range(lo, hi)]
        # the key and query shift registers load in the cycle after the
        # start (c0+1: a LOAD_GKV decided with the pass writes gk_next at
        # the end of c0+1 at the earliest, a LOAD_GQ waits out the K phase)
        # and move during the K phase delayed by one (c0+2 .. c0+d+1), so
        # element 0 holds element x at c0+2+x; the enables are register
        # copies per group of ROW_GROUP elements (hw.fanout)
        for g in range(Gc):
            shift_row(gk_cur[g], lambda k, lo, hi, g=g: gk_next[g].as_value()[lo:hi],
                      start_pass, kactive, f"gk{g}")
        for g in range(Gr):
            shift_row(gq_cur[g], lambda k, lo, hi, g=g: gq_reg[g].as_value()[lo:hi],
                      start_pass, kactive, f"gq{g}")

        # residency check of the pass started last cycle, on its registered
        # base and mask: slot s is used by local row i's PE column
        # j = i + C-1 - s and by global-row PE column j = R-1 + C-1 - s
        # (sim.array_model.global_row_key_slots)
        def covers(lo, hi, j):
            # lo <= j <= hi; hi >= 0 always holds (and Verilator flags it)
            return (lo <= j) & (hi >= j) if j else lo == 0

        used = Signal(S)
        for s in range(S):
            terms = [covers(m_lo[i], m_hi[i], i + C - 1 - s)
                     for i in range(R) if 0 <= i + C - 1 - s < C]
            jg = R - 1 + C - 1 - s
            if 0 <= jg < C:
                terms += [covers(m_glo[g], m_ghi[g], jg) for g in range(Gr)]
            m.d.comb += used[s].eq(Cat(*terms).any())
        m.d.comb += [kv_res.check_en.eq(pairs_new), kv_res.check_base.eq(kbase),
                     kv_res.check_used.eq(used)]
        fail(kv_res.fault, ErrorCode.KV_NOT_RESIDENT)

        # ----------------------------------------------------- V phase timer
        with m.If(vactive):
            m.d.sync += vx.eq(vx + 1)
            with m.If(vx == d_m1):
                m.d.sync += vactive.eq(0)
        vstart = [Signal(name=f"vstart{e}") for e in range(2)]     # comb: V phase e begins
        # the value shift registers load in the cycle after the V start
        # (gv_pend[e] is next written >= d cycles later, by the next pass of
        # parity e) and move during the V phase delayed by one, like the
        # key rows above
        vstart_any = Signal()
        m.d.comb += vstart_any.eq(vstart[0] | vstart[1])
        for g in range(Gc):
            # (the parity of the starting V phase: a copy per group too)
            vpar = register_copies(m, vstart[1], n_groups, f"gv{g}_par")
            shift_row(gv_cur[g], lambda k, lo, hi, g=g, vpar=vpar: Mux(
                          vpar[k], gv_pend[1][g].as_value()[lo:hi],
                          gv_pend[0][g].as_value()[lo:hi]),
                      vstart_any, vactive, f"gv{g}")
        # (a start never meets a pending V phase of its own parity: the next
        # pass of a parity starts >= 4d after the previous one, whose V phase
        # began 3d after it; checked below, so the V start needs no guard)
        for e in range(2):
            with m.If(vpend[e]):
                with m.If(vzero[e]):
                    m.d.comb += vstart[e].eq(1)
                    m.d.sync += [vpend[e].eq(0), vactive.eq(1), vx.eq(0),
                                 vcur_base.eq(vbase[e]), vcur_par.eq(e)]
                    m.d.sync += [p.eq(e) for p in vcur_par_row]
                with m.Else():
                    m.d.sync += [vtimer[e].eq(vtimer[e] - 1), vzero[e].eq(vtimer[e] == 1)]

        # ------------------------------------------------------ S0 addresses
        # (buffer reads: element x of the pass's rows at c0+1+x; the buffers
        # return it at c0+4+x, see hw/row_buffer.py).  The buffers take the
        # addresses a cycle ahead (c0+x): the next values of the base and
        # element registers.  The Q tile bit needs none: qcur does not
        # change between a pass's start and the end of its K phase.
        kx_next = Signal.like(kx)
        kbase_next = Signal(lgCAP)           # (the row: the base mod kv_capacity)
        vx_next = Signal.like(vx)
        vbase_next = Signal(lgCAP)
        # the V starts for the addresses: separate registers, predicted a
        # cycle ahead (FPGA timing: `vstart` also loads the wide V-row copies
        # and its net spans the chip).  A V start is exactly the cycle after
        # the pending timer's last step (vtimer == 1, vzero not yet set)
        # unless a pass of that parity starts then (an INTERNAL error, above)
        vstart_addr = [register_copies(
            m, vpend[e] & ~vzero[e] & (vtimer[e] == 1) & ~(start_pass & (s_par == e)),
            1, f"vstart_addr{e}")[0] for e in range(2)]
        m.d.comb += [kx_next.eq(Mux(start_addr, 0, Mux(kactive, kx + 1, kx))),
                     kbase_next.eq(Mux(start_addr, s_base[:lgCAP], kbase[:lgCAP])),
                     vx_next.eq(Mux(vstart_addr[0] | vstart_addr[1], 0,
                                    Mux(vactive, vx + 1, vx))),
                     vbase_next.eq(Mux(vstart_addr[0], vbase[0][:lgCAP],
                                       Mux(vstart_addr[1], vbase[1][:lgCAP],
                                           vcur_base[:lgCAP])))]
        for e in range(2):
            fail(vstart_addr[e] != vstart[e], ErrorCode.INTERNAL)
        m.d.comb += [kvbuf.r_row[0].eq(kbase_next), kvbuf.r_x[0].eq(kx_next),
                     kvbuf.r_row[1].eq(vbase_next), kvbuf.r_x[1].eq(vx_next),
                     qbuf.r_x[0].eq(kx_next)]

        # ------------------------------------ S2 (c0+3+x), S3 (c0+4+x) -> ports
        # (kx_d1 kept apart: the register rows' element multiplexers
        # register kx too, hw.fanout)
        kx_d1 = kept_apart_signal(kx.shape(), name="kx_d1")
        kx_d2, kx_d3 = (Signal.like(kx, name=f"kx_d{k}") for k in range(2, 4))
        # register-row element multiplexers pick groups of GRP elements a
        # cycle ahead (see elem below)
        GRP = 8
        m.d.sync += [kactive_d1.eq(kactive), kactive_d2.eq(kactive_d1),
                     kactive_d3.eq(kactive_d2), kactive_d4.eq(kactive_d3),
                     kx_d1.eq(kx), kx_d2.eq(kx_d1), kx_d3.eq(kx_d2),
                     vactive_d1.eq(vactive), vactive_d2.eq(vactive_d1),
                     vactive_d3.eq(vactive_d2), vactive_d4.eq(vactive_d3)]
        # rows beyond the tile's query count are zero: the row mask is taken
        # with the read (the same Q bank) and travels with it through the
        # buffer's latency (FPGA timing: the array's q registers are cleared
        # from a flip-flop, not from the sequencer's bank and count logic)
        qcount_cur = Signal(range(R + 1))
        m.d.comb += qcount_cur.eq(Mux(qcur, qcount[1], qcount[0]))
        qrow_on = delay_line(m, Cat(*[qcount_cur > i for i in range(R)]), qbuf.latency, "qrow_on")
        for i in range(R):
            drive_from_data_register(m, arr.q[i], Mux(qrow_on[i], qbuf.r_data[0][i], 0),
                                     name=f"arr_q{i}")

        def head_element(row, name):
            # element 0 of a shift register row a cycle ago: the element its
            # phase reads two cycles after kx/vx (as elem() below; the row
            # holds element x in the cycle after kx/vx = x)
            return delay_line(m, row[:dw].as_signed(), 1, name)

        def elem(row, idx, name):
            # (the random key/value rows: two parity sets of R*Rc rows, read
            # in place rather than copied into shift registers)
            # element idx (two cycles ago) of a register row, in two steps
            # (FPGA timing: the row's flip-flops are spread out): the group
            # of GRP elements holding it is picked one cycle ahead and
            # registered; the row does not change in between (its writes
            # are outside the read windows: see the load hazards and the
            # start/V-start copies).  Each row has its own copies of the
            # delayed index (hw.fanout: a shared one fans out to every
            # row's multiplexers across the chip)
            (idx1,) = register_copies(m, idx, 1, f"{name}_i1")
            items = [Value.cast(row[x]) for x in range(D)]
            if D <= GRP:
                (idx2,) = register_copies(m, idx1, 1, f"{name}_i2")
                return _pick(m, items, idx2, signed(dw), name)
            lo = GRP.bit_length() - 1
            (idx2,) = register_copies(m, idx1[:lo], 1, f"{name}_i2")
            items += [Const(0, dw)] * (-D % GRP)
            groups = [Cat(*items[g0:g0 + GRP]) for g0 in range(0, len(items), GRP)]
            grp = Signal(GRP * dw, name=f"{name}_grp")
            m.d.sync += grp.eq(_pick(m, groups, idx1[lo:], unsigned(GRP * dw), f"{name}_g"))
            return _pick(m, [grp[k * dw:(k + 1) * dw].as_signed() for k in range(GRP)],
                         idx2, signed(dw), name)

        def staged(value, name):
            # the S2 result registered once more (S3): the array's port
            # registers are far from the register rows (FPGA timing)
            return delay_line(m, value, 1, name)
        # the buffers' registered outputs carry element x at S3
        for s in range(S):
            drive_from_data_register(
                m, arr.kv[s], Mux(kactive_d3, kvbuf.r_data[0][s], kvbuf.r_data[1][s]),
                name=f"arr_kv{s}")
        # the query's last element flag registered (FPGA timing: the
        # compare of kx with d-1 is not in front of the array's wires)
        q_last_d4 = Signal()
        m.d.sync += q_last_d4.eq(kactive_d3 & (kx_d3 == d_m1))
        for g in range(Gc):
            m.d.sync += arr.gkv[g].eq(staged(
                Mux(kactive_d2, head_element(gk_cur[g], f"gk_el{g}"),
                    head_element(gv_cur[g], f"gv_el{g}")), f"gkv_s3_{g}"))
        for j in range(R * Rc):
            rk_cur = Mux(kpar, rk_reg[1][j].as_value(), rk_reg[0][j].as_value())
            rv_cur = Mux(vcur_par, rv_reg[1][j].as_value(), rv_reg[0][j].as_value())
            m.d.sync += arr.rkv[j].eq(staged(
                Mux(kactive_d2, elem(rowl(rk_cur), kx, f"rk_el{j}"),
                    elem(rowl(rv_cur), vx, f"rv_el{j}")), f"rkv_s3_{j}"))
        for g in range(Gr):
            m.d.sync += arr.gq[g].eq(staged(head_element(gq_cur[g], f"gq_el{g}"),
                                            f"gq_s3_{g}"))
        m.d.comb += [
            arr.q_valid.eq(kactive_d4),
            arr.q_last.eq(q_last_d4), arr.q_parity.eq(kpar),
            arr.v_valid.eq(vactive_d4), arr.v_parity.eq(Cat(*vcur_par_row)),
        ]
        for i in range(R):
            m.d.comb += [arr.col_lo[i].eq(m_lo[i]), arr.col_hi[i].eq(m_hi[i])]
        if Gc:
            m.d.comb += arr.gcol_en.eq(m_gcol)
        if Rc:
            m.d.comb += arr.rcol_en.eq(m_rcol)
        for g in range(Gr):
            m.d.comb += [arr.grow_lo[g].eq(m_glo[g]), arr.grow_hi[g].eq(m_ghi[g])]

        # ------------------------------------------------------ merge units
        loc_flags = delay_line(m, Cat(l_en, l_first, l_last), arr.rs_delay(0) + 1, "lflags")
        for r in range(NRE):
            mu = mus[r]
            if r < R:
                fl = loc_flags
            else:
                g = r - R
                fl = delay_line(m, Cat(g_en[g], g_first[g], g_last[g]), arr.rs_delay(r) + 1,
                           f"gflags{g}")
            en_par = [Signal(name=f"en_par{r}_{e}") for e in range(2)]
            with m.If(arr.rs_valid[r]):
                for e in range(2):
                    with m.If(arr.rs_parity[r] == e):
                        m.d.sync += en_par[e].eq(fl[0])
            # the merge unit's inputs registered (FPGA timing: the row ends
            # and the merge units sit apart; the row sum and the elements
            # are delayed alike, MERGE_INPUT_LATENCY); its control kept
            # apart (hw.fanout: the local rows' flags are the same)
            ctl = {n: kept_apart_signal(name=f"mu{r}_{n}")
                   for n in ("rs_valid", "rs_first", "rs_last", "el_valid")}
            # the element valid from a register only, computed a cycle
            # earlier from the array's early valid (FPGA timing: with the
            # AND in front, its register sat by the array and its net to
            # the merge unit's element counter was routed 8 ns).  en_par is
            # then read a cycle earlier: a pass's flags are set at its row
            # sum, 2d-1 >= 5 cycles before its first element, and the next
            # pass of the same parity sets them after its last
            el_pre = kept_apart_signal(name=f"mu{r}_el_pre")
            m.d.sync += [
                ctl["rs_valid"].eq(arr.rs_valid[r] & fl[0]),
                ctl["rs_first"].eq(fl[1]), ctl["rs_last"].eq(fl[2]),
                el_pre.eq(arr.ws_valid_next[r]
                          & Mux(arr.ws_parity_next[r], en_par[1], en_par[0])),
                ctl["el_valid"].eq(el_pre),
            ]
            # (the data without reset: the flags above qualify it)
            for n in ("rs_sum", "rs_exp", "el_data"):
                drive_from_data_register(m, getattr(mu, n),
                                         {"rs_sum": arr.rs_sum[r], "rs_exp": arr.rs_exp[r],
                                          "el_data": arr.ws[r]}[n], name=f"mu{r}_{n}")
            m.d.comb += [mu.head_dim.eq(d)] + [getattr(mu, n).eq(v) for n, v in ctl.items()]
        fail(Cat(*[mu.error for mu in mus]).any(), ErrorCode.INTERNAL)
        fail(start_pass & Mux(s_par, vpend[1], vpend[0]), ErrorCode.INTERNAL)

        # ------------------------------------------------------- output path
        for r in range(R):
            wiring.connect(m, mus[r].output, op.local[r])
        for g in range(Gr):
            wiring.connect(m, mus[R + g].output, op.glob[g])
        m.d.comb += [out_dec.eq(op.tile_done), op.head_dim.eq(d),
                     self.results.valid.eq(op.results.valid),
                     self.results.payload.eq(op.results.payload),
                     op.results.ready.eq(self.results.ready)]
        fail(op.lockstep_error, ErrorCode.INTERNAL)
        with m.If(out_inc & ~out_dec):
            m.d.sync += outstanding.eq(outstanding + 1)
        with m.Elif(out_dec & ~out_inc):
            m.d.sync += outstanding.eq(outstanding - 1)
        for g in range(Gr):
            gdone = op.grow_done[g]
            with m.If(gout_inc[g] & ~gdone):
                m.d.sync += gout[g].eq(gout[g] + 1)
            with m.Elif(gdone & ~gout_inc[g]):
                m.d.sync += gout[g].eq(gout[g] - 1)

        # ------------------------------------------------------ idle / status
        # (see all_idle_r above) a merge unit turns busy only when a row sum
        # arrives, while the drain counter of its pass still covers it
        idle_parts = {
            "seq": ~start_pass & ~kactive & ~kactive_d1 & ~kactive_d2 & ~kactive_d3 & ~kactive_d4
                   & ~vpend[0] & ~vpend[1]
                   & ~vactive & ~vactive_d1 & ~vactive_d2 & ~vactive_d3 & ~vactive_d4,
            "drain": ~drain.any(),
            "merges": Cat(*[mu.idle for mu in mus]).all(),
            "output_store": op.idle_store,
            "output_write": op.idle_write,
        }
        idle_regs = []
        for name, value in idle_parts.items():
            r = Signal(name=f"idle_{name}_r")
            m.d.sync += r.eq(value)
            idle_regs.append(r)
        m.d.sync += all_idle_r.eq(Cat(*idle_regs).all())

        # watchdog on input starvation (from the registered wait flags)
        wd = Signal(WATCHDOG_BITS)
        wait_instr_r, wait_data_r, wait_mask_r = Signal(), Signal(), Signal()
        m.d.sync += [wait_instr_r.eq(wait_instr), wait_data_r.eq(wait_data),
                     wait_mask_r.eq(wait_mask)]
        starving = Signal()
        m.d.comb += starving.eq(wait_instr_r | wait_data_r | wait_mask_r)
        with m.If(starving & ~halted):
            with m.If(wd != (1 << WATCHDOG_BITS) - 1):
                m.d.sync += wd.eq(wd + 1)
        with m.Else():
            m.d.sync += wd.eq(0)
        timeout = Signal()
        m.d.comb += timeout.eq(self.watchdog_limit.any() & (wd >= self.watchdog_limit))
        fail(timeout & wait_instr_r, ErrorCode.INSTR_STARVED)
        fail(timeout & wait_data_r, ErrorCode.DATA_STARVED)
        fail(timeout & wait_mask_r, ErrorCode.MASK_STARVED)

        with m.If(~err.as_value().any()):
            first_branch = True
            for cond, code in raises:
                ctx = m.If(cond) if first_branch else m.Elif(cond)
                with ctx:
                    m.d.sync += [err.eq(code), halted.eq(1)]
                    m.d.comb += halt_now.eq(1)
                first_branch = False

        # counters
        cnt_total = Signal(COUNTER_BITS)
        cnt_busy = Signal(COUNTER_BITS)
        cnt_in = Signal(COUNTER_BITS)
        cnt_out = Signal(COUNTER_BITS)
        cnt_macs = Signal(COUNTER_BITS)
        running = Signal()
        m.d.comb += running.eq((started | (ins.valid & ins.ready)) & ~halted)
        # what to count this cycle passes through COUNT_DELAY registers
        # before it is added (FPGA timing: the 48-bit counters' enables come
        # from flip-flops, and the counters may sit far from the sequencer);
        # `done` and `error` are delayed alike, so the counters are complete
        # when either rises
        incs = {"total": running, "busy": running & (kactive_d4 | vactive_d4),
                "in": running & starving, "out": self.results.valid & ~self.results.ready}
        for cnt, (what, inc) in zip((cnt_total, cnt_busy, cnt_in, cnt_out), incs.items()):
            with m.If(delay_line(m, inc, COUNT_DELAY, f"inc_{what}")):
                m.d.sync += cnt.eq(cnt + 1)
        done_out = delay_line(m, ended, COUNT_DELAY, "done")
        err_out = delay_line(m, err, COUNT_DELAY, "error")
        # useful MACs of a pass: the product is registered before the 48-bit
        # add (FPGA timing: no multiplier output into an adder)
        # (PE pairs of the pass summed from its registered mask, then
        # registered, then the product)
        # (a global row not merged by the pass has the empty range)
        # (each row's pair count registered with the mask, from the start
        # registers the mask loads from: FPGA timing, the compare, subtract
        # and select are not in front of the sum)
        terms = []
        for k, (lo, hi) in enumerate(zip(s_lo + s_glo, s_hi + s_ghi)):
            row_pairs = Mux(lo <= hi, hi - lo + 1, 0)
            row_pairs_r = Signal(row_pairs.shape(), name=f"pairs_row{k}")
            with m.If(start_pass):
                m.d.sync += row_pairs_r.eq(row_pairs)
            terms.append(row_pairs_r)
        terms += [m_gcol[b] for b in range(R * Gc)]
        terms += [m_rcol[b] for b in range(R * Rc)]
        # (the product in hw.dsp's pipelined multiplier: on an ECP5 the DSP
        # block's own registers, not its 4 ns combinational mode)
        pairs_reg = Signal(range(cfg.num_pes + 1))
        m.d.sync += pairs_reg.eq(sum(terms))
        m.submodules.macs_mul = macs_mul = PipelinedMultiplier(
            a_shape=pairs_reg.shape(), b_shape=unsigned(len(d) + 1))
        m.d.comb += [macs_mul.a.eq(pairs_reg), macs_mul.b.eq(d << 1)]
        with m.If(delay_line(m, pairs_new, 1 + macs_mul.latency, "macs_new")):
            m.d.sync += cnt_macs.eq(cnt_macs + macs_mul.p)
        m.d.comb += [
            self.error.eq(err_out), self.done.eq(done_out), self.busy.eq(started & ~halted),
            self.cycles_total.eq(cnt_total), self.cycles_busy.eq(cnt_busy),
            self.cycles_stall_in.eq(cnt_in), self.cycles_stall_out.eq(cnt_out),
            self.useful_macs.eq(cnt_macs), self.passes.eq(n_pass),
            self.instr_count.eq(n_instr),
        ]
        return m
