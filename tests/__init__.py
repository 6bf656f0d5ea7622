"""Test package (absolute imports like tests.hw.tb_exp2 for cocotb)."""
