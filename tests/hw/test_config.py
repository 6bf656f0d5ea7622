"""The configuration object: validation, presets, JSON, hash."""

import dataclasses
import json
import subprocess
import sys

import pytest

from hw.config import PRESETS, AcceleratorConfig, ConfigError, load_config, preset


BAD_VALUES = [
    ("rows", 0), ("rows", 300), ("cols", 0), ("global_rows", -1), ("global_cols", 17),
    ("random_cols", -2), ("max_head_dim", 0), ("data_width", 1), ("data_width", 25),
    ("data_frac", 9), ("data_frac", -1), ("acc_width", 10), ("acc_width", 63),
    ("prob_frac", 0), ("prob_width", 7), ("exp_width", 1), ("exp_width", 9),
    ("exp_segments", 3), ("exp_segments", 128), ("out_buffer_rows", 7),
    ("kv_buffer_rows", 3), ("max_seq_len", 2), ("rows", 2.5), ("cols", True),
    ("rows", "4"), ("out_frac", 3), ("out_width", 8), ("out_width", 33),
]


@pytest.mark.parametrize("field,value", BAD_VALUES)
def test_bad_value_names_field_and_value(field, value):
    with pytest.raises(ConfigError) as info:
        dataclasses.replace(PRESETS["small"], **{field: value})
    msg = str(info.value)
    assert f"'{field}'" in msg and repr(value) in msg and "allowed" in msg


def test_score_fraction_must_index_segments():
    with pytest.raises(ConfigError, match="data_frac"):
        dataclasses.replace(PRESETS["small"], data_frac=1, exp_segments=16)


def test_wsum_stage_needs_head_dims_of_the_row_chain():
    # small-8x8: 8 local + 1 global + 2 random columns per row -> d >= 9
    base = dataclasses.replace(PRESETS["small-8x8"], max_head_dim=8)
    assert base.row_pes == 11 and base.min_head_dim_wsum == 1
    with pytest.raises(ConfigError, match="'max_head_dim' = 8 .*at least 9 with wsum_stage=1"):
        dataclasses.replace(base, wsum_stage=1)
    assert dataclasses.replace(base, max_head_dim=9, wsum_stage=1).min_head_dim_wsum == 9


def test_merge_width_limit_is_reported():
    with pytest.raises(ConfigError, match="'max_seq_len'.*merge accumulators"):
        dataclasses.replace(PRESETS["wide"], data_width=24, acc_width=48, prob_width=32,
                            prob_frac=30, out_width=32, out_frac=16, max_seq_len=1 << 20)


@pytest.mark.parametrize("name", list(PRESETS))
def test_json_round_trip(name, tmp_path):
    cfg = PRESETS[name]
    assert AcceleratorConfig.from_json(cfg.to_json()) == cfg
    path = tmp_path / "cfg.json"
    cfg.save(path)
    assert load_config(path) == cfg
    assert load_config(path).hash() == cfg.hash()


def test_unknown_field_and_bad_json_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="unknown config field.*'colz'"):
        AcceleratorConfig.from_dict({"colz": 4})
    with pytest.raises(ConfigError, match="not valid JSON"):
        AcceleratorConfig.from_json("{rows: 4")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="unknown preset 'big'.*small"):
        preset("big")


def test_hash_is_content_hash():
    hashes = {cfg.hash() for cfg in PRESETS.values()}
    assert len(hashes) == len(PRESETS)
    # every field takes part: change each one to another valid value
    wide = PRESETS["wide"]
    for f in dataclasses.fields(wide):
        value = getattr(wide, f.name)
        for other in (value * 2 or 1, value + 1, value - 1):
            try:
                changed = dataclasses.replace(wide, **{f.name: other})
                break
            except ConfigError:
                continue
        assert changed.hash() != wide.hash(), f.name


def test_hash_is_stable_across_processes():
    code = "from hw.config import PRESETS; print(PRESETS['salo-dac22'].hash())"
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={"PYTHONHASHSEED": seed, "PATH": ""}, check=True,
                           cwd=str(__import__("pathlib").Path(__file__).parents[2])).stdout
            for seed in ("1", "2")}
    assert outs == {PRESETS["salo-dac22"].hash() + "\n"}


def test_salo_dac22_matches_publication():
    c = PRESETS["salo-dac22"]
    assert (c.rows, c.cols, c.global_rows, c.global_cols) == (32, 32, 1, 1)
    assert (c.data_width, c.data_frac) == (9, 4)
    assert (c.prob_width, c.prob_frac) == (9, 7)
    assert (c.acc_width, c.score_frac, c.exp_width) == (18, 8, 5)
    assert c.exp_segments == 4


def test_presets_cli_lists_every_preset(capsys):
    from sim.cli import main
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for name, cfg in PRESETS.items():
        assert name in out and cfg.hash() in out
    assert main(["presets", "--json", "fpga"]) == 0
    assert AcceleratorConfig.from_json(capsys.readouterr().out) == PRESETS["fpga"]
