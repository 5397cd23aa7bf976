"""StarGAN v2: official architecture (G, F, E, D and the FAN landmark network) and its masks."""

from __future__ import annotations

import pytest
import torch

from gfhelpers import REPO, face_like_heatmaps, fan_probe, fill_by_key_order
from ganforge.models.starganv2.fan import FAN, landmark_masks
from ganforge.models.starganv2.networks import (Discriminator, Generator, MappingNetwork, Starganv2ModelConfig,
                                                StyleEncoder)
from ganforge.train.phases import count_parameters

# Made by scripts/starganv2_official_reference.py from clovaai/stargan-v2's core/model.py and core/wing.py.
REFERENCE = REPO / "tests" / "data" / "starganv2_official.pt"


def _networks(cfg: Starganv2ModelConfig) -> dict[str, torch.nn.Module]:
    return {"G": Generator(cfg), "F": MappingNetwork(cfg), "E": StyleEncoder(cfg), "D": Discriminator(cfg)}


@pytest.mark.parametrize("domains, w_hpf, expected", [
    (3, 0.0, (33_892_995, 3_259_072, 20_949_760, 20_852_803)),   # AFHQ
    (2, 1.0, (43_467_395, 2_438_272, 20_916_928, 20_852_290)),   # CelebA-HQ
])
def test_parameter_counts_match_the_official_256px_networks(domains, w_hpf, expected):
    nets = _networks(Starganv2ModelConfig(image_size=256, num_domains=domains, w_hpf=w_hpf))
    assert tuple(count_parameters(n) for n in nets.values()) == expected


def test_fan_has_the_official_parameter_count_and_stays_frozen_in_eval():
    fan = FAN()
    assert count_parameters(fan) == 6_333_603
    assert not any(p.requires_grad for p in fan.parameters())  # frozen: nothing trains it
    fan.train()
    assert not fan.training and not any(m.training for m in fan.modules())


@pytest.mark.parametrize("name, domains, w_hpf", [("afhq", 3, 0.0), ("celebahq", 2, 1.0)])
@torch.no_grad()
def test_outputs_equal_the_official_networks(name, domains, w_hpf):
    ref = torch.load(REFERENCE, weights_only=True)
    nets = _networks(Starganv2ModelConfig(image_size=64, num_domains=domains, w_hpf=w_hpf))
    for seed, net in enumerate(nets.values()):
        fill_by_key_order(net, seed)  # the official networks were filled the same way, key by key
        net.eval()
    x, y, z, s = (ref[f"{name}/{k}"] for k in "xyzs")
    assert torch.equal(nets["G"](x, s), ref[f"{name}/G"])
    assert torch.equal(nets["F"](z, y), ref[f"{name}/F"])
    assert torch.equal(nets["E"](x, y), ref[f"{name}/E"])
    assert torch.equal(nets["D"](x, y), ref[f"{name}/D"])
    if w_hpf > 0:
        masks = ref[f"{name}/masks"]
        masked = nets["G"](x, s, (masks[:, :1], masks[:, 1:]))
        assert torch.equal(masked, ref[f"{name}/G_masked"])
        assert (masked - ref[f"{name}/G"]).abs().max() > 1e-3  # the masks really reach the output
    else:
        with pytest.raises(ValueError, match="w_hpf"):
            nets["G"](x, s, (x[:, :1], x[:, :1]))


@torch.no_grad()
def test_fan_heatmaps_and_masks_equal_the_official():
    ref = torch.load(REFERENCE, weights_only=True)
    fan = FAN()
    fill_by_key_order(fan, 7)
    faces, positions = fan_probe()
    assert torch.equal(fan(faces).flatten()[positions], ref["fan/heatmaps_at"])
    whole, inner = landmark_masks(face_like_heatmaps(1, int(ref["masks/seed"])))
    assert torch.equal(torch.cat([whole, inner], 1), ref["masks/outputs"])
    # Face-like heatmaps give partial masks, the inner one inside the whole one.
    assert 0.01 < whole.mean() < 0.5 and 0 < inner.mean() < whole.mean()


@torch.no_grad()
def test_fan_masks_take_any_image_size_and_give_256px_masks():
    fan = FAN()
    fill_by_key_order(fan, 7)
    whole, inner = fan.masks(torch.rand(1, 3, 128, 128) * 2 - 1)
    assert whole.shape == inner.shape == (1, 1, 256, 256)
    assert 0 <= float(whole.min()) and float(whole.max()) <= 1
