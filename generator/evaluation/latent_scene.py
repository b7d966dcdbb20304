"""The default model's latent-space counterpart, for ``fovea bench latent`` (timing only).

The default model is scene-conditioned: each token is its noisy 16 px patch with the same patch of
the upsampled scene concatenated (``channels`` conditioning), and after sampling the unpacked
image gets the refiner, detail and periphery stages. Its latent counterpart here keeps the
transformer's config, ids, context token and scene conditioning (the scene patch concatenated to
each latent token), with the latent token's width in and out and random weights, and hands the
latent grid straight to the autoencoder's decoder: in latent space the decoder takes the place of
the pixel-space finish stages.
"""

from __future__ import annotations

import torch

from generator.denoiser import Conditioning, TokenPositions
from generator.layout import TokenLayout


class LatentSceneDenoiser:
    """:class:`generator.denoiser.Denoiser` over latent tokens of ``latent_width`` values each,
    conditioned on the pixel model's scene tokens; its output is read as a velocity."""

    prediction = "velocity"

    def __init__(self, pixel_denoiser, *, latent_width: int):
        from diffusers import FluxTransformer2DModel

        self._pixel = pixel_denoiser
        model = pixel_denoiser.model
        config = {k: v for k, v in model.transformer.config.items() if not k.startswith("_")}
        scene_width = model.config_.token_dim
        config.update(in_channels=latent_width + scene_width, out_channels=latent_width)
        torch.manual_seed(0)
        self.transformer = FluxTransformer2DModel.from_config(config).eval().requires_grad_(False)
        self.pooled = model.pooled.detach()

    @property
    def device(self) -> torch.device:
        return self._pixel.device

    @property
    def dtype(self) -> torch.dtype:
        return self._pixel.dtype

    def positions(self, layout: TokenLayout, *, text_len: int) -> TokenPositions:
        return self._pixel.positions(layout, text_len=text_len)

    @torch.no_grad()
    def __call__(self, tokens, *, ids: TokenPositions, t, cond: Conditioning) -> torch.Tensor:
        b = tokens.shape[0]
        scene_tokens = cond.scene.scene_tokens.expand(b, -1, -1)
        return self.transformer(
            hidden_states=torch.cat([tokens, scene_tokens], dim=-1),
            encoder_hidden_states=cond.text.expand(b, -1, -1),
            pooled_projections=self.pooled.expand(b, -1).to(tokens.dtype),
            timestep=t,
            img_ids=ids.img_ids,
            txt_ids=ids.txt_ids,
            return_dict=False,
        )[0]


class LatentSceneEncoder:
    """The pixel model's scene encoder without its finish stages (the latent grid goes to the
    decoder as sampled)."""

    def __init__(self, pixel_encoder):
        self._pixel = pixel_encoder
        self.text_len = pixel_encoder.text_len

    @property
    def scene_factor(self) -> int:
        return self._pixel.scene_factor

    def encode_scene(self, scene, layout: TokenLayout, *, device, dtype) -> Conditioning:
        return self._pixel.encode_scene(scene, layout, device=device, dtype=dtype)

    def finish(self, grid, cond, *, layout: TokenLayout, seed: int) -> torch.Tensor:
        return grid
