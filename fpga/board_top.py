"""Board shell of the accelerator: UART host link + frames + :class:`hw.top.SaloTop`.

:class:`SaloBoard` joins the serial link (:mod:`fpga.uart`), the frame
format (:mod:`fpga.framing`, payloads :mod:`fpga.board_protocol`) and the
accelerator::

    rx -> UartRx -> byte FIFO -> FrameReceiver (CRC-checked) -> dispatcher
          dispatcher -> instruction FIFO / mask FIFO / row FIFO -> SaloTop streams
          dispatcher -> control registers (head_dim, watchdog_limit), soft reset
    SaloTop.results -> result FIFO -+
    responses (ACK, STATUS, PONG) --+-> frame transmitter (CRC in hardware) -> UartTx -> tx
    CRC failures (ERROR) -----------+

Dispatcher: a verified frame's payload bytes (one per cycle) are assembled
into records of ``record_bytes(bits)`` bytes (little-endian, padding bits
dropped) and pushed into the FIFO of the frame's stream; when the frame's
last record is in its FIFO the board answers ACK (type, accelerator error
code).  While a FIFO is full the dispatcher holds the byte (the frame
receiver stops, the UART byte FIFO absorbs what follows; the host waits for
the ACK anyway).  CONTROL resets the accelerator and the stream/result
FIFOs (waiting until no RESULT frame is being sent), sets ``head_dim`` and
``watchdog_limit`` and is ACKed.  STATUS_REQ is answered by a STATUS frame
(a snapshot taken when the answer is queued), PING by PONG (up to
``PING_MAX`` bytes).  Frames that fail a CRC check never reach the
dispatcher (:class:`fpga.frame_rx.FrameReceiver`); each failure sets a
pending ERROR (BAD_FRAME) that the transmitter sends once (several
failures before it gets to send it give one ERROR).

While the accelerator is in an error state or done, the FIFOs drain into
nothing (records are dropped), so every frame is still ACKed and the ACK's
status byte tells the host the error code.

Transmitter priorities when idle: the response (at most one is pending;
the dispatcher waits for the slot), then a pending ERROR, then a RESULT
frame with all result records waiting in the result FIFO (at most
``max_results_per_frame``), so frames get longer when the UART is the
bottleneck.  The CRCs are computed as the bytes leave.

Latency: a device-bound frame's first payload byte reaches the dispatcher
2 cycles after its last CRC byte left the UART receiver's FIFO (see
:mod:`fpga.frame_rx`); a record enters its FIFO 1 cycle after its last
byte; the ACK is queued 1 cycle after the frame's last record entered its
FIFO and the transmitter starts it the cycle after (when idle).  Registered:
``tx`` (UartTx), the response and ERROR slots, the status snapshot, the
control registers; the FIFOs are ``SyncFIFOBuffered`` (block-RAM friendly).
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, ResetInserter, Signal, Value
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from fpga.board_protocol import (PING_MAX, BoardFormat, LinkErrorCode, config_hash_int,
                                 status_fields)
from fpga.frame_rx import FrameReceiver, crc8_update, crc16_update
from fpga.framing import MAX_PAYLOAD, SYNC, FrameType
from fpga.uart import UartRx, UartTx, uart_divisor

__all__ = ["SaloBoard"]

#: device-bound record frames -> index of their FIFO
_RECORD_TYPES = (FrameType.INSTR, FrameType.MASK, FrameType.ROWS)


def _fit(v, nbytes: int) -> Value:
    """``v`` zero-extended (or truncated) to ``nbytes`` bytes."""
    v = Value.cast(v)
    n = 8 * nbytes
    if len(v) >= n:
        return v[:n]
    return Cat(v, Const(0, n - len(v)))


class SaloBoard(wiring.Component):
    """The accelerator behind the serial link; see the module docstring.

    Parameters: ``cfg`` (the accelerator), ``clk_freq`` and ``baud`` (the
    UART divisor ``round(clk_freq / baud)``, >= 4; small values make fast
    simulations), the depths of the instruction and mask FIFOs (the host
    sends at most that many records of each kind per chunk, see
    ``docs/host-link.md``; they are reported in STATUS), of the row FIFO,
    of the result FIFO, ``max_payload`` of the frame receiver and
    ``max_results_per_frame``.

    Ports: ``rx`` (serial in, idle high), ``tx`` (serial out), and for LEDs
    ``busy``, ``done``, ``error`` (the accelerator's error code) and
    ``link_error`` (sticky: a frame failed a CRC check).
    """

    def __init__(self, cfg, *, clk_freq: float, baud: float, instr_fifo_depth: int = 512,
                 mask_fifo_depth: int = 512, rows_fifo_depth: int = 4,
                 result_fifo_depth: int = 16, max_payload: int = MAX_PAYLOAD,
                 max_results_per_frame: int | None = None, rx_fifo_depth: int = 32):
        from hw.top_status import ERROR_BITS
        self.cfg = cfg
        self.fmt = BoardFormat(cfg)
        self.clk_freq, self.baud = clk_freq, baud
        self.divisor = uart_divisor(clk_freq, baud)
        for name, v, lo in (("instr_fifo_depth", instr_fifo_depth, 2),
                            ("mask_fifo_depth", mask_fifo_depth, 2),
                            ("rows_fifo_depth", rows_fifo_depth, 2),
                            ("result_fifo_depth", result_fifo_depth, 2),
                            ("rx_fifo_depth", rx_fifo_depth, 16)):
            if not lo <= v <= 0xFFFF:
                raise ValueError(f"{name} = {v} is invalid: allowed {lo}..65535")
        rb = self.fmt.record_bytes(FrameType.RESULT)
        for ft in _RECORD_TYPES:
            if self.fmt.record_bytes(ft) > max_payload:
                raise ValueError(f"max_payload = {max_payload} is smaller than one "
                                 f"{ft.name} record ({self.fmt.record_bytes(ft)} bytes)")
        if not 1 <= max_payload <= MAX_PAYLOAD:
            raise ValueError(f"max_payload = {max_payload} is invalid: allowed 1..{MAX_PAYLOAD}")
        cap = min(result_fifo_depth, MAX_PAYLOAD // rb)
        if max_results_per_frame is None:
            max_results_per_frame = cap
        if not 1 <= max_results_per_frame <= cap:
            raise ValueError(f"max_results_per_frame = {max_results_per_frame} is invalid: "
                             f"allowed 1..{cap}")
        self.instr_fifo_depth, self.mask_fifo_depth = instr_fifo_depth, mask_fifo_depth
        self.rows_fifo_depth, self.result_fifo_depth = rows_fifo_depth, result_fifo_depth
        self.max_payload, self.rx_fifo_depth = max_payload, rx_fifo_depth
        self.max_results_per_frame = max_results_per_frame
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1),
                          "busy": Out(1), "done": Out(1), "error": Out(ERROR_BITS),
                          "link_error": Out(1)})

    def elaborate(self, platform):
        from hw.top import SaloTop
        from hw.top_status import WATCHDOG_BITS

        m = Module()
        cfg, fmt = self.cfg, self.fmt

        # ------------------------------------------------------ serial side
        m.submodules.uart_rx = urx = UartRx(clk_freq=self.clk_freq, baud=self.baud)
        m.submodules.uart_tx = utx = UartTx(clk_freq=self.clk_freq, baud=self.baud)
        m.submodules.rx_fifo = rxq = fifo.SyncFIFOBuffered(width=8, depth=self.rx_fifo_depth)
        m.submodules.frame_rx = frx = FrameReceiver(self.max_payload)
        wiring.connect(m, urx.o, rxq.w_stream)
        wiring.connect(m, rxq.r_stream, frx.i)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]

        # ------------------------------------------- accelerator and FIFOs
        soft_rst = Signal(name="soft_rst")
        top = SaloTop(cfg)
        m.submodules.top = ResetInserter(soft_rst)(top)
        depths = {FrameType.INSTR: self.instr_fifo_depth, FrameType.MASK: self.mask_fifo_depth,
                  FrameType.ROWS: self.rows_fifo_depth}
        sinks = {FrameType.INSTR: top.instructions, FrameType.MASK: top.masks,
                 FrameType.ROWS: top.rows_in}
        queues = {}
        drop = Signal(name="drop_records")      # accelerator in error or done: drain
        m.d.comb += drop.eq(top.error.as_value().any() | top.done)
        for ft in _RECORD_TYPES:
            q = fifo.SyncFIFOBuffered(width=fmt.record_bits(ft), depth=depths[ft])
            m.submodules[f"{ft.name.lower()}_fifo"] = ResetInserter(soft_rst)(q)
            s = sinks[ft]
            m.d.comb += [s.valid.eq(q.r_rdy & ~drop), s.payload.eq(q.r_data),
                         q.r_en.eq(s.ready | drop)]
            queues[ft] = q
        rb_res = fmt.record_bytes(FrameType.RESULT)
        oq = fifo.SyncFIFOBuffered(width=fmt.record_bits(FrameType.RESULT),
                                   depth=self.result_fifo_depth)
        m.submodules.result_fifo = ResetInserter(soft_rst)(oq)
        m.d.comb += [oq.w_data.eq(top.results.payload.as_value()), oq.w_en.eq(top.results.valid),
                     top.results.ready.eq(oq.w_rdy)]

        head_dim = Signal(cfg.head_dim_width, name="head_dim_reg")
        watchdog = Signal(WATCHDOG_BITS, name="watchdog_reg")
        m.d.comb += [top.head_dim.eq(head_dim), top.watchdog_limit.eq(watchdog),
                     self.busy.eq(top.busy), self.done.eq(top.done),
                     self.error.eq(top.error.as_value())]

        # ------------------------------------------------------ link state
        frames_ok = Signal(16, name="frames_ok")
        frames_bad = Signal(16, name="frames_bad")
        results_sent = Signal(32, name="results_sent")
        nak_pend = Signal(name="nak_pending")
        with m.If(frx.bad_frame):
            m.d.sync += [frames_bad.eq(frames_bad + 1), self.link_error.eq(1)]

        fields = status_fields(cfg)
        msg_bytes = max(sum(n for _, n in fields), PING_MAX, 2)
        msg = Signal(8 * msg_bytes, name="msg")            # the pending response's payload
        resp_pend = Signal(name="resp_pending")
        resp_type = Signal(8, name="resp_type")
        resp_len = Signal(range(msg_bytes + 1), name="resp_len")
        status_vals = {"busy": top.busy, "done": top.done, "error": top.error.as_value(),
                       "config_hash": Const(config_hash_int(cfg), 48),
                       "frames_ok": frames_ok, "frames_bad": frames_bad,
                       "instr_fifo_depth": Const(self.instr_fifo_depth, 16),
                       "mask_fifo_depth": Const(self.mask_fifo_depth, 16),
                       "max_payload": Const(self.max_payload, 16),
                       "results_sent": results_sent}
        status_bits = Cat(*(_fit(status_vals[n] if n in status_vals else getattr(top, n), nb)
                            for n, nb in fields))
        status_len = sum(n for _, n in fields)

        # ------------------------------------------------------ dispatcher
        beat = frx.o
        bdata, btype = beat.payload.data, beat.payload.type
        blast, bempty = beat.payload.last, beat.payload.empty
        max_rb = max(fmt.record_bytes(ft) for ft in _RECORD_TYPES)
        asm = Signal(8 * max_rb, name="record_asm")
        asm_n = Signal(range(max_rb), name="record_bytes_in")
        pend = Signal(name="record_pending")
        pend_dest = Signal(range(len(_RECORD_TYPES)), name="record_dest")
        pend_last = Signal(name="record_last")
        cnt = Signal(range(PING_MAX + 2), name="misc_count")     # saturating byte count
        ping_buf = Signal(8 * PING_MAX, name="ping_buf")
        ctrl_buf = Signal(48, name="ctrl_buf")
        # the request for the response slot
        rq_kind = Signal(2, name="req_kind")      # 0 ACK, 1 ERROR, 2 STATUS, 3 PONG
        rq_a = Signal(8, name="req_a")            # ACK: type; ERROR: code
        rq_b = Signal(8, name="req_b")            # ERROR: type
        rq_len = Signal(range(PING_MAX + 1), name="req_len")
        ACK, ERR, STATUS, PONG = range(4)
        tx_in_result = Signal(name="tx_in_result")

        push_rdy = Signal(name="push_ready")
        for k, ft in enumerate(_RECORD_TYPES):
            q = queues[ft]
            m.d.comb += [q.w_data.eq(asm[:fmt.record_bits(ft)]),
                         q.w_en.eq(pend & (pend_dest == k))]
            with m.If(pend_dest == k):
                m.d.comb += push_rdy.eq(q.w_rdy)

        def request(kind, a=0, b=0, length=0):
            m.d.sync += [rq_kind.eq(kind), rq_a.eq(a), rq_b.eq(b), rq_len.eq(length)]
            m.next = "RESPOND"

        with m.FSM(name="dispatch") as dispatch:
            with m.State("RUN"):
                with m.If(pend):
                    with m.If(push_rdy):
                        m.d.sync += pend.eq(0)
                        with m.If(pend_last):
                            request(ACK, a=Array(Const(int(ft), 8)
                                                 for ft in _RECORD_TYPES)[pend_dest])
                with m.Else():
                    m.d.comb += beat.ready.eq(1)
                    with m.If(beat.valid):
                        with m.If(blast):
                            m.d.sync += cnt.eq(0)
                        with m.Elif(cnt != PING_MAX + 1):
                            m.d.sync += cnt.eq(cnt + 1)
                        with m.Switch(btype):
                            for k, ft in enumerate(_RECORD_TYPES):
                                rb = fmt.record_bytes(ft)
                                with m.Case(int(ft)):
                                    with m.If(bempty):
                                        request(ACK, a=int(ft))
                                    with m.Else():
                                        m.d.sync += asm.word_select(asm_n, 8).eq(bdata)
                                        with m.If(asm_n == rb - 1):
                                            m.d.sync += [pend.eq(1), pend_dest.eq(k),
                                                         pend_last.eq(blast), asm_n.eq(0)]
                                        with m.Else():
                                            m.d.sync += asm_n.eq(asm_n + 1)
                                            with m.If(blast):
                                                m.d.sync += asm_n.eq(0)
                                                request(ERR, a=LinkErrorCode.BAD_LENGTH,
                                                        b=int(ft))
                            with m.Case(int(FrameType.CONTROL)):
                                with m.If(~bempty & (cnt < 6)):
                                    m.d.sync += ctrl_buf.word_select(cnt[:3], 8).eq(bdata)
                                with m.If(blast):
                                    with m.If(~bempty & (cnt == 5)):
                                        m.next = "CTRL"
                                    with m.Else():
                                        request(ERR, a=LinkErrorCode.BAD_LENGTH,
                                                b=int(FrameType.CONTROL))
                            with m.Case(int(FrameType.STATUS_REQ)):
                                with m.If(blast):
                                    request(STATUS)
                            with m.Case(int(FrameType.PING)):
                                with m.If(~bempty & (cnt < PING_MAX)):
                                    m.d.sync += ping_buf.word_select(
                                        cnt[:max(1, (PING_MAX - 1).bit_length())], 8).eq(bdata)
                                with m.If(blast):
                                    with m.If(bempty):
                                        request(PONG, length=0)
                                    with m.Elif(cnt < PING_MAX):
                                        request(PONG, length=cnt + 1)
                                    with m.Else():
                                        request(ERR, a=LinkErrorCode.BAD_LENGTH,
                                                b=int(FrameType.PING))
                            with m.Default():
                                with m.If(blast):
                                    request(ERR, a=LinkErrorCode.UNKNOWN_TYPE, b=btype)
            with m.State("CTRL"):
                # reset the accelerator and the FIFOs once no RESULT frame is
                # being sent (it reads the result FIFO)
                with m.If(~tx_in_result):
                    m.d.comb += soft_rst.eq(1)
                    m.d.sync += [head_dim.eq(ctrl_buf[:16]), watchdog.eq(ctrl_buf[16:48]),
                                 results_sent.eq(0)]
                    request(ACK, a=int(FrameType.CONTROL))
            with m.State("RESPOND"):
                with m.If(~resp_pend):
                    m.d.sync += resp_pend.eq(1)
                    m.next = "RUN"
                    with m.Switch(rq_kind):
                        with m.Case(ACK):
                            m.d.sync += [resp_type.eq(FrameType.ACK), resp_len.eq(2),
                                         msg[:16].eq(Cat(rq_a, _fit(top.error.as_value(), 1))),
                                         frames_ok.eq(frames_ok + 1)]
                        with m.Case(ERR):
                            m.d.sync += [resp_type.eq(FrameType.ERROR), resp_len.eq(2),
                                         msg[:16].eq(Cat(rq_a, rq_b))]
                        with m.Case(STATUS):
                            m.d.sync += [resp_type.eq(FrameType.STATUS),
                                         resp_len.eq(status_len),
                                         msg[:len(status_bits)].eq(status_bits)]
                        with m.Case(PONG):
                            m.d.sync += [resp_type.eq(FrameType.PONG), resp_len.eq(rq_len),
                                         msg[:8 * PING_MAX].eq(ping_buf)]

        # ----------------------------------------------------- transmitter
        SRC_MSG, SRC_NAK, SRC_RES = range(3)
        src = Signal(2, name="tx_src")
        t_type = Signal(8, name="tx_type")
        t_len = Signal(16, name="tx_len")
        p_cnt = Signal(16, name="tx_payload_count")     # payload bytes sent
        rec_byte = Signal(range(rb_res), name="tx_record_byte")
        n_rec = Signal(range(self.max_results_per_frame + 1), name="tx_records")
        hcrc = Signal(8, name="tx_hcrc")
        fcrc = Signal(16, name="tx_fcrc")
        byte = Signal(8, name="tx_byte")
        res_padded = Cat(oq.r_data, Const(0, 8 * rb_res - fmt.record_bits(FrameType.RESULT)))
        payload_byte = Signal(8, name="tx_payload_byte")
        with m.Switch(src):
            with m.Case(SRC_MSG):
                m.d.comb += payload_byte.eq(msg.word_select(p_cnt[:max(1, (msg_bytes - 1)
                                                                     .bit_length())], 8))
            with m.Case(SRC_NAK):
                m.d.comb += payload_byte.eq(Mux(p_cnt == 0, int(LinkErrorCode.BAD_FRAME), 0))
            with m.Default():
                m.d.comb += payload_byte.eq(res_padded.word_select(rec_byte, 8))
        start_err = Signal(name="tx_start_error")
        with m.If(frx.bad_frame):
            m.d.sync += nak_pend.eq(1)

        with m.FSM(name="tx_frame"):
            with m.State("IDLE"):
                level_n = Mux(oq.level > self.max_results_per_frame,
                              self.max_results_per_frame, oq.level)
                m.d.sync += [hcrc.eq(0), fcrc.eq(0xFFFF), p_cnt.eq(0), rec_byte.eq(0)]
                with m.If(resp_pend):
                    m.d.sync += [src.eq(SRC_MSG), t_type.eq(resp_type), t_len.eq(resp_len)]
                    m.next = "SYNC"
                with m.Elif(nak_pend):
                    m.d.comb += start_err.eq(1)
                    m.d.sync += [src.eq(SRC_NAK), t_type.eq(FrameType.ERROR), t_len.eq(2)]
                    m.next = "SYNC"
                with m.Elif((oq.level != 0) & ~dispatch.ongoing("CTRL")):
                    m.d.sync += [src.eq(SRC_RES), t_type.eq(FrameType.RESULT),
                                 t_len.eq(level_n * rb_res), n_rec.eq(level_n)]
                    m.next = "SYNC"
            states = ("SYNC", "TYPE", "LEN0", "LEN1", "HCRC", "PAYLOAD", "CRC0", "CRC1")
            for k, st in enumerate(states):
                with m.State(st):
                    val = {"SYNC": Const(SYNC, 8), "TYPE": t_type, "LEN0": t_len[:8],
                           "LEN1": t_len[8:], "HCRC": hcrc, "PAYLOAD": payload_byte,
                           "CRC0": fcrc[:8], "CRC1": fcrc[8:]}[st]
                    m.d.comb += byte.eq(val)
                    ok = (oq.r_rdy | (src != SRC_RES)) if st == "PAYLOAD" else 1
                    m.d.comb += [utx.i.payload.eq(byte), utx.i.valid.eq(ok)]
                    m.d.comb += tx_in_result.eq(src == SRC_RES)
                    with m.If(utx.i.valid & utx.i.ready):
                        if st in ("TYPE", "LEN0", "LEN1"):
                            m.d.sync += hcrc.eq(crc8_update(hcrc, byte))
                        if st in ("TYPE", "LEN0", "LEN1", "HCRC", "PAYLOAD"):
                            m.d.sync += fcrc.eq(crc16_update(fcrc, byte))
                        if st == "HCRC":
                            m.next = "PAYLOAD"
                            with m.If(t_len == 0):
                                m.next = "CRC0"
                        elif st == "PAYLOAD":
                            m.d.sync += p_cnt.eq(p_cnt + 1)
                            with m.If(src == SRC_RES):
                                with m.If(rec_byte == rb_res - 1):
                                    m.d.comb += oq.r_en.eq(1)
                                    m.d.sync += rec_byte.eq(0)
                                with m.Else():
                                    m.d.sync += rec_byte.eq(rec_byte + 1)
                            with m.If(p_cnt == t_len - 1):
                                m.next = "CRC0"
                        elif st == "CRC1":
                            m.next = "IDLE"
                            with m.If(src == SRC_MSG):
                                m.d.sync += resp_pend.eq(0)
                            with m.If(src == SRC_RES):
                                m.d.sync += results_sent.eq(results_sent + n_rec)
                        else:
                            m.next = states[k + 1]
        # a CRC failure while an ERROR is being started keeps it pending
        with m.If(start_err & ~frx.bad_frame):
            m.d.sync += nak_pend.eq(0)
        return m
