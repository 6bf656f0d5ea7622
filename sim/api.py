"""Python API: attention on the accelerator for float Q/K/V.

    from sim.api import run_attention
    res = run_attention(q, k, v, "examples/longformer-base.json", config="small",
                        backend="model")      # or "rtl", or "fpga" with port="/dev/ttyUSB0"
    res.out, res.counters

The path is the one of ``salo run``: the pattern is compiled by
:func:`scheduler.schedule.compile_pattern`, inputs are quantized by
:func:`sim.driver.quantize_inputs` (log2(e)/sqrt(d) folded into q, per-head
scales), run on the functional simulator (``model``) or on the Verilog
(``rtl``, :func:`sim.rtl_backend.run_rtl`) or on a board over its serial
port (``fpga``, :func:`sim.fpga_backend.run_fpga`), and dequantized by
:func:`sim.driver.dequantize_output`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hw.config import AcceleratorConfig, load_config

__all__ = ["run_attention", "AttentionResult"]


@dataclass
class AttentionResult:
    """``out``: float outputs (heads, N, d) in the units of V; ``out_int``:
    the integer outputs of the backend (token order); ``counters``: the
    RTL's performance counters (``rtl``) or the scheduler's cycle estimate
    (``model``); ``schedule``: the compiled schedule."""
    out: np.ndarray
    out_int: np.ndarray
    counters: dict
    schedule: object
    backend: str


def _pattern(pattern):
    from scheduler.pattern import Pattern, load_pattern, parse_pattern
    if isinstance(pattern, Pattern):
        return pattern
    if isinstance(pattern, dict):
        return parse_pattern(pattern)
    return load_pattern(pattern)


def _config(config) -> AcceleratorConfig:
    if isinstance(config, AcceleratorConfig):
        return config
    if config is None:
        return load_config()
    if isinstance(config, str) and (config.endswith(".json")):
        return load_config(path=config)
    return load_config(preset_name=config)


def run_attention(q, k, v, pattern, config="small", backend: str = "model", *,
                  stripes: int = 1, rtl_in_idle: float = 0.0,
                  rtl_out_backpressure: float = 0.0, progress=None, port: str | None = None,
                  baud: int | None = None, link=None) -> AttentionResult:
    """Attention of float ``q, k, v`` (heads, N, d) over ``pattern`` (a
    :class:`scheduler.pattern.Pattern`, a pattern dict or a JSON path) on
    accelerator ``config`` (an :class:`AcceleratorConfig`, a preset name or a
    config JSON path).  ``backend``: ``"model"`` (bit-exact functional
    simulator) or ``"rtl"`` (Verilator; the RTL outputs are also checked
    bit-exact against the functional simulator inside the testbench) or
    ``"fpga"`` (the board at serial device ``port``, ``baud`` default 115200,
    or an open ``fpga.host.HostLink`` as ``link``; needs pyserial; outputs
    checked bit-exact against the functional simulator)."""
    from scheduler.schedule import compile_pattern
    from sim.driver import dequantize_output, quantize_inputs
    from sim.funcsim import simulate

    if backend not in ("model", "rtl", "fpga"):
        raise ValueError(f"backend {backend!r} is invalid: allowed 'model', 'rtl' or 'fpga'")
    if backend == "fpga" and not port and link is None:
        raise ValueError("backend 'fpga' needs port= (the board's serial device, e.g. "
                         "/dev/ttyUSB0)")
    pat = _pattern(pattern)
    cfg = _config(config)
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    shape = (pat.heads, pat.seq_len, pat.head_dim)
    for name, x in zip("qkv", (q, k, v)):
        if x.shape != shape:
            raise ValueError(f"{name} has shape {x.shape}, the pattern needs (heads, N, d) = "
                             f"{shape}")
    sched = compile_pattern(pat, cfg, stripes=stripes)
    qi, ki, vi, sc = quantize_inputs(q, k, v, cfg)
    expected = simulate(sched, qi, ki, vi)
    if backend == "model":
        from scheduler.cycles import estimate_cycles
        out_int, counters = expected, estimate_cycles(sched)
    elif backend == "fpga":
        from sim.fpga_backend import DEFAULT_BAUD, run_fpga
        res = run_fpga(sched, qi, ki, vi, port=port, baud=baud or DEFAULT_BAUD,
                       expected=expected, progress=progress or (lambda line: None), link=link)
        out_int, counters = res.out, dict(res.counters)
        counters["utilization"] = res.counters["useful_macs"] / max(
            1, cfg.num_pes * res.counters["cycles_total"])
    else:
        from sim.rtl_backend import run_rtl
        res = run_rtl(sched, qi, ki, vi, expected=expected, in_idle=rtl_in_idle,
                      out_backpressure=rtl_out_backpressure, progress=progress)
        out_int, counters = res.out, dict(res.counters)
        counters["utilization"] = res.counters["useful_macs"] / max(
            1, cfg.num_pes * res.counters["cycles_total"])
    return AttentionResult(dequantize_output(out_int, sc, cfg), out_int, counters, sched,
                           backend)
