"""Output path of the accelerator top: the output buffer of local tiles, one
collector per global row, and the store unit that turns STORE / STORE_G /
RELEASE commands into the ``results`` stream.

Bit-exact content: the merge units' normalized elements, unchanged (elements
>= d are sent as 0).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.fanout import kept_apart_signal, register_copies, register_tree

__all__ = ["OutputPath", "StoreKind", "store_command_layout"]


class StoreKind(enum.Enum, shape=2):
    """What a store command does."""
    #: send rows 0..count-1 of output tile ``slot`` as positions addr..
    STORE = 0
    #: free output tile ``slot`` once it is complete (the program can no
    #: longer store it: a later tile has ended)
    RELEASE = 1
    #: send the collector of global row ``row`` as position ``addr``
    STORE_G = 2


def _bits(n: int) -> int:
    return max(1, (n - 1).bit_length())


def store_command_layout(*, rows: int, global_rows: int, out_tiles: int, index_width: int,
                         head_bits: int) -> data.StructLayout:
    """A store command: kind, output tile slot, first position, row count,
    head (for the result payload), global row."""
    return data.StructLayout({
        "kind": StoreKind, "slot": _bits(out_tiles), "addr": index_width,
        "count": range(rows + 1), "head": head_bits, "row": _bits(global_rows)})


def _eq(x, c):
    """``x == c``, as a NOR for c = 0 (no multi-bit ``!x`` in the Verilog)."""
    if isinstance(c, int) and c == 0:
        return ~Value.cast(x).any()
    return x == c


def _pick(m, items, idx, shape, name):
    """``items[idx]`` as a case statement (no dynamic part-select)."""
    out = Signal(shape, name=name)
    with m.Switch(idx):
        for i, it in enumerate(items):
            with m.Case(i):
                m.d.comb += out.eq(it)
    return out


#: entries of the local elements' input queue (its `ready` is 2 cycles old)
INQ_DEPTH = 6

#: bits of a result row per group of the read/select/results registers
#: that share one copy of their select, address and valid (FPGA routing)
GROUP_BITS = 64


class OutputPath(wiring.Component):
    """Output buffer + global-row collectors + store unit.

    Parameters (keyword): ``rows`` (R local row ends, lockstep), ``global_rows``
    (Gr), ``max_head_dim``, ``out_width`` (output word), ``out_tiles``
    (tiles of R rows in the output buffer, >= 2), ``index_width`` (positions),
    ``head_bits``, ``index_bits`` (element index width of the merge output),
    ``queue_depth`` (store commands).

    Ports
    -----
    head_dim : In -- d; elements >= d of a result are sent as 0 (d is read
        through two registers: it must be steady for 2 cycles before a
        result leaves).
    local[r] : In(stream) -- merge unit r's elements (data, index, last); the
        R streams are in lockstep (same valid, index and last); ``ready`` is
        common and registered twice: a 6-entry input queue (registered
        output) had at most 3 entries two cycles earlier.  Element x
        goes to lane x of row r of the current write tile when that tile is
        free (the queue waits otherwise); ``last`` completes the tile.
    glob[g] : In(stream) -- global row g's merge unit; ready while its
        collector is empty and its last element was not accepted in the
        previous cycle.
    commands : In(stream of :func:`store_command_layout`) -- registered,
        then into a ``queue_depth``-entry FIFO; executed in order (a command
        can start 2 cycles after it was accepted); ``ready`` is a register
        (room for two more commands a cycle earlier).
    results : Out(stream of ``data``/``pos``/``head``) -- payload and valid
        registered; honours back-pressure.
    tile_done : Out -- one-cycle pulse: a local tile was completely written.
    grow_done : Out(Gr) -- pulse: global row g's collector was filled.
    idle_store : Out -- no command queued or executing, nothing in the read
        pipeline, ``results`` empty.
    idle_write : Out -- nothing in the input queue and no element on its
        way into the buffer or a collector.  The output path is idle when
        both are high (two flags, FPGA timing: each is registered where it
        is and ANDed after that register).
    lockstep_error : Out -- the local streams' valids differ (a design bug).

    Latency: a local element is written into the buffer 3 cycles after it
    is accepted (the input queue's registered output, then the registered
    write) when its tile is free (the free flag is registered: the first
    element of a tile waits at least a cycle after the previous tile's last); ``tile_done`` pulses in the cycle the last
    element is written.  A STORE row leaves 3 cycles after its command
    starts when the tile is complete and ``results`` is not back-pressured
    (the registered tile-complete flag, memory read, then the output
    register); one row per cycle.  STORE_G: 2 cycles after its collector is
    full, which is a cycle after its last element was accepted (the
    element is written 2 cycles after it is accepted); the collector takes
    new elements again from the cycle after its row is in the ``results``
    register.
    """

    def __init__(self, *, rows: int, global_rows: int, max_head_dim: int, out_width: int,
                 out_tiles: int, index_width: int, head_bits: int, index_bits: int,
                 queue_depth: int = 4):
        if out_tiles < 2:
            raise ValueError(f"out_tiles = {out_tiles} is invalid: allowed >= 2")
        self.rows, self.global_rows = rows, global_rows
        self.max_head_dim, self.out_width = max_head_dim, out_width
        self.out_tiles, self.index_width, self.head_bits = out_tiles, index_width, head_bits
        self.queue_depth = queue_depth
        self.row_layout = data.ArrayLayout(signed(out_width), max_head_dim)
        self.cmd_layout = store_command_layout(rows=rows, global_rows=global_rows,
                                               out_tiles=out_tiles, index_width=index_width,
                                               head_bits=head_bits)
        elem = data.StructLayout({"data": signed(out_width), "index": unsigned(index_bits),
                                  "last": unsigned(1)})
        res = data.StructLayout({"data": self.row_layout, "pos": unsigned(index_width),
                                 "head": unsigned(head_bits)})
        ports = {
            "head_dim": In(max_head_dim.bit_length()),
            "local": In(stream.Signature(elem)).array(rows),
            "commands": In(stream.Signature(self.cmd_layout)),
            "results": Out(stream.Signature(res)),
            "tile_done": Out(1), "idle_store": Out(1), "idle_write": Out(1),
            "lockstep_error": Out(1),
            "grow_done": Out(max(1, global_rows)),
        }
        if global_rows:
            ports["glob"] = In(stream.Signature(elem)).array(global_rows)
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        R, Gr, D = self.rows, self.global_rows, self.max_head_dim
        n_out = self.out_tiles
        orowl = self.row_layout
        d = self.head_dim

        # ------------------------------------------------ local output buffer
        # the lockstep local elements enter a 6-entry queue with a registered
        # output; its `ready` to the merge units comes through two registers
        # (FPGA timing: it is the merge pipelines' stall, which reaches their
        # DSP blocks' clock enables; the second register is one kept-apart
        # copy per merge unit, next to it), high when at most 3 entries were
        # used two cycles ago, so the queue has room for the element it
        # admits (at most two more arrived since); the buffer's write
        # enables come from registers (the element index is queued one-hot)
        o0 = self.local[0]
        dw = len(Value.cast(o0.p.data))
        inq_layout = data.StructLayout({"data": data.ArrayLayout(unsigned(dw), R),
                                        "lane": D, "last": 1})
        m.submodules.inq = inq = SyncFIFOBuffered(width=inq_layout.size, depth=INQ_DEPTH)
        inq_room = Signal()
        m.d.sync += inq_room.eq(inq.level <= INQ_DEPTH - 3)
        # (one copy per merge unit and one for the queue's write enable)
        inq_ready = register_copies(m, inq_room, R + 1, "inq_ready")
        inq_in = Signal(inq_layout)
        m.d.comb += [inq_in.last.eq(o0.p.last), inq.w_data.eq(inq_in),
                     inq.w_en.eq(o0.valid & inq_ready[R])]
        m.d.comb += [inq_in.lane[x].eq(_eq(o0.p.index, x)) for x in range(D)]
        for r in range(R):
            m.d.comb += [inq_in.data[r].eq(self.local[r].p.data),
                         self.local[r].ready.eq(inq_ready[r])]
        head = Signal(inq_layout)
        m.d.comb += head.eq(inq.r_data)
        slot_full = Signal(n_out)
        wslot = Signal(range(n_out))
        write = Signal()
        # the write tile is free: registered (FPGA timing), so one cycle
        # late and never optimistic: not free in the cycle after a tile
        # ends (wslot moves on), and a RELEASE of the write tile frees it a
        # cycle later; the only set of slot_full is the tile before wslot
        # (two registers ANDed where used: the slot multiplexer and the
        # tile end are not in series in front of one flip-flop)
        wfree = Signal()
        wslot_free_r, tile_end_r = Signal(), Signal()
        m.d.sync += [wslot_free_r.eq(~_pick(m, list(slot_full), wslot, 1, "wslot_full")),
                     tile_end_r.eq(write & head.last)]
        m.d.comb += wfree.eq(wslot_free_r & ~tile_end_r)
        m.d.comb += [write.eq(inq.r_rdy & wfree), inq.r_en.eq(write)]
        # the write itself one cycle later from registers (FPGA timing: the
        # buffer is row-wide LUT RAM spread over the chip; its enables,
        # address and data come straight from flip-flops); the tile counts
        # as written (slot_full, tile_done) in that cycle
        # the row-wide paths are split into groups of about GROUP_BITS bits
        # (FPGA routing: no one net reaches all of a thousand-bit memory or
        # multiplexer): each local row's buffer is one memory per group,
        # and every (row, group) has its own copies of the write address,
        # write data and read address, every group its own copies of the
        # read select and results valid (hw.fanout)
        n_grp = max(1, min(D, -(-D * dw // GROUP_BITS)))
        grp_of = [x * n_grp // D for x in range(D)]
        grp_lanes = [[x for x in range(D) if grp_of[x] == g] for g in range(n_grp)]
        we_r = Signal(D)
        # (bookkeeping copy: slot_full, idle; kept apart from wa_copies)
        wa_r = kept_apart_signal(wslot.shape(), name="wa_r")
        set_slot = Signal()                 # registered: a tile's last element is written
        we_any = Signal()                   # we_r.any(), registered (idle_write)
        m.d.sync += [we_r.eq(Cat(*[write & head.lane[x] for x in range(D)])), wa_r.eq(wslot),
                     set_slot.eq(write & head.last), we_any.eq(write & head.lane.any())]
        # the (row, group) copies of the address are loaded from hubs, each
        # a copy of wslot itself (loaded with its next value), not all from
        # wslot (FPGA routing: one net reaching every copy across the chip
        # was 9 ns); the copies carry no reset (the enables do)
        # (the following slot kept in a register, FPGA timing: no increment
        # and wrap compare behind the write decision in front of the hubs)
        wslot_next = Signal.like(wslot)
        wslot_p1 = Signal.like(wslot, init=1 % n_out)
        tile_end = Signal()
        m.d.comb += [tile_end.eq(write & head.last),
                     wslot_next.eq(Mux(tile_end, wslot_p1, wslot))]
        with m.If(tile_end):
            m.d.sync += wslot_p1.eq(Mux(wslot_p1 == n_out - 1, 0, wslot_p1 + 1))
        wa_copies = register_tree(m, wslot_next, R * n_grp, "wa", reset_less=True)
        # (data: no reset, the write enables qualify them; FPGA timing, a
        # kept copy's reset is a LUT in front of it, hw.fanout)
        wd_copies = [register_copies(m, head.data[r], n_grp, f"wd{r}", reset_less=True)
                     for r in range(R)]
        out_rp = []                         # out_rp[r][g]: row r, group g's read port
        for r in range(R):
            ports = []
            for g, lanes in enumerate(grp_lanes):
                mem = Memory(shape=data.ArrayLayout(signed(self.out_width), len(lanes)),
                             depth=n_out, init=[])
                m.submodules[f"obuf{r}_{g}"] = mem
                wp = mem.write_port(granularity=1)
                ports.append(mem.read_port())
                m.d.comb += [wp.addr.eq(wa_copies[r * n_grp + g]),
                             wp.en.eq(Cat(*[we_r[x] for x in lanes]))]
                m.d.comb += [wp.data[k].eq(wd_copies[r][g]) for k in range(len(lanes))]
            out_rp.append(ports)
        m.d.comb += self.tile_done.eq(set_slot)
        m.d.sync += wslot.eq(wslot_next)
        if R > 1:
            m.d.comb += self.lockstep_error.eq(
                Cat(*[self.local[r].valid != o0.valid for r in range(1, R)]).any())

        # ---------------------------------------------- global row collectors
        # an accepted element is written 2 cycles later from registers: its
        # lane's enable (delayed twice), and one copy of the element per
        # group, through hub copies (hw.fanout.register_tree: the
        # collector's flip-flops sit with the row select they feed, spread
        # over the output path; the one register per group loading the
        # merge unit's output was routed 10 ns from it).  The full flag is
        # set a cycle after the last element is accepted (`ready` is low
        # from that cycle on: glast), so a STORE_G, which reads the
        # collector 2 cycles after the full flag is set, finds that element
        # written.
        gcoll = [Signal(orowl, name=f"gcoll{g}", reset_less=True)   # data: no reset
                 for g in range(Gr)]
        gfull = [Signal(name=f"gfull{g}") for g in range(Gr)]
        glast = [Signal(name=f"glast{g}") for g in range(Gr)]
        gwe = [Signal(D, name=f"gwe{g}") for g in range(Gr)]
        # (an element accepted one and two cycles ago: not idle)
        gpend = [Signal(2, name=f"gpend{g}") for g in range(Gr)]
        for g in range(Gr):
            o = self.glob[g]
            accept = o.valid & o.ready
            m.d.comb += [o.ready.eq(~gfull[g] & ~glast[g]),
                         self.grow_done[g].eq(accept & o.p.last)]
            gwe_pre = Signal(D, name=f"gwe{g}_pre")
            m.d.sync += [gwe_pre.eq(Cat(*[accept & _eq(o.p.index, x) for x in range(D)])),
                         gwe[g].eq(gwe_pre), glast[g].eq(accept & o.p.last),
                         gpend[g].eq(Cat(accept, gpend[g][0]))]
            # (no reset: data behind gwe; a kept copy's reset was a LUT whose
            # one net reached every copy, routed 10 ns)
            gdata = register_tree(m, o.p.data, n_grp, f"gdata{g}", reset_less=True)
            for x in range(D):
                with m.If(gwe[g][x]):
                    m.d.sync += gcoll[g][x].eq(gdata[grp_of[x]])
            with m.If(glast[g]):
                m.d.sync += gfull[g].eq(1)

        # -------------------------------------------------------- store unit
        # a command is registered on its way into the queue (FPGA timing: the
        # sequencer's decision does not drive the LUT-RAM queue's write
        # enable); `ready` is a register too (FPGA timing: the queue level
        # is not in front of the sequencer's decision), high when the
        # commands queued or in that register a cycle ago leave room for
        # two more (the one accepted in that cycle and one now), so the
        # queue always takes the registered one
        m.submodules.queue = fifo = SyncFIFO(width=self.cmd_layout.size, depth=self.queue_depth)
        cmd_in = Signal(self.cmd_layout)
        cmd_in_valid = Signal()
        # `ready` in two kept-apart registers with the same value: the
        # port's (its loads are the sequencer's, FPGA timing: the one
        # register placed by the queue was routed across the chip into the
        # sequencer's take decision) and the one the queue's write reads
        cmd_room_port, cmd_room = register_copies(
            m, fifo.level + cmd_in_valid < self.queue_depth - 1, 2, "cmd_room")
        take_cmd = self.commands.valid & cmd_room
        # (the command itself is registered every cycle, FPGA timing: the
        # sequencer's decision is not its clock enable; only cmd_in_valid
        # says whether it holds one)
        m.d.sync += [cmd_in_valid.eq(take_cmd), cmd_in.eq(self.commands.payload)]
        m.d.comb += [fifo.w_data.eq(cmd_in), fifo.w_en.eq(cmd_in_valid),
                     self.commands.ready.eq(cmd_room_port)]
        res = self.results
        cmd = kept_apart_signal(self.cmd_layout, name="cmd")   # (slot_copies: hw.fanout)
        cmd_valid = kept_apart_signal(name="cmd_valid")
        j = Signal(range(R + 1))
        # j == cmd.count - 1 in a register of its own (FPGA timing: no
        # comparison between the results handshake and j's clock enable)
        j_last = Signal()
        cmd_new = Signal()                  # the command was taken last cycle
        m.d.sync += cmd_new.eq(0)
        # the buffer is read at the command's slot every cycle (no read
        # enable: FPGA timing, the results stall does not reach the
        # thousands of read-data flip-flops), so a new command is not taken
        # while the read stage holds a row (a stalled row's read data would
        # change under it: the new slot is read from the next cycle on).
        # Any row, stalled or not: the take decision then comes from
        # registers only (FPGA timing: the results handshake reached the
        # command queue's level through it), at the cost of one idle cycle
        # between commands
        sa_valid = kept_apart_signal(name="sa_valid")
        # cmd_valid and sa_valid in two kept-apart registers each with the
        # same next value: the ones the command logic reads and the ones
        # only the queue's read enable reads (FPGA timing: the take
        # decision was routed 4.8 ns from the command registers to the
        # queue's level clock enable)
        cmd_valid_next, sa_valid_next = Signal(), Signal()
        cmd_valid_q = kept_apart_signal(name="cmd_valid_q")
        sa_valid_q = kept_apart_signal(name="sa_valid_q")
        m.d.comb += cmd_valid_next.eq(cmd_valid)
        m.d.sync += [cmd_valid.eq(cmd_valid_next), cmd_valid_q.eq(cmd_valid_next),
                     sa_valid.eq(sa_valid_next), sa_valid_q.eq(sa_valid_next)]
        take = Signal()
        m.d.comb += [take.eq(~cmd_valid & fifo.r_rdy & ~sa_valid),
                     fifo.r_en.eq(~cmd_valid_q & fifo.r_rdy & ~sa_valid_q)]
        with m.If(take):
            m.d.comb += cmd_valid_next.eq(1)
            m.d.sync += [cmd.eq(fifo.r_data), cmd_new.eq(1)]
        # while no command is current, j is 0 and j_last follows the queue's
        # head (a STORE of one row ends at its first row); j is not reloaded
        # by the take decision (FPGA timing: the results handshake is in it)
        head = self.cmd_layout(fifo.r_data)        # the queue's head command
        with m.If(~cmd_valid):
            m.d.sync += [j.eq(0), j_last.eq(head.count == 1)]
        # (row-wide paths in groups: see the output buffer above; the copies
        # follow the queue's head whenever a command could be taken, not only
        # when one is (FPGA timing: the queue level is not in their clock
        # enable); in such a cycle the read stage holds no row)
        # (their enable, ~cmd_valid & ~sa_valid, is a register of its own
        # loading the next values of both, FPGA timing: through a LUT,
        # cmd_valid's net reached the copies across the output path and was
        # routed 3.7 ns to its local loads)
        slot_en = kept_apart_signal(name="slot_en", init=1)
        m.d.sync += slot_en.eq(~cmd_valid_next & ~sa_valid_next)
        slot_copies = register_copies(m, head.slot, R * n_grp,
                                      "out_slot", enable=slot_en, reset_less=True)
        # read pipeline: issue -> read stage (the read data) -> results
        # register; issue and read stage stall on back-pressure
        # the results valid in two kept-apart registers with the same
        # loads: the port's (it goes to the consumer, wherever that is
        # placed) and the one the advance logic reads (FPGA
        # timing: the port register's net was routed 3.8 ns to them)
        res_valid_port = kept_apart_signal(name="res_valid_port")
        res_valid_ctl = kept_apart_signal(name="res_valid_ctl")
        m.d.comb += res.valid.eq(res_valid_port)
        adv = Signal()
        m.d.comb += adv.eq(~res_valid_ctl | res.ready)
        # one-hot source of the row being read: local row r (bit r) or global
        # row g's collector (bit R + g) (FPGA timing: an AND-OR per bit, no
        # decoder in front of the 1024-bit wide select; the collector is read
        # in place, not copied under the results handshake)
        sa_sel = kept_apart_signal(R + Gr, name="sa_sel")      # (sel_copies: hw.fanout)
        sa_pos = Signal(self.index_width)
        sa_head = Signal(self.head_bits)
        issue = Signal()
        release = Signal()
        # the command's tile is complete: registered from the previous cycle
        # (FPGA timing); not in the cycle after a new command was taken, and
        # otherwise only late by a cycle, never wrong: while a command is
        # current its slot only goes from not full to full (RELEASE, the
        # only clear, is that command itself and ends it)
        cur_full = Signal()
        cur_full_r = Signal()
        m.d.sync += cur_full_r.eq(_pick(m, list(slot_full), cmd.slot, 1, "cmd_slot_full"))
        m.d.comb += cur_full.eq(cur_full_r & ~cmd_new)
        for r in range(R):
            for g in range(n_grp):
                m.d.comb += [out_rp[r][g].addr.eq(slot_copies[r * n_grp + g]),
                             out_rp[r][g].en.eq(1)]
        # the read stage's row, position and head are loaded whenever it
        # advances, from the current command (FPGA timing: their clock
        # enable is the stall alone, not the issue decision); only sa_valid
        # says whether they hold a row
        is_store = Signal()
        m.d.comb += is_store.eq(cmd.kind == StoreKind.STORE)
        sa_sel_next = Signal.like(sa_sel)
        m.d.comb += sa_sel_next.eq(Mux(is_store, Cat(*[j == r for r in range(R)]),
                                       Cat(Const(0, R), *[_eq(cmd.row, g) for g in range(Gr)])))
        sel_copies = register_copies(m, sa_sel_next, n_grp, "sa_sel", enable=adv,
                                     reset_less=True)
        with m.If(adv):
            m.d.sync += [sa_sel.eq(sa_sel_next),
                         sa_pos.eq(Mux(is_store, cmd.addr + j, cmd.addr)), sa_head.eq(cmd.head)]
        with m.If(cmd_valid):
            with m.Switch(cmd.kind):
                with m.Case(StoreKind.STORE):
                    with m.If(cur_full & adv):
                        m.d.comb += issue.eq(1)
                        with m.If(j_last):
                            m.d.comb += cmd_valid_next.eq(0)
                        with m.Else():
                            m.d.sync += [j.eq(j + 1), j_last.eq(j + 1 == cmd.count - 1)]
                with m.Case(StoreKind.RELEASE):
                    with m.If(cur_full):
                        m.d.comb += release.eq(1)
                        m.d.comb += cmd_valid_next.eq(0)
                with m.Case(StoreKind.STORE_G):
                    for g in range(Gr):
                        # not while this collector's row is still in the read
                        # stage (it stays full until the results register has it)
                        with m.If(_eq(cmd.row, g) & gfull[g] & adv
                                  & ~(sa_valid & sa_sel[R + g])):
                            m.d.comb += issue.eq(1)
                            m.d.comb += cmd_valid_next.eq(0)
        m.d.comb += sa_valid_next.eq(Mux(adv, issue, sa_valid))
        # a collector is free again once the results register holds its row
        for g in range(Gr):
            with m.If(adv & sa_valid & sa_sel[R + g]):
                m.d.sync += gfull[g].eq(0)
        # slot bookkeeping: set by the merge units, cleared by RELEASE (never
        # the same slot in one cycle: RELEASE waits for a full slot)
        for s in range(n_out):
            with m.If(set_slot & _eq(wa_r, s)):
                m.d.sync += slot_full[s].eq(1)
            with m.Elif(release & _eq(cmd.slot, s)):
                m.d.sync += slot_full[s].eq(0)
        # row r's element x: lane x's position inside its group's memory
        sources = [[out_rp[r][grp_of[x]].data[grp_lanes[grp_of[x]].index(x)] for x in range(D)]
                   for r in range(R)] + gcoll
        sel_row = Signal(orowl)
        for x in range(D):
            sel = sel_copies[grp_of[x]]
            acc = 0
            for k, src in enumerate(sources):
                acc = acc | (Value.cast(src[x]) & sel[k].replicate(len(Value.cast(src[x]))))
            m.d.comb += sel_row[x].eq(acc)
        # elements >= d are zero (the buffers are not cleared by reset and
        # may hold a longer row of an earlier run); the lane mask is a
        # register, computed from a kept-apart copy of d (FPGA timing: d's
        # register is shared with the sequencer, far away; d is constant
        # while running, and a result leaves many cycles after d is set, so
        # the mask's three cycles of lag never show).  d > x in two steps
        # (FPGA timing: one LUT level per step, not a comparator per lane):
        # d's high and low bits compared with every value first, registered
        lane_d = kept_apart_signal(Value.cast(d).shape(), name="lane_d")
        m.d.sync += lane_d.eq(d)
        lo_w = min(3, len(lane_d))
        d_hi, d_lo = lane_d[lo_w:], lane_d[:lo_w]
        n_hi = ((D - 1) >> lo_w) + 1
        lo_max = (1 << lo_w) - 1
        hi_gt, hi_eq, lo_gt = Signal(n_hi), Signal(n_hi), Signal(lo_max)
        m.d.sync += [hi_gt[k].eq(d_hi > k) for k in range(n_hi)]
        m.d.sync += [hi_eq[k].eq(d_hi == k) for k in range(n_hi)]
        m.d.sync += [lo_gt[j].eq(d_lo > j) for j in range(lo_max)]
        lo_above = [lo_gt[j] for j in range(lo_max)] + [Const(0, 1)]    # d_lo > lo_max: never
        lane_off = Signal(D, init=(1 << D) - 1)   # (inverted: the data registers' reset, no LUT)
        m.d.sync += [lane_off[x].eq(~(hi_gt[x >> lo_w] | (hi_eq[x >> lo_w] & lo_above[x & lo_max])))
                     for x in range(D)]
        with m.If(adv):
            m.d.sync += [res_valid_port.eq(sa_valid), res_valid_ctl.eq(sa_valid),
                         res.p.pos.eq(sa_pos), res.p.head.eq(sa_head)]
        # each group's data registers advance with their own copy of the
        # results valid (equal to res.valid: same reset, same loads); the
        # data registers have no reset (res.valid qualifies them; FPGA
        # timing, the reset net reaches fewer flip-flops)
        res_data = Signal(res.p.data.shape(), name="res_data", reset_less=True)
        m.d.comb += res.p.data.eq(res_data)
        # (a lane >= d is cleared whether or not the register advances: it
        # only ever holds 0 while d is constant, and the clear is then the
        # flip-flop's reset from the lane mask's register alone, FPGA timing:
        # gated by the advance, the results ready reached every lane's reset
        # through a LUT)
        for g in range(n_grp):
            valid_g = kept_apart_signal(name=f"res_valid_dup{g}")
            adv_g = ~valid_g | res.ready
            with m.If(adv_g):
                m.d.sync += valid_g.eq(sa_valid)
                m.d.sync += [res_data[x].eq(sel_row[x]) for x in range(D) if grp_of[x] == g]
        for x in range(D):
            with m.If(lane_off[x]):
                m.d.sync += res_data[x].eq(0)
        m.d.comb += [self.idle_store.eq(~cmd_in_valid & ~fifo.r_rdy & ~cmd_valid & ~sa_valid
                                        & ~res.valid),
                     self.idle_write.eq((inq.level == 0) & ~we_any
                                        & ~Cat(*[p.any() for p in gpend]).any())]
        return m
