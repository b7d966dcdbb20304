"""The default model's periphery stage: detail for the coarse tokens of a foveated image, from
the detail stage's noise, in one pass of a small convolutional net.

Why: the detail stage (:mod:`generator.models.detail`) runs on level-1 tokens only, so a foveated
image's periphery keeps the blur of its coarse tokens, while the full-resolution twin has detail
there, drawn from the seed's detail noise. Measured on held-out scenes (1024 px, s = 0.5), running
the detail stage over the whole foveated image brings it 0.14 JOD closer to its twin, and nearly
all of that is lost when its noise is not the twin's (+0.01): what counts is detail that agrees
with the twin's, not detail as such. But the detail stage costs 2.6 s over a 1024 px image on this
CPU. This net gets most of it (at 1024 px: JOD 9.67 at s = 0.5, 9.56 at s = 1 in
``fovea bench quality``) for about 0.1 s: given the foveated image, each pixel's token level and
the seed's detail noise, it predicts the full-resolution twin (foveated post-training of the
detail stage, as the transformer's LoRA is of the transformer). It is trained by regression on
pairs that the shipped pipeline generates from training photographs
(:mod:`generator.training.periphery_pairs`: a foveated image before its detail stage, at a random
gaze and strength, and its twin), on crops at any pixel offset, with a penalty on steps at token
borders (:func:`seam_excess`): the twin has some, and the net would otherwise copy them.

Its trunk works at 1/``factor`` resolution on pixel-unshuffled input (noise, image, log2 level);
a small full-resolution head adds the trunk's features, upsampled bilinearly, to a conv of the
same inputs at each pixel and predicts ``K (twin - image)`` (``K = residual_scale``); its output
layer starts at zero (no change).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from generator.layout import TokenLayout
from generator.models.config_record import ConfigRecord


@dataclass(frozen=True)
class PeripheryConfig(ConfigRecord):
    """Architecture of the periphery stage.

    Attributes:
        channels, blocks: width and residual blocks of the conv net.
        factor: the trunk works at 1/factor resolution (pixel-unshuffled input).
        head_channels: width of the full-resolution head: a 3x3 conv of the noise, the image
            and the level plus the trunk's features (1x1, upsampled bilinearly), then the output
            conv. (A pixel-shuffle output instead drew a lattice with the factor's period in
            the far periphery.)
        residual_scale: K, from image units ([-1, 1]) to the net's output units.
        seam_weight: training: weight of the seam penalty beside the regression loss (the twin
            has steps at the transformer's token borders; without it the net learned to draw
            them into the periphery, seam ratio 1.17 at s = 1).
        token_px: the transformer's token side, where the seam penalty looks for steps.
    """

    channels: int = 32
    blocks: int = 2
    factor: int = 4
    head_channels: int = 8
    residual_scale: float = 8.0
    seam_weight: float = 1.0
    token_px: int = 16


class PeripheryNet(torch.nn.Module):
    """(noise, image, levels) -> the image with the periphery's detail, all (B, *, H, W) with H,
    W multiples of ``factor``; ``levels`` (B, 1, H, W) is each pixel's token level (1, 2, 4, ...)."""

    def __init__(self, config: PeripheryConfig):
        super().__init__()
        self.config = config
        c, f = config.channels, config.factor
        planes = 3 + 3 + 1  # noise, image, log2 level
        self.inp = torch.nn.Conv2d(planes * f * f, c, 3, padding=1)
        self.convs = torch.nn.ModuleList(
            torch.nn.Conv2d(c, c, 3, padding=1) for _ in range(2 * config.blocks)
        )
        hc = config.head_channels
        self.mid = torch.nn.Conv2d(c, hc, 1)
        self.head = torch.nn.Conv2d(planes, hc, 3, padding=1)
        self.out = torch.nn.Conv2d(hc, 3, 3, padding=1)
        torch.nn.init.zeros_(self.out.weight)  # no change at initialisation
        torch.nn.init.zeros_(self.out.bias)

    def forward(
        self, noise: torch.Tensor, image: torch.Tensor, levels: torch.Tensor
    ) -> torch.Tensor:
        cfg = self.config
        log_level = torch.log2(levels.to(image.dtype)) / 3
        planes = torch.cat([noise, image, log_level], 1)
        h = self.inp(F.pixel_unshuffle(planes, cfg.factor))
        for i in range(cfg.blocks):
            h = h + self.convs[2 * i + 1](F.gelu(self.convs[2 * i](F.gelu(h))))
        up = F.interpolate(
            self.mid(F.gelu(h)), scale_factor=cfg.factor, mode="bilinear", align_corners=False
        )
        return image + self.out(F.gelu(up + self.head(planes))) / cfg.residual_scale


def level_pixels(layout: TokenLayout) -> np.ndarray:
    """(H, W) float32: the level of the token that covers each pixel."""
    cells = layout.level_map().astype(np.float32)
    return np.kron(cells, np.ones((layout.token_px, layout.token_px), dtype=np.float32))


@torch.no_grad()
def add_periphery_detail(
    net: PeripheryNet,
    image: torch.Tensor,
    layout: TokenLayout,
    *,
    noise: torch.Tensor,
    fovea: torch.Tensor,
) -> torch.Tensor:
    """The periphery stage: ``image`` (1, 3, H, W) in [-1, 1] is the transformer's refined image
    before the detail stage (what the net was trained on), ``fovea`` the same image after it;
    pixels of tokens of level >= 2 get the net's output, the rest come from ``fovea``.
    ``noise``: the seed's detail noise (:func:`generator.models.detail.detail_noise`)."""
    if (layout.levels == 1).all():
        return fovea  # a full-resolution twin: nothing coarse
    levels = torch.from_numpy(level_pixels(layout)).to(image.device, image.dtype)[None, None]
    coarse = levels >= 2
    nhwc = torch.channels_last  # oneDNN's convolutions run faster so on CPUs (same values)
    noise = noise.to(image.device, image.dtype).contiguous(memory_format=nhwc)
    out = net(noise, image.contiguous(memory_format=nhwc), levels.contiguous(memory_format=nhwc))
    out = out.clamp(-1, 1)
    return torch.where(coarse, out, fovea)


def periphery_loss(
    net: PeripheryNet,
    noise: torch.Tensor,
    image: torch.Tensor,
    levels: torch.Tensor,
    twin: torch.Tensor,
    *,
    origin: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean squared error to the twin, in the net's output units, over pixels of level >= 2,
    plus ``seam_weight`` times the output's seam excess (:func:`seam_excess`; needs each crop's
    ``origin``, (B, 2) row and column in its image). ``net`` may be wrapped for distributed
    training (its ``module`` is then the net)."""
    cfg = getattr(net, "module", net).config
    out = net(noise, image, levels)
    weight = (levels >= 2).to(image.dtype).expand_as(image)
    err = ((out - twin) * cfg.residual_scale) ** 2
    loss = (err * weight).sum() / weight.sum().clamp_min(1.0)
    if origin is None or cfg.seam_weight == 0:
        return loss
    return loss + cfg.seam_weight * seam_excess(out, origin, token_px=cfg.token_px).clamp_min(0)


def seam_excess(images: torch.Tensor, origin: torch.Tensor, *, token_px: int) -> torch.Tensor:
    """Mean |luma gradient| across token borders over that at mid-token offsets, minus 1, for a
    batch of crops (B, 3, H, W) whose top-left pixels sit at ``origin`` (B, 2) in their images
    (the differentiable twin of :func:`generator.evaluation.detail_metrics.seam_ratio`)."""
    luma = torch.tensor([0.2126, 0.7152, 0.0722], device=images.device, dtype=images.dtype)
    y = torch.einsum("bchw,c->bhw", images, luma)
    sums = {"border": 0.0, "mid": 0.0}
    counts = {"border": 0.0, "mid": 0.0}
    for axis, start in ((2, origin[:, 1]), (1, origin[:, 0])):  # columns, then rows
        grad = (y.diff(dim=axis)).abs()
        n = grad.shape[axis]
        # Gradient index j lies between pixels j and j + 1 of the crop.
        phase = (start[:, None] + torch.arange(n, device=y.device)[None] + 1) % token_px
        for name, value in (("border", 0), ("mid", token_px // 2)):
            mask = (phase == value).to(y.dtype)
            shape = (-1, 1, n) if axis == 2 else (-1, n, 1)
            mask = mask.view(shape).expand_as(grad)
            sums[name] = sums[name] + (grad * mask).sum()
            counts[name] = counts[name] + mask.sum()
    border = sums["border"] / counts["border"].clamp_min(1)
    mid = sums["mid"] / counts["mid"].clamp_min(1)
    return border / mid.clamp_min(1e-6) - 1
