"""Payload formats of the board link (``docs/host-link.md``), defined once.

The frame layer is :mod:`fpga.framing`; this module says what the payloads
of the board top :class:`fpga.board_top.SaloBoard` contain.  Every width is
derived from the accelerator config through the layouts of :mod:`hw.isa`
and :mod:`hw.top_status`; the hardware (``fpga/board_top.py``), the host
driver (``fpga/host.py``) and the tests use :class:`BoardFormat`, none of
them repeats a width.

* INSTR / MASK / ROWS: records of ``instruction_layout(cfg).size`` /
  ``mask_record_layout(cfg).size`` / ``row_layout(cfg).size`` bits, each
  padded to whole bytes (:func:`fpga.framing.pack_records`).
* CONTROL: :data:`CONTROL_FIELDS` (``head_dim``, ``watchdog_limit``).
  Starts a new run: the accelerator and the board's stream FIFOs are reset.
* ACK: the accepted frame's type, then a status byte = the accelerator's
  ``ErrorCode`` value at the time of the ACK (0 = NONE).
* ERROR: :class:`LinkErrorCode` value, then the offending frame's type (0
  when unknown: a frame that failed its CRC).
* RESULT: records of ``result_layout(cfg).size`` bits.
* STATUS: :func:`status_fields` in order, each field little-endian.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from fpga.framing import FrameError, FrameType, record_bytes

__all__ = ["BoardFormat", "LinkErrorCode", "CONTROL_FIELDS", "status_fields",
           "PING_MAX", "config_hash_int"]

#: (name, bytes) of the CONTROL payload
CONTROL_FIELDS = (("head_dim", 2), ("watchdog_limit", 4))
#: longest PING payload the board echoes (longer: ERROR BAD_LENGTH)
PING_MAX = 16


class LinkErrorCode(enum.IntEnum):
    """First byte of an ERROR frame."""
    #: a frame failed its header or frame CRC (its type is unknown: second byte 0)
    BAD_FRAME = 1
    #: a frame type the board does not take (second byte: that type)
    UNKNOWN_TYPE = 2
    #: a payload whose length does not fit its type (not a whole number of
    #: records, CONTROL not 6 bytes, PING longer than PING_MAX); the whole
    #: records before a trailing partial record were delivered
    BAD_LENGTH = 3


def config_hash_int(cfg) -> int:
    """``cfg.hash()`` (12 hex digits) as the 48-bit integer STATUS reports."""
    return int(cfg.hash(), 16)


def status_fields(cfg=None):
    """(name, bytes) of the STATUS payload, in order.  The counters are those
    of ``hw.top_status.COUNTERS`` (``ceil(COUNTER_BITS / 8)`` bytes each)."""
    from hw.top_status import COUNTER_BITS, COUNTERS
    cb = record_bytes(COUNTER_BITS)
    return (("busy", 1), ("done", 1), ("error", 1),
            *((name, cb) for name in COUNTERS),
            ("config_hash", 6),        # config_hash_int(cfg) of the board's config
            ("frames_ok", 2),          # accepted INSTR/MASK/ROWS/CONTROL frames, mod 2**16
            ("frames_bad", 2),         # frames that failed a CRC check, mod 2**16
            ("instr_fifo_depth", 2),   # board FIFO depths (the host's chunk limits)
            ("mask_fifo_depth", 2),
            ("max_payload", 2),        # longest payload the board receives
            ("results_sent", 4))       # result records sent since the last CONTROL


def _pack_fields(fields, values: dict) -> bytes:
    out = bytearray()
    for name, n in fields:
        v = int(values[name])
        if not 0 <= v < 1 << (8 * n):
            raise FrameError(f"{name} = {v} does not fit {n} bytes")
        out += v.to_bytes(n, "little")
    return bytes(out)


def _unpack_fields(fields, payload: bytes, what: str) -> dict:
    total = sum(n for _, n in fields)
    if len(payload) != total:
        raise FrameError(f"{what} payload of {len(payload)} bytes, expected {total}")
    out, k = {}, 0
    for name, n in fields:
        out[name] = int.from_bytes(payload[k:k + n], "little")
        k += n
    return out


@dataclass(frozen=True)
class BoardFormat:
    """Record widths (bits) and bytes of each record frame for ``cfg``."""
    cfg: object

    @property
    def bits(self) -> dict:
        from hw.isa import instruction_layout, mask_record_layout
        from hw.top_status import result_layout, row_layout
        c = self.cfg
        return {FrameType.INSTR: instruction_layout(c).size,
                FrameType.MASK: mask_record_layout(c).size,
                FrameType.ROWS: row_layout(c).size,
                FrameType.RESULT: result_layout(c).size}

    def record_bits(self, ftype) -> int:
        return self.bits[FrameType(ftype)]

    def record_bytes(self, ftype) -> int:
        return record_bytes(self.record_bits(ftype))

    # ---------------------------------------------------------- CONTROL
    @staticmethod
    def encode_control(head_dim: int, watchdog_limit: int) -> bytes:
        return _pack_fields(CONTROL_FIELDS, {"head_dim": head_dim,
                                             "watchdog_limit": watchdog_limit})

    @staticmethod
    def decode_control(payload: bytes) -> dict:
        return _unpack_fields(CONTROL_FIELDS, payload, "CONTROL")

    # ----------------------------------------------------------- STATUS
    def status_fields(self):
        return status_fields(self.cfg)

    def encode_status(self, values: dict) -> bytes:
        """Reference encoder (tests); the board builds the same bytes in RTL."""
        return _pack_fields(self.status_fields(), values)

    def decode_status(self, payload: bytes) -> dict:
        return _unpack_fields(self.status_fields(), payload, "STATUS")

    # ----------------------------------------------------------- RESULT
    def decode_result(self, value: int):
        """One ``results`` record -> (head, pos, list of max_head_dim signed
        ints), following ``hw.top_status.result_layout``."""
        from hw.top_status import decode_result
        return decode_result(self.cfg, value)
