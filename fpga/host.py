"""Host side of the serial link: frames (:mod:`fpga.framing`) over a UART.

pyserial is optional (not a dependency of salo-gen): it is imported only
when a serial port is opened, with a clear error if it is missing.  Any
object with ``write(bytes)`` and ``read(n) -> bytes`` (honouring a timeout)
can be used instead, e.g. for tests::

    link = HostLink.open("/dev/ttyUSB0", baud=115200)   # ULX3S FTDI port
    link.send(FrameType.PING, b"hello")
    print(link.recv(timeout=1.0))

Running programs on the board (:class:`fpga.board_top.SaloBoard`):
:class:`BoardProtocol` is the host side of ``docs/host-link.md`` written
sans-IO (generators of :class:`Send` / :class:`Recv` actions);
:func:`drive` runs it on a :class:`HostLink`, the cocotb test
``tests/fpga/tb_board_link.py`` on a software UART on the simulated pins,
so both run the same protocol code.  :func:`run_job_on_board` takes a job
of ``sim.rtl_backend.make_job``; ``sim.fpga_backend.run_fpga`` /
``salo run --backend fpga --port DEV`` are built on it.
"""

from __future__ import annotations

import time

from fpga.framing import Frame, FrameDecoder, FrameType, encode_frame

__all__ = ["HostLink", "LinkError", "require_pyserial", "BoardError", "BoardProtocol",
           "Send", "Recv", "drive", "plan_chunks", "run_job_on_board", "results_to_output",
           "compare_outputs"]


class LinkError(RuntimeError):
    """The serial link failed: no pyserial, no port, timeout, unexpected answer."""


def require_pyserial():
    """Import and return the ``serial`` module (pyserial) or raise LinkError."""
    try:
        import serial  # noqa: F401
    except ImportError:
        raise LinkError("talking to a board needs pyserial, which is not installed: "
                        "pip install pyserial") from None
    return serial


class HostLink:
    """Send and receive frames over a byte port (pyserial ``Serial`` or alike)."""

    def __init__(self, port):
        if not (hasattr(port, "write") and hasattr(port, "read")):
            raise TypeError("port needs write(bytes) and read(n) methods")
        self.port = port
        self.decoder = FrameDecoder()
        self._frames: list[Frame] = []

    @classmethod
    def open(cls, device: str, baud: int = 115200, timeout: float = 0.05) -> "HostLink":
        """Open serial ``device`` at ``baud`` 8N1 without flow control."""
        serial = require_pyserial()
        try:
            port = serial.Serial(device, baudrate=baud, bytesize=8, parity="N", stopbits=1,
                                 timeout=timeout, rtscts=False, xonxoff=False)
        except (serial.SerialException, OSError) as e:
            raise LinkError(f"cannot open serial port {device!r}: {e}") from None
        return cls(port)

    def send(self, ftype: int, payload: bytes = b"") -> int:
        """Encode and write one frame; returns the number of bytes written."""
        data = encode_frame(ftype, payload)
        self.port.write(data)
        return len(data)

    def recv(self, timeout: float = 1.0) -> Frame:
        """The next valid frame (corrupted ones are skipped and counted in
        ``self.decoder``); raises LinkError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not self._frames:
            if time.monotonic() > deadline:
                raise LinkError(f"no frame within {timeout} s (decoder dropped "
                                f"{self.decoder.dropped_bytes} bytes, "
                                f"{self.decoder.bad_frames} bad frames)")
            chunk = self.port.read(max(1, getattr(self.port, "in_waiting", 0) or 1))
            if chunk:
                self._frames += self.decoder.feed(chunk)
        return self._frames.pop(0)

    def ping(self, payload: bytes = b"salo", timeout: float = 1.0) -> float:
        """Send PING, wait for PONG with the same payload; returns the round trip in s."""
        t = time.monotonic()
        self.send(FrameType.PING, payload)
        f = self.recv(timeout)
        if f.type != FrameType.PONG or f.payload != bytes(payload):
            raise LinkError(f"PING answered with type 0x{f.type:02x}, {len(f.payload)} bytes")
        return time.monotonic() - t

    def close(self):
        close = getattr(self.port, "close", None)
        if close:
            close()


# ===================================================================== board
# The host side of the board protocol (``docs/host-link.md``, device:
# fpga.board_top.SaloBoard) written sans-IO: the protocol is a generator
# that yields Send / Recv actions and gets back None / a Frame (or None on
# timeout).  drive() runs it on a HostLink (a serial port); the cocotb test
# (tests/fpga/tb_board_link.py) runs the very same generator on a software
# UART on the simulated pins.

class Send:
    """Action: put ``data`` (one encoded frame) on the wire."""
    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = bytes(data)


class Recv:
    """Action: the next valid frame, or None when none arrived within
    ``timeout_bytes`` byte times of the link (10 bit times each)."""
    __slots__ = ("timeout_bytes",)

    def __init__(self, timeout_bytes: float):
        self.timeout_bytes = float(timeout_bytes)


class BoardError(LinkError):
    """The accelerator on the board reported an error (code in ``.error``)."""

    def __init__(self, msg, error: str = "", status: dict | None = None):
        super().__init__(msg)
        self.error, self.status = error, status


def plan_chunks(job, fmt, instr_cap: int, mask_cap: int):
    """Split the job's streams into program-order chunks that cannot deadlock
    the stop-and-wait link (``docs/host-link.md``, "Order of frames"): each
    chunk has at most ``instr_cap`` instructions and ``mask_cap`` mask
    records, and brings the Q/K/V rows its loads consume.  Returns
    [(words, masks, rows)] as index ranges (start, stop) into the job's
    lists.  The per-instruction consumption is the ISA's (``docs/top.md``);
    the totals are checked against the job (built by
    ``sim.rtl_backend.make_job``)."""
    from hw.isa import Opcode, decode
    cfg = job.cfg
    prog = decode(job.words, cfg)
    ops = prog.opcode.tolist()
    cnt = prog.field("count").tolist()
    per_rkv = 2 * cfg.rows * cfg.random_cols
    if instr_cap < 1 or mask_cap < 1:
        raise ValueError("chunk capacities must be >= 1")
    chunks = []
    w0 = m0 = r0 = 0
    wi = mi = ri = 0
    for o, c in zip(ops, cnt):
        rows = {Opcode.LOAD_Q.value: c, Opcode.LOAD_KV.value: 2 * c, Opcode.LOAD_GQ.value: 1,
                Opcode.LOAD_GKV.value: 2, Opcode.LOAD_RKV.value: per_rkv}.get(o, 0)
        masks = 1 if o == Opcode.PASS.value else 0
        if wi + 1 - w0 > instr_cap or mi + masks - m0 > mask_cap:
            chunks.append(((w0, wi), (m0, mi), (r0, ri)))
            w0, m0, r0 = wi, mi, ri
        wi, mi, ri = wi + 1, mi + masks, ri + rows
    chunks.append(((w0, wi), (m0, mi), (r0, ri)))
    if mi != len(job.masks) or ri != len(job.rows):
        raise LinkError(f"the program consumes {mi} mask records and {ri} rows, the job "
                        f"has {len(job.masks)} and {len(job.rows)}")
    return chunks


class BoardProtocol:
    """Host side of the board protocol as generators of :class:`Send` /
    :class:`Recv` actions (run them with :func:`drive` or a testbench).

    Reliability: every INSTR/MASK/ROWS/CONTROL frame waits for its ACK.  On
    an ERROR frame or a timeout the host asks STATUS (repeated until one
    arrives) and compares the board's ``frames_ok`` counter with its own:
    unchanged -> the frame was lost, send it again; one more -> only the ACK
    was lost.  So a frame is never applied twice.

    ``ack_timeout``/``status_timeout``: byte times without a frame before
    the host suspects a loss.  ``on_send``: optional hook (frame index,
    bytes) -> bytes, used by the tests to corrupt frames on the way out.
    """

    def __init__(self, fmt, *, ack_timeout: float = 3 * 4096, status_timeout: float = 2000,
                 max_retries: int = 8, result_timeout: float = 20000, log=None):
        self.fmt = fmt
        self.ack_timeout, self.status_timeout = ack_timeout, status_timeout
        self.result_timeout = result_timeout
        self.max_retries = max_retries
        self.log = log or (lambda line: None)
        self.frames_ok = None
        self.results: list[int] = []
        self.stats = {"frames_sent": 0, "bytes_sent": 0, "frames_received": 0,
                      "bytes_received": 0, "retries": 0, "errors_received": 0,
                      "timeouts": 0, "acks_lost": 0}

    # ---------------------------------------------------------- basics
    def _send(self, ftype, payload=b""):
        data = encode_frame(ftype, payload)
        self.stats["frames_sent"] += 1
        self.stats["bytes_sent"] += len(data)
        yield Send(data)

    def _recv(self, timeout):
        f = yield Recv(timeout)
        if f is None:
            self.stats["timeouts"] += 1
            return None
        self.stats["frames_received"] += 1
        self.stats["bytes_received"] += len(f.payload) + 7
        if f.type == FrameType.RESULT:
            from fpga.framing import unpack_records
            self.results += unpack_records(f.payload, self.fmt.record_bits(FrameType.RESULT))
        elif f.type == FrameType.ERROR:
            self.stats["errors_received"] += 1
        return f

    def status(self):
        """STATUS_REQ until a STATUS frame arrives -> decoded dict."""
        for _ in range(self.max_retries + 1):
            yield from self._send(FrameType.STATUS_REQ)
            while True:
                f = yield from self._recv(self.status_timeout)
                if f is None:
                    break
                if f.type == FrameType.STATUS:
                    return self.fmt.decode_status(f.payload)
        raise LinkError(f"no STATUS after {self.max_retries + 1} requests")

    def ping(self, payload: bytes = b"salo"):
        for _ in range(self.max_retries + 1):
            yield from self._send(FrameType.PING, payload)
            while True:
                f = yield from self._recv(self.status_timeout)
                if f is None:
                    break
                if f.type == FrameType.PONG:
                    if f.payload != bytes(payload):
                        raise LinkError(f"PONG payload {f.payload.hex()} != {payload.hex()}")
                    return True
        raise LinkError("no PONG")

    def sync(self):
        """Read the board's frame counter (start of a session)."""
        st = yield from self.status()
        self.frames_ok = st["frames_ok"]
        return st

    def send_acked(self, ftype, payload=b""):
        """Send a state-changing frame exactly once; returns the ACK status byte."""
        if self.frames_ok is None:
            yield from self.sync()
        ftype = FrameType(ftype)
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.stats["retries"] += 1
                self.log(f"resending {ftype.name} frame ({len(payload)} bytes), attempt "
                         f"{attempt + 1}")
            yield from self._send(ftype, payload)
            while True:
                f = yield from self._recv(self.ack_timeout)
                if f is None or f.type == FrameType.ERROR:
                    if f is not None and f.payload[:1] != bytes([1]):   # not BAD_FRAME
                        from fpga.board_protocol import LinkErrorCode
                        code = f.payload[0] if f.payload else -1
                        try:
                            code = LinkErrorCode(code).name
                        except ValueError:
                            pass
                        raise LinkError(f"board rejected a {ftype.name} frame: ERROR {code} "
                                        f"(type 0x{f.payload[1] if len(f.payload) > 1 else 0:02x})")
                    break
                if f.type == FrameType.ACK and f.payload[:1] == bytes([int(ftype)]):
                    self.frames_ok = (self.frames_ok + 1) & 0xFFFF
                    return f.payload[1] if len(f.payload) > 1 else 0
            st = yield from self.status()
            if st["frames_ok"] == (self.frames_ok + 1) & 0xFFFF:
                self.stats["acks_lost"] += 1
                self.frames_ok = st["frames_ok"]
                return st["error"]
            if st["frames_ok"] != self.frames_ok:
                raise LinkError(f"board accepted {st['frames_ok']} frames, host counted "
                                f"{self.frames_ok}: out of sync")
        raise LinkError(f"{ftype.name} frame not accepted after {self.max_retries + 1} tries")

    def _send_records(self, ftype, values):
        """Records in frames of at most max_payload bytes."""
        from fpga.framing import pack_records
        bits = self.fmt.record_bits(ftype)
        per = max(1, self.max_payload // self.fmt.record_bytes(ftype))
        worst = 0
        for k in range(0, len(values), per):
            st = yield from self.send_acked(ftype, pack_records(values[k:k + per], bits))
            worst = worst or st
        return worst

    # --------------------------------------------------------- a program
    def run_job(self, job):
        """Run one :class:`sim.rtl_backend.Job` (all heads) on the board ->
        :class:`sim.rtl_backend.RtlResult` (outputs in token order, counters)."""
        from fpga.board_protocol import config_hash_int
        from hw.top_status import ErrorCode
        from sim.rtl_backend import RtlResult
        cfg = job.cfg
        st = yield from self.sync()
        if st["config_hash"] != config_hash_int(cfg):
            raise LinkError(f"the board runs config {st['config_hash']:012x}, the program is "
                            f"for {cfg.hash()}: build the board for this config")
        self.max_payload = st["max_payload"]
        ib = self.fmt.record_bytes(FrameType.INSTR)
        mb = self.fmt.record_bytes(FrameType.MASK)
        icap = min(st["instr_fifo_depth"], self.max_payload // ib)
        mcap = min(st["mask_fifo_depth"], self.max_payload // mb)
        if not 1 <= job.d <= cfg.max_head_dim:
            raise LinkError(f"head_dim {job.d} is invalid for this board: allowed "
                            f"1..{cfg.max_head_dim}")
        from hw.top_status import WATCHDOG_BITS
        if not 0 <= job.watchdog < 1 << WATCHDOG_BITS:
            raise LinkError(f"watchdog {job.watchdog} does not fit {WATCHDOG_BITS} bits")
        self.results = []
        yield from self.send_acked(FrameType.CONTROL,
                                   self.fmt.encode_control(job.d, job.watchdog))
        chunks = plan_chunks(job, self.fmt, icap, mcap)
        self.log(f"sending {len(job.words)} instructions, {len(job.masks)} mask records, "
                 f"{len(job.rows)} rows in {len(chunks)} chunk(s)")
        dw = cfg.data_width
        row_vals = [sum((int(x) & ((1 << dw) - 1)) << (i * dw) for i, x in enumerate(r))
                    for r in job.rows]
        bad = 0
        for k, ((w0, w1), (m0, m1), (r0, r1)) in enumerate(chunks):
            for ft, vals in ((FrameType.INSTR, job.words[w0:w1]),
                             (FrameType.MASK, job.masks[m0:m1]),
                             (FrameType.ROWS, row_vals[r0:r1])):
                if vals:
                    bad = (yield from self._send_records(ft, vals)) or bad
            if bad:
                break
            self.log(f"chunk {k + 1}/{len(chunks)} sent, {len(self.results)} results in")
        n_out = len(job.out_order)
        idle = 0
        while not bad and len(self.results) < n_out:
            before = len(self.results)
            f = yield from self._recv(self.result_timeout)
            if f is None or len(self.results) == before:
                st = yield from self.status()
                if st["error"]:
                    break
                idle += 1
                if idle > self.max_retries:
                    raise LinkError(f"results stopped at {len(self.results)} of {n_out} "
                                    f"(board: {st})")
            else:
                idle = 0
        for _ in range(self.max_retries + 1):
            st = yield from self.status()
            if st["done"] or st["error"]:
                break
        err = ErrorCode(st["error"]).name
        counters = {name: st[name] for name in _counter_names()}
        if st["error"] or not st["done"]:
            raise BoardError(f"the accelerator ended with error {err} (done={st['done']}) "
                             f"after {counters['cycles_total']} cycles, {len(self.results)} of "
                             f"{n_out} results", error=err, status=st)
        if len(self.results) != n_out:
            raise LinkError(f"got {len(self.results)} results, expected {n_out}")
        out = results_to_output(job, self.fmt, self.results)
        return RtlResult(job.name, out, counters, err, bool(st["done"]),
                         counters["cycles_total"], {"status": st, "link": dict(self.stats)})


def _counter_names():
    from hw.top_status import COUNTERS
    return list(COUNTERS)


def results_to_output(job, fmt, records):
    """Result records in emission order -> (heads, N, d) int64 outputs in token
    order (the final write of each position, as ``sim.rtl_backend.run_jobs``);
    raises LinkError when a record's (head, pos) is not the program's."""
    import numpy as np
    H = int(job.out_order[:, 0].max()) + 1 if len(job.out_order) else 0
    if job.expected is not None:
        H = job.expected.shape[0]
    N = len(job.perm)
    out = np.zeros((H, N, job.d), dtype=np.int64)
    for k, (rec, o) in enumerate(zip(records, job.out_order)):
        head, pos, row = fmt.decode_result(rec)
        h, p, tile, r, final = (int(x) for x in o)
        if (head, pos) != (h, p):
            raise LinkError(f"result #{k}: (head, pos) = ({head}, {pos}), expected ({h}, {p})")
        if any(row[job.d:]):
            raise LinkError(f"result #{k} (head {h}, pos {p}): elements >= d not zero")
        if final:
            out[h, job.perm[p]] = row[:job.d]
    return out


def compare_outputs(got, expected, max_listed: int = 10) -> list[str]:
    """Mismatches of two (heads, N, d) integer arrays in token order, naming
    head, row (token) and element; empty when bit-exact."""
    import numpy as np
    got, expected = np.asarray(got), np.asarray(expected)
    if got.shape != expected.shape:
        return [f"shape {got.shape} != expected {expected.shape}"]
    bad = np.argwhere(got != expected)
    msgs = [f"head {h} row {n} element {x}: expected {int(expected[h, n, x])}, "
            f"got {int(got[h, n, x])}" for h, n, x in bad[:max_listed]]
    if len(bad) > max_listed:
        msgs.append(f"... {len(bad) - max_listed} more mismatches")
    return msgs


def drive(gen, link: HostLink, *, baud: float = 115200, latency_s: float = 0.25):
    """Run a protocol generator on a :class:`HostLink`; returns its result.
    A Recv timeout of T byte times waits ``T * 10 / baud + latency_s`` s."""
    reply = None
    while True:
        try:
            action = gen.send(reply)
        except StopIteration as stop:
            return stop.value
        reply = None
        if isinstance(action, Send):
            link.port.write(action.data)
        elif isinstance(action, Recv):
            try:
                reply = link.recv(timeout=action.timeout_bytes * 10 / baud + latency_s)
            except LinkError:
                reply = None
        else:
            raise TypeError(f"unknown protocol action {action!r}")


def run_job_on_board(job, link: HostLink, *, baud: float = 115200, log=None):
    """Run a job (``sim.rtl_backend.make_job``) over ``link`` on a board
    built with :func:`fpga.boards.ulx3s.build_salo` for ``job.cfg``."""
    from fpga.board_protocol import BoardFormat
    proto = BoardProtocol(BoardFormat(job.cfg), log=log)
    return drive(proto.run_job(job), link, baud=baud)
