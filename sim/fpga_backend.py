"""FPGA backend: run compiled schedules on a board over the serial link.

The board runs :class:`fpga.board_top.SaloBoard` (bitstream:
``python -m fpga.boards.ulx3s --design salo``); the host protocol is
:class:`fpga.host.BoardProtocol` (``docs/host-link.md``), the streams are
laid out by :func:`sim.rtl_backend.make_job` exactly as for the Verilator
backend, and the result has the shape of :func:`sim.rtl_backend.run_rtl`'s.

pyserial is needed only here (``pip install pyserial``).
"""

from __future__ import annotations

__all__ = ["run_fpga", "DEFAULT_BAUD", "BOARD_WATCHDOG"]

DEFAULT_BAUD = 115200
#: watchdog on the board: off (0).  Over a UART the accelerator waits far
#: longer than the simulation's DEFAULT_WATCHDOG cycles between frames; the
#: host's own timeouts detect a stalled run instead.
BOARD_WATCHDOG = 0


def run_fpga(sched, q_int, k_int, v_int, *, port=None, baud: int = DEFAULT_BAUD,
             expected=None, progress=print, watchdog: int = BOARD_WATCHDOG, link=None):
    """Run ``sched`` on the board at serial device ``port`` (e.g.
    ``/dev/ttyUSB0``) for integer Q/K/V (heads, N, d) in token order.

    Returns a :class:`sim.rtl_backend.RtlResult` (``out`` (heads, N, d) int64
    in token order, ``counters`` read from the board's STATUS).  ``expected``
    (functional simulator output, token order), when given, is compared bit
    for bit; a mismatch raises ``RuntimeError`` naming head, row and element.
    ``link``: an open :class:`fpga.host.HostLink` instead of ``port``."""
    from fpga.host import HostLink, LinkError, compare_outputs, run_job_on_board
    from sim.rtl_backend import make_job

    if link is None:
        if not port:
            raise LinkError("the fpga backend needs the board's serial port "
                            "(port=..., salo run --port DEV)")
        link = HostLink.open(port, baud=baud)
        own = True
    else:
        own = False
    job = make_job(sched, q_int, k_int, v_int, expected, name="fpga", watchdog=watchdog)
    try:
        res = run_job_on_board(job, link, baud=baud, log=progress)
    finally:
        if own:
            link.close()
    if expected is not None:
        bad = compare_outputs(res.out, expected)
        if bad:
            raise RuntimeError("board outputs differ from the functional simulator:\n  "
                               + "\n  ".join(bad))
    return res
