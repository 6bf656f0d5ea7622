"""The board top (:class:`fpga.board_top.SaloBoard`: UART + frames +
``SaloTop``) driven through its serial pins by the host protocol of
``fpga/host.py`` (the code ``salo run --backend fpga`` runs), in Verilator
(``tests/fpga/tb_board_link.py``); plus the payload formats, the chunk plan,
the ULX3S top's pins and the CLI/API errors."""

from __future__ import annotations

import dataclasses
import json
import re
import time

import numpy as np
import pytest

from fpga.board_protocol import BoardFormat, config_hash_int, status_fields
from fpga.framing import FrameType
from hw.config import PRESETS
from tests.hw.test_top import scenario

#: reduced ``small`` (d <= 8, short sequences, small buffers)
CFG = dataclasses.replace(PRESETS["small"], max_head_dim=8, max_seq_len=64,
                          kv_buffer_rows=16, out_buffer_rows=8)
#: the same with a 2x2 array (+ 1 global row and column): the default run's
#: board, about half the Verilator build time of the 4x4 one
CFG_2X2 = dataclasses.replace(CFG, rows=2, cols=2)
#: 8 clock cycles per bit
CLK, BAUD = 8e6, 1e6
#: small FIFOs: the program goes in many chunks (exercises the chunk plan)
BOARD = {"instr_fifo_depth": 8, "mask_fifo_depth": 4, "max_payload": 256}
PATTERN = {"name": "board", "seq_len": 32, "head_dim": 8, "heads": 1,
           "window": {"left": 4, "right": 4}, "global_tokens": [3]}


def _job(cfg=CFG, pat=PATTERN, seed=0):
    job, _, exp = scenario(cfg, "board", pat, seed=seed, watchdog=0)
    return job, exp


@pytest.mark.parametrize("cfg", [CFG_2X2, pytest.param(CFG, marks=pytest.mark.slow)],
                         ids=["2x2", "4x4"])
def test_board_runs_program_over_uart(rtl, tmp_path, cfg):
    """A compiled program through the serial pins, bit-exact against the
    functional simulator; three sent frames (INSTR, ROWS, MASK) are
    corrupted (the board drops them, answers ERROR, the host resends: a
    corrupted frame reaching the accelerator would change the outputs or
    the stream lengths) and one ACK is lost (the host learns from STATUS
    that the frame was applied and does not resend it)."""
    from fpga.board_top import SaloBoard
    job, exp = _job(cfg)
    jf = tmp_path / "job.npz"
    np.savez(jf, words=np.array(job.words, dtype=np.uint64),
             masks=np.array([f"{m:x}" for m in job.masks]).astype(str), rows=job.rows,
             out_order=job.out_order, expected=job.expected, perm=job.perm, d=job.d,
             n_passes=job.n_passes, watchdog=job.watchdog)
    rf = tmp_path / "result.npz"
    t0 = time.monotonic()
    bdir = rtl(lambda: SaloBoard(cfg, clk_freq=CLK, baud=BAUD, **BOARD), name="salo_board",
               key={"config": cfg.to_dict(), "clk": CLK, "baud": BAUD, **BOARD},
               test_module="tests.fpga.tb_board_link", top_only=True,
               params={"config": cfg.to_dict(), "clk_freq": CLK, "baud": BAUD,
                       "job": str(jf), "result": str(rf), "corrupt_tx": [2, 6, 11],
                       "drop_acks": [4], "ack_timeout": 600})
    wall = time.monotonic() - t0
    r = np.load(rf, allow_pickle=False)
    meta = json.loads(str(r["meta"]))
    assert np.array_equal(r["out"], exp)
    assert meta["error"] == "NONE" and meta["done"]
    faults = meta["faults"]
    assert faults["corrupted"] == 3 and faults["acks_dropped"] == 1
    assert {"INSTR", "ROWS", "MASK"} <= set(faults["corrupted_types"]), faults
    link = meta["link"]
    assert link["retries"] == 3 and link["acks_lost"] == 1
    assert meta["status"]["frames_bad"] >= 3
    assert meta["status"]["results_sent"] == len(job.out_order)
    bt = (bdir / "build_time.txt").read_text().strip() if (bdir / "build_time.txt").exists() \
        else "?"
    print(f"\nboard link: {meta['cycles']} cycles on the link, accelerator "
          f"{meta['counters']['cycles_total']} cycles, {meta['counters']['passes']} passes "
          f"(stalled on input {meta['counters']['cycles_stall_in']}, on output "
          f"{meta['counters']['cycles_stall_out']}); corrupted {faults['corrupted_types']}; "
          f"host sent {link['bytes_sent']} bytes / {link['frames_sent']} frames, received "
          f"{link['bytes_received']} bytes / {link['frames_received']} frames; "
          f"Verilator build (when it was built) {bt} s; wall {wall:.1f} s")


def test_status_format_roundtrip():
    fmt = BoardFormat(CFG)
    names = [n for n, _ in status_fields(CFG)]
    assert names[:3] == ["busy", "done", "error"]
    vals = {n: (i * 7919) % 250 for i, n in enumerate(names)}
    vals["config_hash"] = config_hash_int(CFG)
    assert fmt.decode_status(fmt.encode_status(vals)) == vals
    assert fmt.decode_control(fmt.encode_control(8, 1234)) == {"head_dim": 8,
                                                               "watchdog_limit": 1234}
    # record widths come from the layouts
    from hw.isa import instruction_layout
    from hw.top_status import result_layout
    assert fmt.record_bits(FrameType.INSTR) == instruction_layout(CFG).size
    assert fmt.record_bits(FrameType.RESULT) == result_layout(CFG).size


def test_result_decode_matches_layout():
    from amaranth.hdl import Const
    from hw.top_status import result_layout
    fmt = BoardFormat(CFG)
    lay = result_layout(CFG)
    row = [(-1) ** i * (i * 37) for i in range(CFG.max_head_dim)]
    v = Const.cast(lay.const({"data": row, "pos": 17, "head": 3})).value
    assert fmt.decode_result(v) == (3, 17, row)


@pytest.mark.parametrize("icap,mcap", [(1, 1), (3, 2), (8, 4), (1000, 1000)])
def test_chunk_plan(icap, mcap):
    """Chunks cover the streams in order, respect the caps, and each
    chunk's rows are the ones its loads consume."""
    from fpga.host import plan_chunks
    job, _ = _job()
    ch = plan_chunks(job, BoardFormat(CFG), icap, mcap)
    ends = [(0, 0, 0)]
    for (w0, w1), (m0, m1), (r0, r1) in ch:
        assert (w0, m0, r0) == ends[-1]
        assert 0 < w1 - w0 <= icap and m1 - m0 <= mcap
        ends.append((w1, m1, r1))
    assert ends[-1] == (len(job.words), len(job.masks), len(job.rows))


def test_salo_board_top_ports_match_the_lpf():
    from fpga.boards.ulx3s import LPF, Ulx3sSalo
    sites = dict(re.findall(r'LOCATE COMP "([^"]+)" SITE "([A-Z0-9]+)";', LPF.read_text()))
    lpf_ports = {re.sub(r"\[\d+\]$", "", n) for n in sites}
    top = Ulx3sSalo(CFG)
    top._MustUse__silence = True      # only its ports are looked at here
    ports = {name for name, _ in top.signature.members.items()}
    assert ports == lpf_ports, (ports, lpf_ports)
    assert len(top.led) == 8 and top.signature.members["ftdi_txd"].flow.name == "In"


def test_run_attention_fpga_needs_a_port():
    from fpga.host import LinkError
    from sim.api import run_attention
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal((1, 32, 8)) for _ in range(3))
    with pytest.raises(ValueError, match="port"):
        run_attention(q, k, v, PATTERN, config=CFG, backend="fpga")
    with pytest.raises(LinkError, match="pyserial|cannot open"):
        run_attention(q, k, v, PATTERN, config=CFG, backend="fpga", port="/dev/nonexistent-tty")


def test_cli_fpga_backend_errors(capsys):
    from sim.cli import main
    assert main(["run", "examples/longformer-base.json", "--seq-len", "32", "--head-dim", "8",
                 "--heads", "1", "--backend", "fpga"]) == 2
    err = capsys.readouterr().err
    assert "--port" in err
    assert main(["run", "examples/longformer-base.json", "--seq-len", "32", "--head-dim", "8",
                 "--heads", "1", "--backend", "fpga", "--port", "/dev/nonexistent-tty"]) == 2
    err = capsys.readouterr().err
    assert "pyserial" in err or "cannot open" in err


@pytest.mark.slow
def test_salo_bitstream_builds(tmp_path):
    """Synthesis, P&R and ecppack of the ULX3S top with the default board
    config (minutes)."""
    from fpga.boards.ulx3s import build_salo
    rep = build_salo(tmp_path / "o")
    assert (tmp_path / "o" / "ulx3s_salo.bit").is_file()
    assert rep["fmax"]["clk_25mhz"]["achieved_mhz"] > 25.0


class FakeBoard:
    """A byte port standing in for the board (no hardware): it answers the
    protocol of docs/host-link.md and, once all rows are in, sends the given
    result records.  Checks the host side's plumbing (``fpga.host.drive``,
    ``sim.fpga_backend.run_fpga``, ``run_attention(backend="fpga")``); the
    real board logic is tested in Verilator above."""

    def __init__(self, cfg, results, n_rows, fifo=(8, 4), max_payload=256):
        from fpga.framing import FrameDecoder
        self.cfg, self.fmt = cfg, BoardFormat(cfg)
        self.results, self.n_rows = results, n_rows
        self.fifo, self.max_payload = fifo, max_payload
        self.dec = FrameDecoder()
        self.out = bytearray()
        self.frames_ok, self.rows_in, self.sent = 0, 0, 0
        self.log = []

    def _status(self):
        from hw.top_status import COUNTERS
        done = int(self.sent == len(self.results) and self.rows_in == self.n_rows)
        vals = {n: 0 for n in COUNTERS}
        vals.update(busy=1 - done, done=done, error=0, cycles_total=1000, useful_macs=100,
                    passes=5, config_hash=config_hash_int(self.cfg), frames_ok=self.frames_ok,
                    frames_bad=0, instr_fifo_depth=self.fifo[0], mask_fifo_depth=self.fifo[1],
                    max_payload=self.max_payload, results_sent=self.sent)
        return self.fmt.encode_status(vals)

    def write(self, data):
        from fpga.framing import encode_frame, pack_records
        for f in self.dec.feed(bytes(data)):
            self.log.append(FrameType(f.type).name)
            if f.type == FrameType.STATUS_REQ:
                self.out += encode_frame(FrameType.STATUS, self._status())
                continue
            assert f.type in (FrameType.CONTROL, FrameType.INSTR, FrameType.MASK,
                              FrameType.ROWS), f.type
            assert len(f.payload) <= self.max_payload
            if f.type == FrameType.CONTROL:
                self.rows_in = self.sent = 0
            if f.type == FrameType.ROWS:
                self.rows_in += len(f.payload) // self.fmt.record_bytes(FrameType.ROWS)
            self.frames_ok += 1
            self.out += encode_frame(FrameType.ACK, bytes([f.type, 0]))
            if self.rows_in == self.n_rows and self.sent < len(self.results):
                bits = self.fmt.record_bits(FrameType.RESULT)
                for k in range(self.sent, len(self.results), 5):
                    self.out += encode_frame(FrameType.RESULT,
                                             pack_records(self.results[k:k + 5], bits))
                self.sent = len(self.results)

    def read(self, n):
        chunk = bytes(self.out[:n])
        del self.out[:n]
        return chunk


def _fake_board_for(job, exp):
    from amaranth.hdl import Const
    from hw.top_status import result_layout
    lay = result_layout(CFG)
    recs = []
    for h, p, *_ in job.out_order:
        row = list(exp[h, job.perm[p]]) + [0] * (CFG.max_head_dim - job.d)
        recs.append(Const.cast(lay.const({"data": [int(x) for x in row], "pos": int(p),
                                          "head": int(h)})).value)
    return FakeBoard(CFG, recs, len(job.rows))


def test_host_driver_on_a_fake_board():
    """``run_attention(backend="fpga")`` through ``drive`` and a HostLink on
    a byte port: the outputs come back in token order with the board's
    counters, and the frames go in chunk order (CONTROL, INSTR, MASK, ROWS...)."""
    from fpga.host import HostLink
    from sim.api import run_attention
    job, exp = _job()
    board = _fake_board_for(job, exp)
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 32, 8)) for _ in range(3))
    res = run_attention(q, k, v, PATTERN, config=CFG, backend="fpga", link=HostLink(board))
    assert np.array_equal(res.out_int, exp)
    assert res.counters["cycles_total"] == 1000 and res.counters["utilization"] > 0
    sent = [t for t in board.log if t != "STATUS_REQ"]
    assert sent[:4] == ["CONTROL", "INSTR", "MASK", "ROWS"]
