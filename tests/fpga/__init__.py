"""Tests of the FPGA flow, the UART/framing board shell and the host link."""
