"""Shared pytest fixtures.

``rtl``: :func:`sim.runner.run_cocotb` with ``waves`` taken from ``--waves``
(default: env ``SALO_WAVES=1``), so an RTL test is::

    def test_x(rtl):
        rtl(lambda: Unit(...), name="unit", key={...},
            test_module="tests.hw.tb_unit", params={...})

``lint``: :func:`sim.runner.lint_verilog` (returns the unwaived warnings).
"""

from __future__ import annotations

import functools

import pytest


def pytest_addoption(parser):
    parser.addoption("--waves", action="store_true", default=False,
                     help="build RTL tests with tracing and write dump.vcd "
                          "(or dump.fst) into their build/<name>-<hash>/ folder")


@pytest.fixture
def rtl(request):
    from sim.runner import run_cocotb

    waves = True if request.config.getoption("--waves") else None
    return functools.partial(run_cocotb, waves=waves)


@pytest.fixture
def lint():
    from sim.runner import lint_verilog

    return lint_verilog


# other fixtures below
