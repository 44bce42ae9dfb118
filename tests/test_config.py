"""Configuration: presets load and validate, overrides parse, unknown keys and wrong types name the key."""
from __future__ import annotations

import json

import pytest

from rdfa_s6.config import (
    Config,
    config_from_dict,
    config_to_dict,
    list_presets,
    load_config,
    parse_value,
)
from rdfa_s6.errors import ConfigError


def test_all_presets_load_and_round_trip_through_json():
    names = list_presets()
    assert {"thumos14", "thumos14_paper", "activitynet13", "hacs", "fineaction", "demo"} <= set(names)
    for name in names:
        cfg = load_config(name)
        assert cfg.name == name
        assert len(cfg.model.regression_ranges) == cfg.num_levels
        assert config_from_dict(json.loads(json.dumps(config_to_dict(cfg)))) == cfg


def test_thumos14_preset_holds_the_official_values():
    cfg = load_config("thumos14")
    assert (cfg.data.input_dim, cfg.data.num_classes, cfg.data.max_seq_len) == (3200, 20, 2304)
    assert cfg.chan_pool_len == 576 and cfg.num_levels == 6
    s = cfg.model.stem
    assert (s.kind, s.recurrences, s.kernel_sizes, s.residual, s.drop_path) == ("dual", 4, [2, 3, 4], "anchored", 0.3)
    assert cfg.model.mixer.bc_source == "first" and cfg.model.mixer.kernel_aggregation == "concat"
    assert cfg.model.mixer.freeze_dwconv is False and load_config("thumos14_paper").model.mixer.freeze_dwconv is True
    assert (cfg.train.lr, cfg.train.epochs, cfg.train.loss_norm, cfg.train.seed) == (1e-4, 50, "official", 1234567891)
    assert (cfg.infer.nms_method, cfg.infer.nms_sigma, cfg.infer.max_seg_num) == ("gaussian", 0.5, 200)
    assert cfg.eval.tiou_thresholds == [0.3, 0.4, 0.5, 0.6, 0.7]


def test_upstream_presets():
    anet = load_config("activitynet13")
    assert anet.data.class_agnostic and anet.data.force_upsampling and anet.data.max_seq_len == 192
    assert anet.chan_pool_len == 48 and anet.model.embed_dim == 256 and not anet.infer.multiclass_nms
    fine = load_config("fineaction")
    assert fine.data.input_dim == 1408 and fine.data.num_classes == 106 and fine.num_levels == 8
    demo = load_config("demo")
    assert demo.data.input_dim is None and demo.data.num_classes is None and demo.chan_pool_len == 64


@pytest.mark.parametrize(
    "text,expected",
    [("2", 2), ("-3", -3), ("1e-4", 1e-4), ("0.5", 0.5), ("true", True), ("False", False), ("null", None),
     ("none", None), ("[2, 3, 4]", [2, 3, 4]), ("[[0, 4], [4, 1e4]]", [[0, 4], [4, 1e4]]), ("maxpool", "maxpool")],
)
def test_override_values_parse(text, expected):
    value = parse_value(text)
    assert value == expected and type(value) is type(expected)


def test_overrides_apply_with_types():
    cfg = load_config("thumos14", [
        "model.stem.recurrences=2", "train.lr=1e-3", "model.mixer.freeze_dwconv=true", "model.stem.kernel_sizes=[3]",
        "model.stem.chan_pool_len=null", "data.default_fps=30", "data.file_prefix=007", "model.stem.kind=none",
        "infer.ext_score_file=scores.json",
    ])
    assert cfg.model.stem.recurrences == 2 and cfg.train.lr == 1e-3 and cfg.model.mixer.freeze_dwconv is True
    assert cfg.model.stem.kernel_sizes == [3] and cfg.model.stem.chan_pool_len is None
    assert cfg.data.default_fps == 30.0 and isinstance(cfg.data.default_fps, float)
    assert cfg.data.file_prefix == "007" and cfg.model.stem.kind == "none"
    assert cfg.infer.ext_score_file == "scores.json"


def test_unknown_key_names_the_dotted_key_and_suggests():
    with pytest.raises(ConfigError, match=r"model\.stem\.recurence.*did you mean 'model\.stem\.recurrences'"):
        load_config("thumos14", ["model.stem.recurence=2"])
    with pytest.raises(ConfigError, match=r"'recurrences'.*did you mean 'model\.stem\.recurrences'"):
        load_config("thumos14", ["recurrences=2"])
    with pytest.raises(ConfigError, match=r"model\.stem\.colour"):
        config_from_dict({"model": {"stem": {"colour": 1}}})


def test_unknown_key_in_a_yaml_file_names_file_and_key(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("base: demo\nmodel:\n  branch:\n    level: 2\n")
    with pytest.raises(ConfigError, match=r"mine\.yaml.*model\.branch\.level.*model\.branch\.levels"):
        load_config(str(path))


def test_wrong_type_names_key_expected_and_got(tmp_path):
    with pytest.raises(ConfigError, match=r"'model\.stem\.recurrences': expected int, got str 'four'"):
        load_config("thumos14", ["model.stem.recurrences=four"])
    with pytest.raises(ConfigError, match=r"'train\.lr': expected float, got str 'fast'"):
        load_config("thumos14", ["train.lr=fast"])
    with pytest.raises(ConfigError, match=r"'model\.mixer\.freeze_dwconv': expected bool, got int 1"):
        load_config("thumos14", ["model.mixer.freeze_dwconv=1"])
    with pytest.raises(ConfigError, match=r"'model\.stem\.kernel_sizes\[1\]': expected int"):
        load_config("thumos14", ["model.stem.kernel_sizes=[2, x]"])
    with pytest.raises(ConfigError, match=r"'model\.stem\.kind': expected one of dual, temporal, channel, none"):
        load_config("thumos14", ["model.stem.kind=triple"])
    with pytest.raises(ConfigError, match=r"'model': expected a mapping"):
        config_from_dict({"model": 3})


def test_cross_field_rules():
    with pytest.raises(ConfigError, match=r"model\.regression_ranges.*branch\.levels \+ 1 = 4"):
        load_config("thumos14", ["model.branch.levels=3"])
    cfg = load_config("thumos14", ["model.branch.levels=3", "model.regression_ranges=[[0,4],[4,8],[8,16],[16,1e4]]"])
    assert cfg.num_levels == 4
    with pytest.raises(ConfigError, match=r"model\.stem\.drop_path"):
        load_config("thumos14", ["model.stem.drop_path=1.5"])


def test_yaml_floats_in_exponent_form_are_numbers(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("base: thumos14\ntrain:\n  lr: 3e-4\n")  # YAML 1.1 reads 3e-4 as a string
    assert load_config(str(path)).train.lr == 3e-4


def test_unknown_preset_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset 'thumos15'.*thumos14"):
        load_config("thumos15")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: invalid YAML"):
        load_config(str(bad))
    with pytest.raises(ConfigError, match="must look like section.key=value"):
        load_config("thumos14", ["model.stem.recurrences"])


def test_defaults_are_a_valid_config():
    assert config_from_dict({}) == Config()
