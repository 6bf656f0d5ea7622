"""cocotb testbench of :class:`fpga.board_top.SaloBoard` through its serial pins.

A software UART drives ``rx`` and samples ``tx``; on top of it runs the
host protocol of :class:`fpga.host.BoardProtocol` -- the same generator
``salo run --backend fpga`` runs on a serial port (:func:`fpga.host.drive`);
here :func:`drive_sim` executes its Send/Recv actions on the simulated pins.

Parameters (``tb_params()``): ``config``, ``clk_freq``, ``baud``, ``job``
(an ``.npz`` with the streams of ``sim.rtl_backend.make_job`` and the
functional simulator's outputs), ``result`` (``.npz`` written here),
``corrupt_tx`` (indices of sent frames to corrupt: a payload bit flip,
or a CRC bit flip for empty frames), ``drop_acks`` (indices of ACK frames
the host never sees: a lost answer), ``ack_timeout`` (byte times).

The test: PING/PONG, an unknown frame type (ERROR UNKNOWN_TYPE), payloads
of a wrong length (ERROR BAD_LENGTH), then the program (with the faults
above), whose outputs are compared bit for bit with the functional
simulator (mismatches name head, row, element); then a run with head_dim 1
(the accelerator's BAD_HEAD_DIM reaches the host as BoardError) and the
program once more (CONTROL's reset recovers; ``rerun``, default true).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

import cocotb
from cocotb.triggers import Timer
from cocotb.utils import get_sim_time

from fpga.board_protocol import BoardFormat, LinkErrorCode
from fpga.framing import FrameDecoder, FrameType, encode_frame
from fpga.host import BoardError, BoardProtocol, Recv, Send, compare_outputs
from hw.config import AcceleratorConfig
from sim.rtl_backend import Job
from sim.runner import tb_params
from tests.fpga.soft_uart import SoftUart, start_serial_dut


class SimPort(SoftUart):
    """The software UART with a frame decoder on the received bytes."""

    def __init__(self, dut, baud: float):
        super().__init__(dut, baud)
        self.decoder = FrameDecoder()
        self.frames = []
        self.rx_bytes = 0

    def on_byte(self, b: int):
        self.rx_bytes += 1
        self.frames += self.decoder.feed(bytes([b]))

    async def read_frame(self, timeout_bytes: float):
        byte_ps = 10 * self.bit_ps
        deadline = get_sim_time(unit="ps") + timeout_bytes * byte_ps
        while not self.frames:
            if get_sim_time(unit="ps") >= deadline:
                return None
            await Timer(byte_ps, unit="ps")
        return self.frames.pop(0)


async def drive_sim(gen, port: SimPort, *, corrupt_tx=(), drop_acks=(), log=None):
    """Run a protocol generator (fpga.host) on the simulated pins; faults:
    frames to corrupt on the way out, ACKs to lose on the way in."""
    counts = {"sent": 0, "acks": 0, "corrupted": 0, "acks_dropped": 0, "corrupted_types": []}
    reply = None
    while True:
        try:
            action = gen.send(reply)
        except StopIteration as stop:
            return stop.value, counts
        reply = None
        if isinstance(action, Send):
            data = bytearray(action.data)
            if counts["sent"] in corrupt_tx:
                # flip a payload bit (frame CRC fails), or the CRC itself
                i = 5 if len(data) > 7 else len(data) - 1
                data[i] ^= 0x10
                counts["corrupted"] += 1
                counts["corrupted_types"].append(FrameType(data[1]).name)
                if log:
                    log(f"corrupting sent frame #{counts['sent']} (type 0x{data[1]:02x}) "
                        f"at byte {i}")
            counts["sent"] += 1
            await port.write(bytes(data))
        elif isinstance(action, Recv):
            while True:
                reply = await port.read_frame(action.timeout_bytes)
                if reply is not None and reply.type == FrameType.ACK:
                    k = counts["acks"]
                    counts["acks"] += 1
                    if k in drop_acks:
                        counts["acks_dropped"] += 1
                        if log:
                            log(f"losing ACK #{k} (of a 0x{reply.payload[0]:02x} frame)")
                        continue
                break
        else:
            raise TypeError(action)


@cocotb.test()
async def board_runs_program(dut):
    p = tb_params()
    cfg = AcceleratorConfig.from_dict(p["config"])
    fmt = BoardFormat(cfg)
    port = await start_serial_dut(dut, p["clk_freq"], SimPort(dut, p["baud"]))
    period_ps = 1e12 / p["clk_freq"]
    log = dut._log.info

    # link test: PING -> PONG, an unknown type -> ERROR UNKNOWN_TYPE
    proto = BoardProtocol(fmt, ack_timeout=p["ack_timeout"], status_timeout=p["ack_timeout"],
                          result_timeout=4 * p["ack_timeout"], log=log)
    ok, _ = await drive_sim(proto.ping(b"salo-board"), port)
    assert ok
    await port.write(encode_frame(0x10, b"\x01\x02"))
    f = await port.read_frame(200)
    assert f is not None and f.type == FrameType.ERROR, f
    assert f.payload == bytes([LinkErrorCode.UNKNOWN_TYPE, 0x10]), f.payload.hex()
    # payloads of the wrong length: ERROR BAD_LENGTH, nothing applied
    for ftype, payload in ((FrameType.CONTROL, b"\x08\x00\x00\x00\x00"),
                           (FrameType.PING, bytes(range(17)))):
        await port.write(encode_frame(ftype, payload))
        f = await port.read_frame(200)
        assert f is not None and f.type == FrameType.ERROR, f
        assert f.payload == bytes([LinkErrorCode.BAD_LENGTH, ftype]), f.payload.hex()

    z = np.load(p["job"], allow_pickle=False)
    job = Job(name="board", cfg=cfg, d=int(z["d"]), words=[int(w) for w in z["words"]],
              masks=[int(m, 16) for m in z["masks"]], rows=z["rows"],
              out_order=z["out_order"], expected=z["expected"], n_passes=int(z["n_passes"]),
              watchdog=int(z["watchdog"]), perm=z["perm"])

    proto = BoardProtocol(fmt, ack_timeout=p["ack_timeout"], status_timeout=p["ack_timeout"],
                          result_timeout=4 * p["ack_timeout"], log=log)
    t0 = get_sim_time(unit="ps")
    res, faults = await drive_sim(proto.run_job(job), port, corrupt_tx=set(p["corrupt_tx"]),
                                  drop_acks=set(p["drop_acks"]), log=log)
    cycles = int((get_sim_time(unit="ps") - t0) // period_ps)
    # expected outputs back in token order
    exp_tok = np.zeros_like(job.expected)
    exp_tok[:, job.perm] = job.expected
    fails = compare_outputs(res.out, exp_tok)
    st = res.raw["status"]
    meta = {"cycles": cycles, "counters": res.counters, "error": res.error, "done": res.done,
            "link": res.raw["link"], "status": st, "faults": faults, "fails": fails,
            "rx_bytes": port.rx_bytes, "stop_errors": port.stop_errors,
            "bad_frames_host": port.decoder.bad_frames}
    np.savez(p["result"], out=res.out, meta=np.array(json.dumps(meta)))
    log(f"program: {cycles} cycles on the link, accelerator {res.counters['cycles_total']} "
        f"cycles; host sent {proto.stats['bytes_sent']} bytes in {proto.stats['frames_sent']} "
        f"frames, received {proto.stats['bytes_received']} bytes; faults {faults}; "
        f"board frames_ok {st['frames_ok']} frames_bad {st['frames_bad']}")
    assert not fails, "outputs differ from the functional simulator:\n  " + "\n  ".join(fails)
    assert port.stop_errors == 0 and port.decoder.bad_frames == 0

    # an accelerator error reaches the host: head_dim 1 is below the minimum
    proto = BoardProtocol(fmt, ack_timeout=p["ack_timeout"], status_timeout=p["ack_timeout"],
                          result_timeout=4 * p["ack_timeout"], log=log)
    try:
        await drive_sim(proto.run_job(dataclasses.replace(job, d=1)), port)
    except BoardError as e:
        assert e.error == "BAD_HEAD_DIM", e
        log(f"bad head_dim: {e}")
    else:
        raise AssertionError("head_dim 1 did not end in an error")
    if p.get("rerun", True):
        # CONTROL resets the accelerator: the program runs again, bit-exact
        proto = BoardProtocol(fmt, ack_timeout=p["ack_timeout"],
                              status_timeout=p["ack_timeout"],
                              result_timeout=4 * p["ack_timeout"], log=log)
        t1 = get_sim_time(unit="ps")
        res2, _ = await drive_sim(proto.run_job(job), port)
        log(f"second run (no faults): {int((get_sim_time(unit='ps') - t1) // period_ps)} "
            f"cycles on the link, accelerator {res2.counters['cycles_total']} cycles "
            f"(stalled on input {res2.counters['cycles_stall_in']}, on output "
            f"{res2.counters['cycles_stall_out']}); host sent {proto.stats['bytes_sent']} bytes "
            f"in {proto.stats['frames_sent']} frames, received {proto.stats['bytes_received']} "
            f"bytes in {proto.stats['frames_received']} frames")
        fails = compare_outputs(res2.out, exp_tok)
        assert not fails, "second run differs:\n  " + "\n  ".join(fails)
        assert res2.counters["passes"] == res.counters["passes"]
