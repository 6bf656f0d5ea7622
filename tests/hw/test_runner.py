"""The runner itself: environment setup, parameter passing, failure reports."""

import os

import pytest

from hw.config import preset
from hw.score_mac import ScoreMac
from sim import verilator_env
from sim.runner import TB_PARAMS_ENV, tb_params


def test_verilator_env_idempotent():
    exe = verilator_env.setup()
    path, flags = os.environ["PATH"], os.environ["MAKEFLAGS"]
    assert verilator_env.setup() == exe == verilator_env.verilator_bin()
    assert (os.environ["PATH"], os.environ["MAKEFLAGS"]) == (path, flags)
    assert path.split(os.pathsep)[0] == str(exe.parent)
    assert "VERILATOR_ROOT" not in os.environ
    for word in ("CFG_CXXFLAGS_PCH_I=-include", "CFG_CXXFLAGS_COROUTINES=-fcoroutines",
                 "OPT_FAST=-O2", "PYTHON3="):
        assert word in flags


def test_tb_params_needs_env(monkeypatch):
    monkeypatch.delenv(TB_PARAMS_ENV, raising=False)
    with pytest.raises(RuntimeError, match=TB_PARAMS_ENV):
        tb_params()


def test_failing_cocotb_test_is_reported(rtl):
    # same name/key/Verilog/top_only as test_score_mac[small]: reuses that build
    cfg = preset("small")
    with pytest.raises(AssertionError) as info:
        rtl(lambda: ScoreMac(data_width=cfg.data_width, acc_width=cfg.acc_width),
            name="score_mac", key={"unit": "score_mac", "config": cfg.to_dict()},
            test_module="tests.hw.tb_runner_selftest", top_only=True, params={"marker": 42})
    msg = str(info.value)
    assert "1 of 2 cocotb test(s) failed" in msg
    assert "fails_on_purpose" in msg and "planted failure 1234" in msg
    assert "passes" not in msg.split("\n", 1)[1]
