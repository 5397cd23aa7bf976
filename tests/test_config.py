"""Config: defaults <- preset <- overrides; every error names the key and what is valid."""

from __future__ import annotations

import pytest
import yaml

from ganforge.config import ConfigError, parse_override, to_dict
from ganforge.presets import list_presets, load_config, read_preset, resolve
from ganforge.run.store import save_config


def test_defaults_preset_and_overrides_layer_in_order(tmp_path):
    cfg = load_config("wgan_gp/shapes", ["train.steps=123", "recipe.n_critic=3", "runtime.precision=bf16"])
    assert cfg.family == "wgan_gp"
    assert cfg.train.steps == 123  # override beats preset (20000)
    assert cfg.recipe.n_critic == 3
    assert cfg.recipe.gp_lambda == 10.0  # preset value
    assert cfg.recipe.betas == (0.0, 0.9)  # family default (WGAN-GP paper)
    assert cfg.train.ema.decay == 0.999  # global default
    assert cfg.runtime.precision == "bf16"


def test_family_defaults_follow_the_papers():
    dc = resolve({"family": "dcgan"})
    assert (dc.recipe.loss, dc.recipe.lr_d, dc.recipe.betas, dc.recipe.n_critic) == ("bce", 2e-4, (0.5, 0.999), 1)
    assert dc.model.d_norm == "batch"
    wg = resolve({"family": "wgan_gp"})
    assert (wg.recipe.loss, wg.recipe.lr_d, wg.recipe.betas, wg.recipe.n_critic, wg.recipe.gp_lambda) == \
        ("wgan", 1e-4, (0.0, 0.9), 5, 10.0)
    assert wg.model.d_norm == "layer"


@pytest.mark.parametrize("override, expected", [
    ("train.stesp=5", "unknown key 'train.stesp'; did you mean 'train.steps'?"),
    ("trian.steps=5", "unknown key 'trian'; did you mean 'train'?"),
    ("model.z_dimm=5", "unknown key 'model.z_dimm'; did you mean 'model.z_dim'?"),
    ("train.ema.decy=0.5", "unknown key 'train.ema.decy'; did you mean 'train.ema.decay'?"),
])
def test_misspelled_key_names_path_and_closest_key(override, expected):
    with pytest.raises(ConfigError) as err:
        load_config("wgan_gp/shapes", [override])
    assert expected in str(err.value)


@pytest.mark.parametrize("override, fragment", [
    ("train.steps=ten", "train.steps: expected an integer, got 'ten'"),
    ("train.steps=0", "train.steps: 0 is out of range; it must be > 0"),
    ("train.batch_size=-4", "train.batch_size: -4 is out of range"),
    ("runtime.precision=fp8", "runtime.precision: 'fp8' is not one of 'fp32', 'bf16', 'fp16'"),
    ("train.progress=maybe", "train.progress: expected true or false, got 'maybe'"),
    ("recipe.betas=[0.5]", "recipe.betas: expected 2 values"),
    ("train.ema.decay=1.5", "train.ema.decay: 1.5 is out of range; it must be <= 1.0"),
    ("model.image_size=48", "model.image_size: 48 is not one of 32, 64, 128"),
    ("data.num_workers=many", "data.num_workers: 'many' is not a valid int | 'auto'"),
    ("runtime.penalty_precision=bf16", "runtime.penalty_precision: 'bf16' is not one of 'fp32', 'autocast'"),
])
def test_wrong_type_or_range_names_key_and_value(override, fragment):
    with pytest.raises(ConfigError) as err:
        load_config("wgan_gp/shapes", [override])
    assert fragment in str(err.value)


def test_autocast_penalty_needs_bf16():
    # An fp16 penalty's inner gradient would underflow without its own loss scaling: refused up front.
    with pytest.raises(ConfigError, match="penalty_precision=autocast works with runtime.precision=bf16 only"):
        load_config("wgan_gp/shapes", ["runtime.precision=fp16", "runtime.penalty_precision=autocast"])
    assert load_config("wgan_gp/shapes", ["runtime.precision=bf16",
                                          "runtime.penalty_precision=autocast"]).runtime.penalty_precision == "autocast"


def test_cross_section_rules():
    with pytest.raises(ConfigError, match="model.image_size=32 and data.image_size=64 differ"):
        load_config("wgan_gp/shapes", ["model.image_size=32"])
    with pytest.raises(ConfigError, match="d_norm=batch cannot be used with a gradient penalty"):
        load_config("wgan_gp/shapes", ["model.d_norm=batch"])


def test_unknown_family_and_preset_suggest_names():
    with pytest.raises(Exception, match="unknown family 'wgangp'. Did you mean 'wgan_gp'"):
        resolve({"family": "wgangp"})
    with pytest.raises(ConfigError, match="Did you mean 'wgan_gp/shapes'"):
        read_preset("wgan_gp/shape")


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="not of the form key=value"):
        parse_override("train.steps")
    with pytest.raises(ConfigError, match="is a value, not a section"):
        load_config("wgan_gp/shapes", ["train.steps.x=1"])


def test_resolved_config_round_trips_through_yaml(tmp_path):
    cfg = load_config("wgan_gp/shapes", ["train.steps=7", "name=x"])
    save_config(cfg, tmp_path / "config.yaml")
    again = resolve(yaml.safe_load((tmp_path / "config.yaml").read_text()))
    assert to_dict(again) == to_dict(cfg)


@pytest.mark.parametrize("preset", list_presets())
def test_every_shipped_preset_is_valid(preset):
    cfg = load_config(preset)
    assert cfg.model.image_size == cfg.data.image_size


def test_a_data_key_the_dataset_does_not_read_is_an_error_naming_its_keys():
    with pytest.raises(ConfigError, match=r"data\.crop_size: dataset 'shapes' does not read it\. Its keys: "
                                          r"channels, crop_prob, .*view"):
        load_config("wgan_gp/shapes", ["data.crop_size=178"])
    with pytest.raises(ConfigError, match=r"data\.view: dataset 'image_folder' does not read it.*classes, crop, "):
        load_config("wgan_gp/image_folder", ["data.view=class"])


def test_switching_the_dataset_drops_the_presets_keys_the_new_one_does_not_read():
    cfg = load_config("stargan/celeba", ["data.name=shapes", "data.view=attributes",
                                         "data.selected_attrs=[Red,Green,Blue,Large,Light_Background]"])
    assert type(cfg.data).__name__ == "ShapesConfig" and cfg.data.view == "attributes"
    assert not hasattr(cfg.data, "crop_size")  # the preset's celeba crop went with celeba
    with pytest.raises(ConfigError, match=r"data\.crop_size: dataset 'shapes' does not read it"):
        load_config("stargan/celeba", ["data.name=shapes", "data.view=attributes", "data.crop_size=178",
                                       "data.selected_attrs=[Red]"])  # but one typed now is checked
