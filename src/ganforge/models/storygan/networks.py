"""StoryGAN's networks (Li et al., CVPR 2019), as yitong91/StoryGAN's model.py computes them.

Module names follow the official code (``recurrent``, ``mocornn``, ``ca_net.fc``, ``fc.0``,
``upsample1.1``, ``encode_img.0``, ``get_cond_logits.conv1.0``, ...), so official
``netG_epoch_*.pth`` / ``netD_im_epoch_*.pth`` / ``netD_st_epoch_*.pth`` state dicts load without
renaming. At the CLEVR config (text 75, condition 75, noise 100, GF_DIM 192, DF_DIM 96, 15 labels,
4 frames) G has 35,003,478 parameters, the image D 12,226,945 and the story D 27,967,873.

Stories are (N, T, C, H, W) here; the official code permutes them to (N, C, T, H, W), which holds
the same numbers in another order.

The generator, for a story of descriptions d_1..d_T (N, T, 75):
- story encoder: the mean of the descriptions, ``s`` (the official code; see ``variant``);
- context encoder: ``recurrent`` (GRUCell, noise + description -> 75) runs from ``h_0 = d_1`` over
  ``[z_t, d_t]`` and gives each frame's motion code; ``mocornn`` (GRUCell 75 -> 75) runs from
  ``s`` over ``d_t`` and gives the gist that Text2Gist turns into a 15x15 filter (``filter_net``);
- Text2Gist's dynamic filter, as the code computes it: ``image_net(d_t)`` is a 15x15 map, and each
  output pixel is the filter's value there times the sum of the map over the 15x15 window around
  it (the official layer expands every window with identity kernels, multiplies by the filter
  broadcast over the window, and sums);
- image generator: ``fc([motion, s])`` -> 768x4x4, the filtered map down-sampled to 768x4x4,
  concatenated, four nearest-upsample + conv3x3 + BN + ReLU blocks to 96x64x64, conv3x3, tanh.

``variant``:
- ``official_code`` (default, exact): the conditioning-augmentation network ``ca_net`` is defined
  (its parameters count) but its calls are commented out; the descriptions themselves stand in for
  mu and log-variance, so the KL term is a function of the data only, a constant for training.
- ``paper``: exactly those commented-out calls are made: ``ca_net`` draws the per-frame content
  code and the motion image's code by reparametrization (mu, log sigma^2 from one ReLU linear
  layer, as the official ``CA_NET``) and gives the story D its condition (mu of the story code), so
  the paper's KL term trains it. Everything else is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.config import positive
from ganforge.layers.conv import Conv2d
from ganforge.layers.norm import EvalBatchNorm1d, EvalBatchNorm2d


@dataclass
class StoryganModelConfig:
    """Architecture (the official cfg names in comments); also the exported generator's config.json."""

    video_len: int = positive(4)  # VIDEO_LEN: frames per story (checked against the data)
    text_dim: int = positive(75)  # TEXT.DIMENSION: one description vector
    condition_dim: int = positive(75)  # GAN.CONDITION_DIM: ca_net's output, the story D's condition
    noise_dim: int = positive(100)  # GAN.Z_DIM (the yml's top-level Z_DIM: 10 is not read by the model)
    gf_dim: int = positive(192)  # GAN.GF_DIM; G's widest layer has 8x this
    df_dim: int = positive(96)  # GAN.DF_DIM
    label_num: int = positive(15)  # LABEL_NUM: outputs of the image D's category head
    filter_size: int = positive(15)  # Text2Gist's filter and motion image side
    image_size: Literal[64] = 64  # the upsampling stack draws 64x64 frames
    variant: Literal["official_code", "paper"] = "official_code"
    # Sampling in eval mode: `batch` normalizes with the batch's statistics, as the official test
    # loop does (it never calls eval()); `running` uses the running averages.
    eval_bn: Literal["batch", "running"] = "batch"


class GeneratorOutput(NamedTuple):
    images: torch.Tensor  # (N, T, 3, H, W) for stories, (N, 3, H, W) for single frames
    condition: torch.Tensor  # what D is conditioned on (the official ``c_mu`` / ``im_mu``)
    kl_mu: torch.Tensor  # mu and log-variance of the KL term
    kl_logvar: torch.Tensor


def conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return Conv2d(cin, cout, 3, 1, 1, bias=False)


class ConditioningAugmentation(nn.Module):
    """Official ``CA_NET``: mu and log-variance from ReLU(linear(text)), then reparametrization."""

    def __init__(self, text_dim: int, condition_dim: int):
        super().__init__()
        self.condition_dim = condition_dim
        self.fc = nn.Linear(text_dim, condition_dim * 2, bias=True)

    def forward(self, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = F.relu(self.fc(text))
        mu, logvar = x[:, :self.condition_dim], x[:, self.condition_dim:]
        return torch.randn_like(mu) * torch.exp(0.5 * logvar) + mu, mu, logvar


class StoryganGenerator(nn.Module):
    """The official ``StoryGAN`` network: ``forward(descriptions, noise)`` draws stories."""

    needs_descriptions = True  # `ganforge sample` points to `story` instead of feeding it noise alone

    def __init__(self, cfg: StoryganModelConfig):
        super().__init__()
        self.cfg = cfg
        text, ngf = cfg.text_dim, cfg.gf_dim * 8
        batch_stats = cfg.eval_bn == "batch"

        def bn2d(c: int) -> nn.Module:
            return EvalBatchNorm2d(c, batch_stats)

        def up(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), conv3x3(cin, cout), bn2d(cout),
                                 nn.ReLU(True))

        self.recurrent = nn.GRUCell(cfg.noise_dim + text, text)  # motion: [z_t, d_t] -> h_t
        self.mocornn = nn.GRUCell(text, text)  # gist: d_t -> g_t, from the story code
        self.ca_net = ConditioningAugmentation(text, cfg.condition_dim)
        # [motion, content] -> ngf/2 x 4 x 4 (official: Linear to ngf*4*4/2 with BatchNorm1d(ngf*4*2))
        self.fc = nn.Sequential(nn.Linear(2 * text, ngf * 8, bias=False), EvalBatchNorm1d(ngf * 8, batch_stats),
                                nn.ReLU(True))
        self.upsample1 = up(ngf, ngf // 2)  # 8x8
        self.upsample2 = up(ngf // 2, ngf // 4)  # 16x16
        self.upsample3 = up(ngf // 4, ngf // 8)  # 32x32
        self.upsample4 = up(ngf // 8, ngf // 16)  # 64x64
        self.img = nn.Sequential(conv3x3(ngf // 16, 3), nn.Tanh())
        k = cfg.filter_size
        self.filter_net = nn.Sequential(nn.Linear(text, k * k, bias=False), EvalBatchNorm1d(k * k, batch_stats))
        self.image_net = nn.Sequential(nn.Linear(text, k * k, bias=False), EvalBatchNorm1d(k * k, batch_stats))
        # 1 x 15 x 15 -> ngf x 8 x 8 -> ngf/2 x 4 x 4
        self.downsamples = nn.Sequential(
            Conv2d(1, ngf, 3, 2, 1, bias=False), bn2d(ngf), nn.LeakyReLU(0.2, inplace=True),
            Conv2d(ngf, ngf // 2, 4, 2, 1, bias=False), bn2d(ngf // 2), nn.LeakyReLU(0.2, inplace=True))
        # The window sum of the dynamic filter layer (a fixed all-ones kernel: no parameter).
        self.register_buffer("window", torch.ones(1, 1, k, k), persistent=False)

    # ------------------------------------------------------------------------------------------

    def _augment(self, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(code, mu, logvar): ca_net's draw (paper) or the text itself three times (official code)."""
        return self.ca_net(text) if self.cfg.variant == "paper" else (text, text, text)

    def _gist(self, motion: torch.Tensor, initial: torch.Tensor) -> torch.Tensor:
        """``mocornn`` over the frames' descriptions (N, T, D) from ``initial``; (N*T, D)."""
        h, out = initial, []
        for t in range(motion.shape[1]):
            h = self.mocornn(motion[:, t], h)
            out.append(h)
        return torch.stack(out, 1).flatten(0, 1)

    def _motion(self, motion: torch.Tensor, initial: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``recurrent`` over ``[z_t, d_t]`` from ``initial``; (N*T, D)."""
        h, out = initial, []
        for t in range(motion.shape[1]):
            h = self.recurrent(torch.cat([noise[:, t], motion[:, t]], 1), h)
            out.append(h)
        return torch.stack(out, 1).flatten(0, 1)

    def _draw(self, motion_code: torch.Tensor, content_code: torch.Tensor, image_code: torch.Tensor,
              gist: torch.Tensor) -> torch.Tensor:
        """Frames (M, 3, 64, 64) from per-frame codes (M, D)."""
        k, ngf = self.cfg.filter_size, self.cfg.gf_dim * 8
        h = self.fc(torch.cat([motion_code, content_code], 1)).view(-1, ngf // 2, 4, 4)
        m_image = self.image_net(image_code).view(-1, 1, k, k)
        c_filter = self.filter_net(gist).view(-1, 1, k, k)
        # Dynamic filter as the released layer computes it: filter x window sum of the motion image.
        filtered = F.conv2d(m_image, self.window.to(m_image.dtype), padding=k // 2) * c_filter
        h = torch.cat([h, self.downsamples(filtered)], 1)
        h = self.upsample4(self.upsample3(self.upsample2(self.upsample1(h))))
        return self.img(h)

    def story(self, descriptions: torch.Tensor, noise: torch.Tensor) -> GeneratorOutput:
        """Official ``sample_videos``: descriptions (N, T, text_dim), noise (N, T, noise_dim) ->
        stories (N, T, 3, 64, 64) and the story D's condition."""
        n, t = descriptions.shape[:2]
        content = descriptions.mean(1)  # the story code
        story_mu = self._augment(content)[1]
        gist = self._gist(descriptions, content)
        content_code = self._augment(content.repeat_interleave(t, 0))[0]
        flat = descriptions.flatten(0, 1)
        image_code, m_mu, m_logvar = self._augment(flat)
        motion_code = self._motion(descriptions, descriptions[:, 0], noise)
        frames = self._draw(motion_code, content_code, image_code, gist)
        return GeneratorOutput(frames.view(n, t, *frames.shape[1:]), story_mu, m_mu, m_logvar)

    def image(self, description: torch.Tensor, content: torch.Tensor, noise: torch.Tensor) -> GeneratorOutput:
        """Official ``sample_images``: one frame per row from its description (N, text_dim), the mean
        of its story's descriptions (N, text_dim) and noise (N, noise_dim)."""
        image_code, mu, logvar = self._augment(description)
        content_code = self._augment(content)[0]
        gist = self._gist(description[:, None], content)
        motion_code = self._motion(image_code[:, None], image_code, noise[:, None])
        frames = self._draw(motion_code, content_code, image_code, gist)
        return GeneratorOutput(frames, mu, mu, logvar)

    def forward(self, descriptions: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Stories (N, T, 3, 64, 64) in [-1, 1] from descriptions (N, T, text_dim) and noise (N, T, noise_dim)."""
        return self.story(descriptions, noise).images

    def make_inputs(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Example inputs for export and shape checks: random 0/1 descriptions and noise for ``n``
        stories (real descriptions come from data or a file: ``ganforge story``)."""
        c = self.cfg
        descriptions = torch.randint(0, 2, (n, c.video_len, c.text_dim), generator=generator).float()
        return descriptions, torch.randn(n, c.video_len, c.noise_dim, generator=generator)


class ConditionalLogits(nn.Module):
    """Official ``D_GET_LOGITS``: conv3x3(features) * conv3x3(condition tiled 4x4), then a 4x4 conv."""

    def __init__(self, ndf: int, cond_dim: int, video_len: int = 1):
        super().__init__()
        self.cond_dim = cond_dim
        self.conv1 = nn.Sequential(conv3x3(ndf * 8 * video_len, ndf * 8), nn.BatchNorm2d(ndf * 8),
                                   nn.LeakyReLU(0.2, inplace=True))
        self.conv2 = nn.Sequential(Conv2d(ndf * 8, 1, kernel_size=4, stride=4), nn.Sigmoid())
        self.convc = nn.Sequential(conv3x3(cond_dim, ndf * 8), nn.BatchNorm2d(ndf * 8),
                                   nn.LeakyReLU(0.2, inplace=True))

    def logits(self, features: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid scores (N,): the losses use these (BCE with logits, stable in low precision)."""
        c = self.convc(condition.reshape(-1, self.cond_dim, 1, 1).repeat(1, 1, 4, 4))
        # PyTorch 2.14's CPU bf16 convolution is wrong when the input or the weight is channels_last
        # and the kernel and stride both equal the input size (this 4x4 -> 1x1 conv), at some
        # widths (8ndf of 8-28: errors above 100%). Both are tiny, so contiguous copies cost nothing.
        head = self.conv2[0]
        h = (self.conv1(features) * c).contiguous()
        return F.conv2d(h, head.weight.contiguous(), head.bias, stride=head.stride).view(-1)

    def forward(self, features: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Probabilities (N,), as the official module returns them."""
        return torch.sigmoid(self.logits(features, condition))


def image_encoder(ndf: int) -> nn.Sequential:
    """3 x 64 x 64 -> 8ndf x 4 x 4: four stride-2 4x4 convs, BN after all but the first, LeakyReLU 0.2."""
    layers: list[nn.Module] = [Conv2d(3, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
    for cin, cout in ((ndf, ndf * 2), (ndf * 2, ndf * 4), (ndf * 4, ndf * 8)):
        layers += [Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, inplace=True)]
    return nn.Sequential(*layers)


class ImageDiscriminator(nn.Module):
    """Official ``D_IMG``: frame features, the description-conditioned logit and the category head."""

    def __init__(self, cfg: StoryganModelConfig):
        super().__init__()
        ndf = cfg.df_dim
        self.encode_img = image_encoder(ndf)
        self.cate_classify = Conv2d(ndf * 8, cfg.label_num, 4, 4, 1, bias=False)
        self.get_cond_logits = ConditionalLogits(ndf, cfg.text_dim, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, 64, 64) -> features (N, 8ndf, 4, 4)."""
        return self.encode_img(images)

    def categories(self, features: torch.Tensor) -> torch.Tensor:
        """Multi-label category logits (N, label_num)."""
        return self.cate_classify(features).flatten(1)


class StoryDiscriminator(nn.Module):
    """Official ``D_STY``: every frame encoded, the T feature maps stacked along channels, then a
    logit conditioned on the story code."""

    def __init__(self, cfg: StoryganModelConfig):
        super().__init__()
        ndf = cfg.df_dim
        self.encode_img = image_encoder(ndf)
        self.get_cond_logits = ConditionalLogits(ndf, cfg.condition_dim, cfg.video_len)

    def forward(self, stories: torch.Tensor) -> torch.Tensor:
        """(N, T, 3, 64, 64) -> (N, T*8ndf, 4, 4), frame-major channels as the official reshape."""
        n, t = stories.shape[:2]
        features = self.encode_img(stories.flatten(0, 1))
        return features.reshape(n, t * features.shape[1], *features.shape[2:])


def init_weights(module: nn.Module) -> None:
    """Official ``weights_init``: convs and linears N(0, 0.02), BN gains N(1, 0.02), biases 0; the GRU
    cells keep PyTorch's default initialization (the official function does not match them)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
