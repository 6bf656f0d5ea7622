"""FPGA flow (synthesis, place and route, reports), the board shell (UART,
framing) and the host side of the serial link.

* :mod:`fpga.flow`    -- ``salo synth``: Yosys + nextpnr-ecp5 via YoWASP, JSON report
* :mod:`fpga.designs` -- what gets synthesized (:func:`fpga.flow.design_for`)
* :mod:`fpga.scaling` -- Fmax/resources over array sizes -> ``docs/fpga-scaling.md``
* :mod:`fpga.uart`    -- UART RX/TX components with stream interfaces
* :mod:`fpga.framing` -- the host-link frame format (``docs/host-link.md``)
* :mod:`fpga.frame_rx` -- hardware frame receiver (CRC-checked frames -> byte beats)
* :mod:`fpga.board_protocol` -- payload formats of the board link (defined once)
* :mod:`fpga.board_top` -- ``SaloBoard``: UART + frame receiver + stream FIFOs + ``SaloTop`` + frame transmitter
* :mod:`fpga.boards.ulx3s` -- ULX3S pins (``ulx3s.lpf``), the accelerator bitstream and the UART echo bitstream
* :mod:`fpga.host`    -- host side: the board protocol (sans-IO, shared with the
  cocotb serial-pin test) and the serial link (pyserial, optional); used by
  ``salo run --backend fpga``
"""
