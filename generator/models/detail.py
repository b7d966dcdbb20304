"""The default model's detail stage: a small convolutional flow model that finishes the
transformer's image at full resolution, over the pixels of the layout's fine tokens.

Why a second network: the transformer maps each 16 px token (768 values) through a 256-wide
hidden state, so its prediction cannot carry the finest octave of a photograph (0.25-0.5
cycles/px; measured on held-out crops, even at t = 0.01 it returns only 0.4 of that octave's
power); its images are as if blurred by a Gaussian of about 1 px, with steps at token borders and
some tokens of speckle. Fine detail is local: a convolutional net has a few tens of pixels of
context at every pixel and no token borders. So a cascade (as in super-resolution cascades):
the transformer samples the image on the gaze-dependent token layout, then this net samples the
image's *detail* conditioned on it. It was trained on photographs degraded as the transformer
degrades them (:func:`degrade`: blur, token offsets, token speckle), to give back the photograph.
In a foveated image, level-1 tokens get the stage at full resolution; coarser tokens get the
cheaper periphery stage (:mod:`generator.models.periphery`), which was trained to give them the
detail this stage gives the twin (this stage can also reach level-2 tokens, reduced to their
resolution: :func:`add_layout_detail`). The
full-resolution twin has only fine tokens, so it gets the stage everywhere, from the same noise,
so the two match in the fovea.

The flow: the detail is ``r = K (x - c)`` (``K = residual_scale``, the photograph ``x`` minus
its degraded version ``c``), ``z_t = (1 - t) r + t noise``; the net predicts ``r`` from ``(z_t,
c, t)`` (x-prediction, velocity loss, as the transformer); sampling takes ``steps`` Euler steps
from pure noise (the seed's own detail noise) with the schedule warped by ``shift``. It works at
half resolution on pixel-unshuffled input, with a FiLM of log t in each residual block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from generator.layout import TokenLayout
from generator.models.config_record import ConfigRecord
from generator.tokens import pack, unpack

#: Coarsest token level the detail stage reaches. Level 2 (the stage reduced to its tokens'
#: resolution, as the twin reduced to the layout has it) was measured: 0.03 JOD closer to the
#: twin at s = 0.5, but a 512 px image at s = 1 then took 0.48 s instead of 0.3 s, over the
#: 0.4 s target, because the level-2 ring covers most of a small image. Level 1 is the default.
MAX_LEVEL = 1

#: Context in pixels around the fine region that the net reads: more than its receptive field
#: (12 convolutions at half resolution: 24 px), so a box computes what the whole image would.
CONTEXT_PX = 32


@dataclass(frozen=True)
class DetailConfig(ConfigRecord):
    """Architecture, training degradations and sampler of the detail stage.

    Attributes:
        channels, blocks: width and residual blocks of the half-resolution conv net.
        residual_scale: K, the factor from image detail to the flow's unit-variance space.
        blur_px: (low, high) Gaussian blur sigma of the degraded training input, px.
        offset_std: (low, high) std of the per-token offsets and ramps (seams), in [-1, 1] units.
        speckle_fraction, speckle_std: fraction of tokens given speckle and its amplitude range
            (speckle: noise in 4 px blocks, the scene's pixel size, plus finer noise).
        token_px: token side for the offsets and speckle (the transformer's).
        token_phase: the net also sees each pixel's phase inside its token (sin/cos along rows
            and columns), so it can tell token borders, where the transformer leaves steps.
        t_mean, t_std: logit-normal training times (1 = noise); t_min: the x -> v clamp.
        steps, shift: the sampler's Euler steps and schedule warp (< 1: more steps at low noise).
    """

    channels: int = 48
    blocks: int = 5
    residual_scale: float = 8.0
    blur_px: tuple[float, float] = (0.6, 1.6)
    offset_std: tuple[float, float] = (0.0, 0.03)
    speckle_fraction: tuple[float, float] = (0.0, 0.15)
    speckle_std: tuple[float, float] = (0.02, 0.2)
    token_px: int = 16
    token_phase: bool = True
    t_mean: float = 0.0
    t_std: float = 1.0
    t_min: float = 0.05
    steps: int = 4
    shift: float = 0.4


class DetailNet(torch.nn.Module):
    """(z_t, condition image c, t) -> predicted detail r, all (B, 3, H, W) with H, W even;
    ``c`` in [-1, 1]."""

    def __init__(self, config: DetailConfig):
        super().__init__()
        self.config = config
        c, n = config.channels, config.blocks
        inputs = 4 * (6 + (4 if config.token_phase else 0))  # (z, c[, phase]) x 2 x 2
        self.inp = torch.nn.Conv2d(inputs, c, 3, padding=1)
        self.time = torch.nn.Sequential(
            torch.nn.Linear(16, c), torch.nn.GELU(), torch.nn.Linear(c, 2 * c * n)
        )
        self.convs = torch.nn.ModuleList(torch.nn.Conv2d(c, c, 3, padding=1) for _ in range(2 * n))
        self.out = torch.nn.Conv2d(c, 12, 3, padding=1)
        torch.nn.init.zeros_(self.out.weight)  # predicts no detail at initialisation
        torch.nn.init.zeros_(self.out.bias)

    def forward(self, z: torch.Tensor, cond: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        c, n = self.config.channels, self.config.blocks
        log_t = torch.log(t.float().clamp_min(1e-6))[:, None]
        freqs = 0.5 + 0.5 * torch.arange(8, device=z.device, dtype=torch.float32)[None]
        embedding = torch.cat([torch.sin(log_t * freqs), torch.cos(log_t * freqs)], 1)
        film = self.time(embedding.to(self.time[0].weight.dtype))
        film = film.to(z.dtype).view(-1, n, 2, c, 1, 1)
        planes = [z, cond]
        if self.config.token_phase:
            planes.append(token_phase(*z.shape[-2:], self.config.token_px, like=z))
        h = self.inp(F.pixel_unshuffle(torch.cat(planes, 1), 2))
        for i in range(n):
            r = F.gelu(self.convs[2 * i](h)) * (1 + film[:, i, 0]) + film[:, i, 1]
            h = h + self.convs[2 * i + 1](F.gelu(r))
        return F.pixel_shuffle(self.out(F.gelu(h)), 2)


def token_phase(height: int, width: int, token_px: int, *, like: torch.Tensor) -> torch.Tensor:
    """(B, 4, H, W): sin and cos of 2 pi (x + 0.5) / token_px along rows and along columns (the
    image's top-left pixel starts a token)."""
    kw = dict(device=like.device, dtype=like.dtype)
    ang_r = 2 * math.pi * (torch.arange(height, **kw) % token_px + 0.5) / token_px
    ang_c = 2 * math.pi * (torch.arange(width, **kw) % token_px + 0.5) / token_px
    rows = torch.stack([ang_r.sin(), ang_r.cos()])[:, :, None].expand(2, height, width)
    cols = torch.stack([ang_c.sin(), ang_c.cos()])[:, None, :].expand(2, height, width)
    return torch.cat([rows, cols])[None].expand(like.shape[0], -1, -1, -1)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian blur of each image of x (B, C, H, W) by its own sigma (B,) px."""
    radius = 4
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32, device=x.device)
    kernels = torch.exp(-(offsets[None] ** 2) / (2 * sigma.float()[:, None] ** 2))
    kernels = (kernels / kernels.sum(1, keepdim=True)).to(x.dtype)  # (B, 9)
    b, c, h, w = x.shape
    flat = F.pad(x.reshape(1, b * c, h, w), (radius,) * 4, mode="reflect")
    k = kernels.repeat_interleave(c, 0)
    flat = F.conv2d(flat, k[:, None, None, :], groups=b * c)
    flat = F.conv2d(flat, k[:, None, :, None], groups=b * c)
    return flat.reshape(b, c, h, w)


def degrade(x: torch.Tensor, config: DetailConfig, *, generator: torch.Generator) -> torch.Tensor:
    """Photographs x (B, 3, H, W) in [-1, 1] made to look like the transformer's images: blurred,
    each token shifted by its own offset and tilted by its own ramp (steps at token borders), and
    some tokens speckled."""
    b, _, h, w = x.shape
    p = config.token_px

    def uniform(bounds, *shape):
        low, high = bounds
        return low + (high - low) * torch.rand(*shape, generator=generator)

    out = gaussian_blur(x, uniform(config.blur_px, b).to(x.device))
    grid = (b, 1, h // p, w // p)
    up = lambda v, k=p: F.interpolate(v, scale_factor=k, mode="nearest")  # noqa: E731
    std = uniform(config.offset_std, b, 1, 1, 1)
    ramp = (torch.arange(p, dtype=torch.float32) + 0.5) / p - 0.5  # -0.5 .. 0.5 across a token
    ramp_r = ramp.repeat(h // p)[None, None, :, None]
    ramp_c = ramp.repeat(w // p)[None, None, None, :]
    steps = std * (
        up(torch.randn(*grid, generator=generator))
        + up(torch.randn(*grid, generator=generator)) * ramp_r
        + up(torch.randn(*grid, generator=generator)) * ramp_c
    )
    chosen = torch.rand(*grid, generator=generator) < uniform(config.speckle_fraction, b, 1, 1, 1)
    amp = uniform(config.speckle_std, b, 1, 1, 1) * chosen
    blocks = up(torch.randn(b, 1, h // 4, w // 4, generator=generator), 4)
    speckle = blocks + 0.5 * torch.randn(b, 1, h, w, generator=generator)
    speckle = speckle + 0.3 * torch.randn(b, 3, h, w, generator=generator)
    speckle = gaussian_blur(speckle, torch.full((b,), 0.6))
    return out + (steps + up(amp) * speckle).to(x.device, x.dtype)


def detail_loss(net: DetailNet, x: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
    """Velocity MSE of one batch of photographs x (B, 3, H, W) in [-1, 1] (H, W multiples of
    ``token_px``): their degraded versions condition, their detail is the flow's data. ``net``
    may be wrapped for distributed training (its ``module`` is then the net)."""
    cfg = getattr(net, "module", net).config
    cond = degrade(x, cfg, generator=generator)
    r = cfg.residual_scale * (x - cond)
    u = torch.randn(x.shape[0], generator=generator)
    t = torch.sigmoid(cfg.t_mean + cfg.t_std * u).to(x.device)
    noise = torch.randn(x.shape, generator=generator).to(x.device, x.dtype)
    tb = t[:, None, None, None]
    z = (1 - tb) * r + tb * noise
    denom = tb.clamp_min(cfg.t_min)
    return torch.mean(((net(z, cond, t) - r) / denom) ** 2)


def sample_times(config: DetailConfig) -> np.ndarray:
    """(steps + 1,) times from 1 to 0, warped by ``t = shift u / (1 + (shift - 1) u)``."""
    u = np.linspace(1.0, 0.0, config.steps + 1)
    return config.shift * u / (1 + (config.shift - 1) * u)


def fine_pixels(layout: TokenLayout, *, max_level: int = 1) -> np.ndarray:
    """(H, W) bool: the pixels of the layout's tokens of level <= ``max_level``."""
    p = layout.token_px
    return np.kron(layout.level_map() <= max_level, np.ones((p, p), dtype=bool))


@torch.no_grad()
def add_layout_detail(
    net: DetailNet,
    image: torch.Tensor,
    layout: TokenLayout,
    *,
    noise: torch.Tensor,
    max_level: int = MAX_LEVEL,
) -> torch.Tensor:
    """The detail stage on a generated image (1, 3, H, W) for its layout: level-1 tokens get it
    at full resolution; tokens up to ``max_level`` get it reduced to the resolution they carry
    (the layout's own pack and unpack), as the full-resolution twin reduced to the layout would
    have it; coarser tokens are left as they are."""
    reach = fine_pixels(layout, max_level=max_level)
    detailed = add_detail(net, image, where=reach, noise=noise)
    if max_level == 1 or (layout.levels == 1).all():
        return detailed
    p = layout.token_px
    reduced = unpack(pack(detailed, layout, p=p), layout, p=p)
    fine = torch.from_numpy(fine_pixels(layout)).to(image.device)
    mid = torch.from_numpy(reach).to(image.device)
    return torch.where(fine, detailed, torch.where(mid, reduced, image))


def detail_noise(seed: int, *, height: int, width: int) -> torch.Tensor:
    """(1, 3, H, W) the seed's noise for the detail stage: one full-resolution draw from its own
    stream (not the transformer's), so a foveated image and its twin get the same detail."""
    stream = int(np.random.SeedSequence([int(seed), 0xDE7A11]).generate_state(1)[0])
    g = torch.Generator().manual_seed(stream)
    return torch.randn(1, 3, height, width, generator=g)


@torch.no_grad()
def add_detail(
    net: DetailNet, image: torch.Tensor, *, where: np.ndarray, noise: torch.Tensor
) -> torch.Tensor:
    """The detail stage on ``image`` (1, 3, H, W) in [-1, 1]: at the pixels ``where`` (H, W)
    bool, the image plus detail sampled from ``noise`` (1, 3, H, W) given the image; the rest of
    the image is returned unchanged. H and W are whole tokens. Only the box around ``where``
    (plus :data:`CONTEXT_PX`) is computed."""
    if not where.any():
        return image
    box = _box(where, token_px=net.config.token_px)
    rows, cols = slice(box[0], box[1]), slice(box[2], box[3])
    # Channels-last: oneDNN's convolutions run about 1.6x faster on this CPU (same values).
    cond = image[..., rows, cols].contiguous(memory_format=torch.channels_last)
    z = noise[..., rows, cols].to(image.device, image.dtype)
    z = z.contiguous(memory_format=torch.channels_last)
    cfg = net.config
    times = sample_times(cfg)
    for t, t_next in zip(times[:-1], times[1:], strict=True):
        t_vec = torch.full((z.shape[0],), float(t), device=z.device)
        r_hat = net(z, cond, t_vec)
        z = r_hat + (float(t_next) / float(t)) * (z - r_hat)
    inside = torch.from_numpy(where[rows, cols]).to(image.device)
    out = image.clone()
    finished = (cond + z / cfg.residual_scale).clamp(-1, 1)
    out[..., rows, cols] = torch.where(inside, finished, cond)
    return out


def _box(where: np.ndarray, *, token_px: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of ``where``'s bounding box grown by CONTEXT_PX, on token
    borders (the net's token phase starts at the box's corner; the image is whole tokens) and
    clipped to the image."""
    height, width = where.shape
    ys, xs = np.nonzero(where)

    def down(v: int) -> int:
        return max(0, v) // token_px * token_px

    def up(v: int, limit: int) -> int:
        return min(limit, -(-v // token_px) * token_px)

    return (
        down(int(ys.min()) - CONTEXT_PX),
        up(int(ys.max()) + 1 + CONTEXT_PX, height),
        down(int(xs.min()) - CONTEXT_PX),
        up(int(xs.max()) + 1 + CONTEXT_PX, width),
    )
