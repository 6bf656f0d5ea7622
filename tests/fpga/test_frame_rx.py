"""Hardware frame receiver (``fpga/frame_rx.py``) against the Python frame
format, in Verilator (``tests/fpga/tb_frame_rx.py``)."""

from __future__ import annotations

import random

import pytest

from fpga.frame_rx import FrameReceiver, _crc_matrix
from fpga.framing import crc8, crc16


def _eval(width, poly, crc, byte):
    out = 0
    for k, terms in enumerate(_crc_matrix(width, poly)):
        v = 0
        for kind, i in terms:
            v ^= ((crc if kind == "c" else byte) >> i) & 1
        out |= v << k
    return out


def test_crc_matrices_equal_the_bitwise_crcs():
    rng = random.Random(2)
    for _ in range(3000):
        c, b = rng.randrange(1 << 16), rng.randrange(256)
        assert _eval(16, 0x1021, c, b) == crc16(bytes([b]), c)
        assert _eval(8, 0x07, c & 0xFF, b) == crc8(bytes([b]), c & 0xFF)


@pytest.mark.parametrize("seed", [1, 2])
def test_frame_receiver(rtl, seed):
    rtl(lambda: FrameReceiver(max_payload=64), name="frame_rx", key={"max_payload": 64},
        test_module="tests.fpga.tb_frame_rx", params={"max_payload": 64, "frames": 40,
                                                      "seed": seed}, top_only=True)
