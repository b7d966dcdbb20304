"""The embedded default model: a scene-conditioned pixel-space Flux transformer (its weights' files,
saving and loading are :mod:`generator.models.weights_io`'s).

The model generates the *detail* of a natural image from its low-resolution **scene** (the image
area-downsampled by ``scene_factor``, :mod:`generator.scene`). A diffusers
``FluxTransformer2DModel`` with a small config works in pixel space: each fine token is a 16 x 16
RGB patch (768 values). Its input is the noisy patch concatenated with the same patch of the
bicubic-upsampled scene, packed on the same token layout (``scene_conditioning = "channels"``:
the token count stays that of the layout), or, for comparison, the scene enters as reference tokens
in the joint attention (``"reference"``, as FLUX.2 / Kontext take reference images). The network
predicts the clean patch as a residual on the upsampled scene (x-prediction, "Back to Basics", Li &
He 2025; the output layer starts at zero, so an untrained model returns the bicubic scene).

A per-token linear output head predicts each 16 px patch on its own, which leaves seams at token
borders; a small convolutional :class:`Refiner` over the unpacked image (told where the borders
are) removes them once, after sampling, at full resolution. The transformer cannot carry the
finest octave of a photograph through its 256-wide tokens; the detail stage
(:mod:`generator.models.detail`), a small convolutional flow model conditioned on the
transformer's image, samples it over the fine tokens' pixels; the periphery stage
(:mod:`generator.models.periphery`) gives the coarse tokens' pixels the detail that the
full-resolution twin has there, from the same noise, in one cheap pass (:meth:`SceneEncoder.finish`).

Weights ship as safetensors files in ``generator/models/weights/``: the base model, a LoRA adapter
from foveated post-training, merged at load time, and the detail and periphery stages
(:mod:`generator.models.weights_io`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from generator.denoiser import Conditioning, TokenPositions, layout_ids, velocity_from_x
from generator.errors import FoveaError
from generator.layout import TokenLayout
from generator.models.config_record import ConfigRecord
from generator.models.detail import DetailNet, add_layout_detail, detail_noise
from generator.models.periphery import PeripheryNet, add_periphery_detail
from generator.scene import upsample_scene
from generator.tokens import pack

SceneConditioning = Literal["channels", "reference"]


@dataclass(frozen=True)
class ModelConfig(ConfigRecord):
    """Architecture of the default model (stored beside the weights).

    Attributes:
        patch_px: pixels per fine token side.
        heads, head_dim: attention heads and their width (hidden = heads * head_dim).
        double_blocks, single_blocks: Flux double-stream and single-stream blocks.
        joint_dim, pooled_dim: widths of the context token(s) and pooled vector.
        rope_axes: rotary dims for (log2 level, row, col); they sum to head_dim.
        scene_factor: output pixels per scene pixel (4: a 256 px scene for a 1024 px image).
        scene_conditioning: ``channels`` (scene patch concatenated to each token) or
            ``reference`` (scene tokens at level ``scene_factor`` in the joint attention).
        refiner_channels: hidden channels of the convolutional output refiner (0: none).
        steps, shift, sampler: default sampler settings (``sampler``: ``euler`` or
            ``renoise``, :mod:`generator.sampler`).
    """

    patch_px: int = 16
    heads: int = 4
    head_dim: int = 64
    double_blocks: int = 1
    single_blocks: int = 6
    joint_dim: int = 64
    pooled_dim: int = 64
    rope_axes: tuple[int, int, int] = (8, 28, 28)
    scene_factor: int = 4
    scene_conditioning: SceneConditioning = "channels"
    refiner_channels: int = 16
    steps: int = 6
    shift: float = 1.0
    sampler: str = "euler"

    @property
    def token_dim(self) -> int:
        """Values per token: 3 * patch_px**2."""
        return 3 * self.patch_px**2


class Refiner(torch.nn.Module):
    """Residual 3 x 3 conv net over the unpacked image: removes token-border seams.

    Input: the image, the upsampled scene and the phase of each pixel inside its token
    (sin/cos of 2 pi (x + 0.5) / patch_px along rows and columns), so the net knows where the
    borders are. The last layer starts at zero (identity at initialisation).
    """

    def __init__(self, *, patch_px: int, channels: int):
        super().__init__()
        self.patch_px = patch_px
        self.conv1 = torch.nn.Conv2d(10, channels, 3, padding=1, padding_mode="replicate")
        self.conv2 = torch.nn.Conv2d(channels, 3, 3, padding=1, padding_mode="replicate")
        torch.nn.init.zeros_(self.conv2.weight)
        torch.nn.init.zeros_(self.conv2.bias)

    def phase(self, height: int, width: int, *, device, dtype) -> torch.Tensor:
        """(1, 4, H, W) token-phase features."""
        p = self.patch_px
        ang_r = 2 * np.pi * (torch.arange(height, device=device, dtype=dtype) % p + 0.5) / p
        ang_c = 2 * np.pi * (torch.arange(width, device=device, dtype=dtype) % p + 0.5) / p
        r = torch.stack([ang_r.sin(), ang_r.cos()])[:, :, None].expand(2, height, width)
        c = torch.stack([ang_c.sin(), ang_c.cos()])[:, None, :].expand(2, height, width)
        return torch.cat([r, c])[None]

    def forward(self, image: torch.Tensor, scene_up: torch.Tensor) -> torch.Tensor:
        """image, scene_up: (B, 3, H, W) in [-1, 1] -> (B, 3, H, W)."""
        b, _, h, w = image.shape
        phase = self.phase(h, w, device=image.device, dtype=image.dtype).expand(b, -1, -1, -1)
        hidden = F.gelu(self.conv1(torch.cat([image, scene_up, phase], dim=1)))
        return image + self.conv2(hidden)


class DefaultModel(torch.nn.Module):
    """Transformer + context token + refiner.

    ``forward`` takes noisy tokens and the scene's tokens on the same layout (B, N, 768), ids
    (N, 3), t (B,) in [0, 1] (1 = noise) and returns the predicted clean tokens (B, N, 768).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        from diffusers import FluxTransformer2DModel

        self.config_ = config
        d = config.token_dim
        channels = config.scene_conditioning == "channels"
        self.transformer = FluxTransformer2DModel(
            patch_size=1,
            in_channels=2 * d if channels else d,
            out_channels=d,
            num_layers=config.double_blocks,
            num_single_layers=config.single_blocks,
            attention_head_dim=config.head_dim,
            num_attention_heads=config.heads,
            joint_attention_dim=config.joint_dim if channels else d,
            pooled_projection_dim=config.pooled_dim,
            axes_dims_rope=config.rope_axes,
        )
        torch.nn.init.zeros_(self.transformer.proj_out.weight)  # start as the bicubic scene
        torch.nn.init.zeros_(self.transformer.proj_out.bias)
        self.context = torch.nn.Parameter(torch.randn(1, 1, config.joint_dim) * 0.5)
        self.pooled = torch.nn.Parameter(torch.randn(1, config.pooled_dim) * 0.5)
        self.refiner = None
        if config.refiner_channels:
            self.refiner = Refiner(patch_px=config.patch_px, channels=config.refiner_channels)

    def forward(self, tokens, *, scene_tokens, img_ids, t, reference=None, reference_ids=None):
        """tokens, scene_tokens: (B, N, D); img_ids (N, 3); t (B,); ``reference`` (B, M, D) and
        ``reference_ids`` (M, 3) for ``reference`` conditioning. Returns clean tokens (B, N, D)."""
        b = tokens.shape[0]
        if self.config_.scene_conditioning == "channels":
            hidden = torch.cat([tokens, scene_tokens], dim=-1)
            context = self.context.expand(b, -1, -1).to(tokens.dtype)
            txt_ids = torch.zeros(1, 3, device=tokens.device)
        else:
            hidden, context, txt_ids = tokens, reference, reference_ids
        residual = self.transformer(
            hidden_states=hidden,
            encoder_hidden_states=context,
            pooled_projections=self.pooled.expand(b, -1).to(tokens.dtype),
            timestep=t,
            img_ids=img_ids,
            txt_ids=txt_ids,
            return_dict=False,
        )[0]
        return scene_tokens + residual

    def refine(self, image: torch.Tensor, scene_up: torch.Tensor) -> torch.Tensor:
        """The refiner on an unpacked image (identity when the model has none)."""
        return image if self.refiner is None else self.refiner(image, scene_up)


def reference_layout(layout: TokenLayout, factor: int) -> TokenLayout:
    """All level-``factor`` blocks of ``layout``'s grid: where reference scene tokens sit."""
    rows, cols = np.meshgrid(
        np.arange(0, layout.grid_h, factor), np.arange(0, layout.grid_w, factor), indexing="ij"
    )
    rows, cols = rows.ravel(), cols.ravel()
    return TokenLayout(
        layout.grid_h, layout.grid_w, layout.token_px, rows, cols, np.full_like(rows, factor)
    )


@dataclass
class SceneInputs:
    """What the model needs besides the noisy tokens, for one layout.

    Attributes:
        scene_up: (B, 3, H, W) the scene bicubic-upsampled to the output size.
        scene_tokens: (B, N, D) ``scene_up`` packed on the layout.
        reference, reference_ids: reference tokens (B, M, D) and ids (M, 3), or None.
    """

    scene_up: torch.Tensor
    scene_tokens: torch.Tensor
    reference: torch.Tensor | None = None
    reference_ids: torch.Tensor | None = None


def scene_inputs(scene: torch.Tensor, layout: TokenLayout, config: ModelConfig) -> SceneInputs:
    """Scene (B, 3, h, w) in [-1, 1] at the scene size -> the model's scene inputs."""
    p = config.patch_px
    height, width = layout.grid_h * p, layout.grid_w * p
    if (
        scene.shape[-2] * config.scene_factor != height
        or scene.shape[-1] * config.scene_factor != width
    ):
        raise FoveaError(
            f"scene of {scene.shape[-1]}x{scene.shape[-2]} px does not fit a {width}x{height} px "
            f"image: the default model needs a scene {config.scene_factor}x smaller "
            f"({width // config.scene_factor}x{height // config.scene_factor} px)"
        )
    up = upsample_scene(scene, height=height, width=width)
    inputs = SceneInputs(scene_up=up, scene_tokens=pack(up, layout, p=p))
    if config.scene_conditioning == "reference":
        ref = reference_layout(layout, config.scene_factor)
        inputs.reference = pack(up, ref, p=p)
        inputs.reference_ids = torch.as_tensor(layout_ids(ref), dtype=torch.float32)
    return inputs


class SceneDenoiser:
    """The :class:`generator.denoiser.Denoiser` of the default model: x-prediction -> velocity.

    ``cond.scene`` carries the layout's :class:`SceneInputs`.
    """

    prediction = "x"

    def __init__(self, model: DefaultModel, *, x_pred_t_min: float = 0.05):
        self.model = model
        self.transformer = model.transformer  # benchmarks count its FLOPs
        self.x_pred_t_min = x_pred_t_min

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def positions(self, layout: TokenLayout, *, text_len: int) -> TokenPositions:
        ids = torch.as_tensor(layout_ids(layout), dtype=torch.float32, device=self.device)
        return TokenPositions(img_ids=ids, txt_ids=torch.zeros(text_len, 3, device=self.device))

    def __call__(self, tokens, *, ids: TokenPositions, t, cond: Conditioning) -> torch.Tensor:
        s: SceneInputs = cond.scene
        b = tokens.shape[0]
        ref = None if s.reference is None else s.reference.expand(b, -1, -1)
        x_hat = self.model(
            tokens,
            scene_tokens=s.scene_tokens.expand(b, -1, -1),
            img_ids=ids.img_ids,
            t=t,
            reference=ref,
            reference_ids=s.reference_ids,
        )
        return velocity_from_x(tokens, x_hat, t, t_min=self.x_pred_t_min)


class SceneEncoder:
    """Scene -> :class:`Conditioning` for one layout (the default model has no text), and the
    image's finish after sampling (refiner, then the optional detail and periphery stages)."""

    text_len = 1

    def __init__(
        self,
        model: DefaultModel,
        *,
        detail: DetailNet | None = None,
        periphery: PeripheryNet | None = None,
    ):
        self.model = model
        self.config = model.config_
        self.detail = detail
        self.periphery = periphery

    @property
    def scene_factor(self) -> int:
        return self.config.scene_factor

    @torch.no_grad()
    def encode_scene(
        self, scene: torch.Tensor, layout: TokenLayout, *, device, dtype
    ) -> Conditioning:
        """scene: (1, 3, h, w) in [-1, 1]."""
        inputs = scene_inputs(scene.to(device, torch.float32), layout, self.config)
        for name in ("scene_up", "scene_tokens", "reference"):
            value = getattr(inputs, name)
            if value is not None:
                setattr(inputs, name, value.to(device, dtype))
        if inputs.reference_ids is not None:
            inputs.reference_ids = inputs.reference_ids.to(device)
        return Conditioning(text=self.model.context.to(device, dtype), scene=inputs)

    @torch.no_grad()
    def finish(
        self, image: torch.Tensor, cond: Conditioning, *, layout: TokenLayout, seed: int
    ) -> torch.Tensor:
        """After sampling, on the unpacked image (1, 3, H, W): the refiner, then the detail stage
        on the layout's fine tokens and the periphery stage on its coarse ones, both from the
        seed's detail noise (:mod:`generator.models.detail`, :mod:`generator.models.periphery`)."""
        scene_up = cond.scene.scene_up.to(image.dtype)
        image = self.model.refine(image, scene_up)
        if self.detail is None:
            return image
        h, w = image.shape[-2:]
        noise = detail_noise(seed, height=h, width=w)
        finished = add_layout_detail(self.detail, image, layout, noise=noise)
        if self.periphery is None:
            return finished
        return add_periphery_detail(self.periphery, image, layout, noise=noise, fovea=finished)
