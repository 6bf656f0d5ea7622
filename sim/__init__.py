"""Models and simulation: fixed-point helpers, bit-exact unit and array models,
the float reference, the Verilator runner and the cocotb testbenches."""
