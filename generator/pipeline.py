"""Foveated generation, stage by stage: layout -> noise tokens -> sampling -> unpack -> decode."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from generator.codecs import PixelCodec, to_uint8_image
from generator.decoding import DECODES, Decode
from generator.denoiser import Conditioning, FluxDenoiser
from generator.errors import FoveaError
from generator.geometry import StimulusGeometry
from generator.img2img import DEFAULT_T_START, scene_start_tokens
from generator.layout import LayoutSpec, TokenLayout, build_layout
from generator.sampler import SampleResult, sample_euler, sample_renoise, step_seed
from generator.sampler_names import SAMPLERS, Sampler
from generator.scene import Scene, scene_tensor
from generator.static_sampler import CaptureError, StaticSampler, warm_up_counts
from generator.tokens import pack, unpack

log = logging.getLogger(__name__)


class ConditionEncoder(Protocol):
    text_len: int

    def encode(self, condition, *, device, dtype) -> Conditioning: ...


@dataclass
class Generation:
    """One generated image and what it cost.

    Attributes:
        image: (H, W, 3) uint8.
        layout: the token layout it was sampled on.
        seconds: end to end, noise to image (decoding included).
        denoise_seconds: the transformer's sampling loop alone.
        step_seconds: per Euler step.
        sidecar: JSON-able record (layout summary, tokens, timings, model, seed, geometry, scene,
            t_start: where sampling started on the flow path, 1 = from noise).
        scene: the scene a scene-conditioned model added detail to, or a prompt model started
            from (image-to-image); None for a prompt model generating from noise.
    """

    image: np.ndarray
    layout: TokenLayout
    seconds: float
    denoise_seconds: float
    step_seconds: list[float]
    sidecar: dict = field(default_factory=dict)
    scene: Scene | None = None

    @property
    def tokens(self) -> int:
        return self.layout.num_tokens

    @property
    def tokens_full(self) -> int:
        return self.layout.num_tokens_full


class FoveatedGenerator:
    """A flow-matching transformer sampled on mixed-resolution token layouts.

    Args:
        denoiser: the transformer wrapper.
        encoder: turns a condition (class index or prompt) into :class:`Conditioning`.
        codec: data grid <-> image (pixel space or a VAE latent space).
        model_id: name recorded in sidecars.
        steps, shift, guidance_scale: sampler defaults.
        sampler: ``euler`` or ``renoise`` (:mod:`generator.sampler`; ``renoise`` draws each
            step's fresh noise from the seed like the start noise, on the same layout).

    Set after construction: :meth:`use_static_shapes` (bucketed token counts, CUDA graphs on a
    GPU: :mod:`generator.static_sampler`) and :attr:`decode` (:mod:`generator.decoding`).
    """

    def __init__(
        self,
        *,
        denoiser: FluxDenoiser,
        encoder: ConditionEncoder,
        codec,
        model_id: str,
        steps: int = 8,
        shift: float = 1.0,
        guidance_scale: float = 1.0,
        sampler: Sampler = "euler",
    ):
        if sampler not in SAMPLERS:
            raise FoveaError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
        self.denoiser = denoiser
        self.encoder = encoder
        self.codec = codec
        self.model_id = model_id
        self.steps = steps
        self.shift = shift
        self.guidance_scale = guidance_scale
        self.sampler = sampler
        self.static = None  # a generator.static_sampler.StaticSampler, when on
        self.static_shapes_error: str | None = None  # why static shapes were turned off, if so
        self._decode: Decode = "full"

    @property
    def decode(self) -> Decode:
        """How foveated images are decoded (:mod:`generator.decoding`)."""
        return self._decode

    @decode.setter
    def decode(self, value: str) -> None:
        if value not in DECODES:
            raise FoveaError(f"decode must be one of {', '.join(DECODES)}, got {value!r}")
        if value == "foveated" and isinstance(self.codec, PixelCodec):
            raise FoveaError(
                f"decode 'foveated' needs a latent (VAE) model; {self.model_id!r} works in pixels, "
                "where decoding costs nothing"
            )
        self._decode = value

    @property
    def dtype_name(self) -> str:
        """The denoiser's number format by name (``float32``, ...: :mod:`generator.precision`)."""
        return str(self.denoiser.dtype).removeprefix("torch.")

    def use_static_shapes(self, enabled: bool = True, **options) -> None:
        """Sample at static, bucketed shapes (CUDA graphs on a GPU; ``options``: those of
        :class:`generator.static_sampler.StaticSampler`), or eagerly again (``enabled=False``).
        Prompt models on the kit's token rules only; a sampled image equals the eager one up to
        float rounding. Classifier-free guidance still samples eagerly. A CUDA graph capture that
        fails turns static shapes off (logged; the reason in :attr:`static_shapes_error`): the
        same images, eagerly."""
        self.static_shapes_error = None
        if not enabled:
            self.static = None
            return
        why = self.static_shapes_refusal()
        if why is not None:
            raise FoveaError(f"static shapes are for prompt models; {self.model_id!r} is {why}")
        self.static = StaticSampler(self.denoiser, **options)

    def static_shapes_refusal(self) -> str | None:
        """Why static shapes cannot serve this model (None: they can)."""
        if self.takes_scene:
            return "scene-conditioned"
        if getattr(self.denoiser, "crpa", None) is not None:
            return "on the release's token rules (CRPA)"
        return None

    def prepare_static_shapes(self, geometry: StimulusGeometry, *, condition=None) -> int:
        """Capture every bucket an image of ``geometry`` can fall in (masked, and the twin's
        exact count), so no trial pays a capture; returns how many (0 when static shapes are off
        or run without CUDA graphs, where there is nothing to capture)."""
        if self.static is None or not self.static.graphs:
            return 0
        full = self.layout(geometry=geometry, gaze_px=None, spec=LayoutSpec(mode="full"))
        cond = self.conditioning(full, condition=condition)
        noise = self._noise(full, seed=0, noise_grid=None)
        ids = self.denoiser.positions(full, text_len=cond.text.shape[1])
        counts = warm_up_counts(full.num_tokens, bucket_tokens=self.static.bucket_tokens)
        try:
            self.static.warm_up(counts, like=noise, ids=ids, cond=cond)
        except CaptureError as error:
            self._static_shapes_failed(error)
            return 0
        return len(self.static.captured)

    def _static_shapes_failed(self, error: Exception) -> None:
        """Static shapes off after a failed capture: the same images eagerly, only slower."""
        log.warning("%s; sampling eagerly from now on", error)
        self.static, self.static_shapes_error = None, str(error)

    def prepare_conditions(self, conditions) -> int:
        """Encode every class or prompt a session draws (and the empty prompt under guidance),
        so that no trial pays a prompt's first encode; returns how many (0 for scene models,
        whose conditioning is the scene)."""
        if self.takes_scene:
            return 0
        d = self.denoiser
        for condition in conditions:
            self.encoder.encode(condition, device=d.device, dtype=d.dtype)
        self._unconditional()
        return len(conditions)

    @property
    def token_px(self) -> int:
        """Image pixels per fine token side."""
        return self.codec.cells_per_token * self.codec.px_per_cell

    @property
    def takes_scene(self) -> bool:
        """Whether the model adds detail to a scene (the default model) rather than a prompt."""
        return hasattr(self.encoder, "encode_scene")

    @property
    def scene_factor(self) -> int | None:
        """Output pixels per scene pixel, for scene-conditioned models."""
        return self.encoder.scene_factor if self.takes_scene else None

    def pool_scene(self, geometry: StimulusGeometry, *, seed: int) -> Scene:
        """The seed's scene from the project's held-out photo pool, sized for ``geometry``."""
        from generator.scene_sources import pool_scene

        return pool_scene(
            seed=seed,
            width_px=geometry.image_width_px,
            height_px=geometry.image_height_px,
            factor=self.scene_factor,
        )

    def conditioning(self, layout: TokenLayout, *, condition=None, scene: Scene | None = None):
        """The transformer's :class:`Conditioning` for a layout: the scene's inputs for a
        scene-conditioned model (``scene`` required), else the encoded condition."""
        d = self.denoiser
        if self.takes_scene:
            return self.encoder.encode_scene(
                scene_tensor(scene), layout, device=d.device, dtype=d.dtype
            )
        return self.encoder.encode(condition, device=d.device, dtype=d.dtype)

    def layout(self, *, geometry: StimulusGeometry, gaze_px, spec: LayoutSpec) -> TokenLayout:
        return build_layout(geometry=geometry, gaze_px=gaze_px, spec=spec, patch_px=self.token_px)

    def noise_grid(self, layout: TokenLayout, *, seed: int) -> torch.Tensor:
        """(1, C, H, W) the seed's full-resolution noise (CPU, float32), whatever the layout."""
        p = self.codec.cells_per_token
        g = torch.Generator().manual_seed(int(seed))
        return torch.randn(
            1, self.codec.channels, layout.grid_h * p, layout.grid_w * p, generator=g
        )

    def noise_tokens(self, layout: TokenLayout, *, seed: int) -> torch.Tensor:
        """(1, N, D) unit-variance noise from one full-resolution draw per seed (CPU, float32)."""
        return pack(
            self.noise_grid(layout, seed=seed), layout, p=self.codec.cells_per_token, noise=True
        )

    def _noise(self, layout: TokenLayout, *, seed: int, noise_grid) -> torch.Tensor:
        """(1, N, D) start noise on the denoiser's device and dtype: the seed's, or ``noise_grid``
        (1, C, H, W) packed on ``layout``."""
        if noise_grid is None:
            noise = self.noise_tokens(layout, seed=seed)
        else:
            noise = pack(noise_grid.float().cpu(), layout, p=self.codec.cells_per_token, noise=True)
        return noise.to(self.denoiser.device, self.denoiser.dtype)

    def _unconditional(self) -> Conditioning | None:
        """The empty prompt's conditioning for classifier-free guidance (None without guidance)."""
        if self.guidance_scale == 1.0:
            return None
        return self.encoder.encode("", device=self.denoiser.device, dtype=self.denoiser.dtype)

    def generate(
        self,
        *,
        seed: int,
        geometry: StimulusGeometry,
        gaze_px,
        spec: LayoutSpec,
        condition=None,
        steps: int | None = None,
        on_step: Callable[[int], None] | None = None,
        noise_grid: torch.Tensor | None = None,
        scene: Scene | None = None,
        t_start: float = DEFAULT_T_START,
    ) -> Generation:
        """Generate one image for a gaze point (``gaze_px=None`` with ``LayoutSpec(mode='full')``
        gives the full-resolution twin; the same seed gives the same content).

        ``noise_grid`` (1, C, H, W), for diagnostics, replaces the seed's full-resolution noise
        (the seed is still recorded). ``scene``: what a scene-conditioned model adds detail to
        (None: a scene from the project's photo pool, picked by the seed); for a prompt model,
        image-to-image: the scene, encoded and noised to ``t_start`` in (0, 1], is sampled from
        there (:mod:`generator.img2img`; ``t_start`` is ignored without a scene)."""
        start = time.perf_counter()
        steps = self.steps if steps is None else int(steps)
        layout = self.layout(geometry=geometry, gaze_px=gaze_px, spec=spec)
        d = self.denoiser
        noise = self._noise(layout, seed=seed, noise_grid=noise_grid)
        if self.takes_scene and scene is None:
            scene = self.pool_scene(geometry, seed=seed)
        cond = self.conditioning(layout, condition=condition, scene=scene)
        t_from = 1.0  # where sampling starts on the flow path
        if not self.takes_scene and scene is not None:  # image-to-image
            noise = scene_start_tokens(
                codec=self.codec, scene=scene, layout=layout, noise=noise, t_start=t_start
            )
            t_from = float(t_start)
        uncond = self._unconditional()
        ids = d.positions(layout, text_len=cond.text.shape[1])
        denoise_start = time.perf_counter()
        result = self.sample_tokens(
            noise,
            ids=ids,
            cond=cond,
            steps=steps,
            t_start=t_from,
            uncond=uncond,
            on_step=on_step,
            fresh_noise=lambda i: self._noise(layout, seed=step_seed(seed, i), noise_grid=None),
        )
        denoise_seconds = time.perf_counter() - denoise_start
        grid = unpack(result.tokens, layout, p=self.codec.cells_per_token)
        if self.takes_scene:
            grid = self.encoder.finish(grid, cond, layout=layout, seed=seed)
        image = to_uint8_image(self._decode_grid(grid.float().to(d.device), layout))
        seconds = time.perf_counter() - start
        sidecar = {
            "model": self.model_id,
            "seed": int(seed),
            "condition": condition,
            "steps": steps,
            "shift": self.shift,
            "guidance_scale": self.guidance_scale,
            "device": str(d.device),
            "dtype": str(d.dtype).removeprefix("torch."),
            "sampler": result.sampler,
            "decode": self.decode if layout.token_ratio < 1 else "full",
            "geometry": _geometry_record(geometry),
            "layout": layout.summary(),
            "scene": scene.record() if scene is not None else None,
            "t_start": t_from,
            "tokens": layout.num_tokens,
            "tokens_full": layout.num_tokens_full,
            "token_ratio": layout.token_ratio,
            "seconds": seconds,
            "denoise_seconds": denoise_seconds,
            "step_seconds": result.step_seconds,
        }
        return Generation(
            image, layout, seconds, denoise_seconds, result.step_seconds, sidecar, scene
        )

    def sample_tokens(
        self, noise, *, ids, cond, steps, t_start=1.0, uncond=None, on_step=None, fresh_noise=None
    ) -> SampleResult:
        """Sample (1, N, D) start tokens: with the ``renoise`` sampler
        :func:`generator.sampler.sample_renoise` (``fresh_noise(i)``: step i's noise tokens);
        else the static-shape sampler when it is on and there is no guidance batch, else
        :func:`generator.sampler.sample_euler`."""
        if self.sampler == "renoise":
            if fresh_noise is None or uncond is not None or t_start != 1.0:
                raise FoveaError(
                    "the renoise sampler needs each step's fresh noise and starts from pure "
                    "noise without guidance"
                )
            return sample_renoise(
                self.denoiser,
                noise,
                ids=ids,
                cond=cond,
                steps=steps,
                fresh_noise=fresh_noise,
                shift=self.shift,
                on_step=on_step,
            )
        run = dict(ids=ids, cond=cond, steps=steps, shift=self.shift, t_start=t_start)
        if self.static is not None and uncond is None:
            try:
                return self.static.sample(noise, on_step=on_step, **run)
            except CaptureError as error:
                self._static_shapes_failed(error)
        return sample_euler(
            self.denoiser,
            noise,
            uncond=uncond,
            guidance_scale=self.guidance_scale,
            on_step=on_step,
            **run,
        )

    def _decode_grid(self, grid: torch.Tensor, layout: TokenLayout) -> torch.Tensor:
        """(1, 3, H, W) RGB from the data grid: :attr:`decode` for foveated layouts."""
        if self.decode == "foveated" and layout.token_ratio < 1:
            from generator.foveated_decode import foveated_decode

            return foveated_decode(self.codec, grid, layout)
        return self.codec.decode(grid)


def sampler_name(generator: FoveatedGenerator) -> str:
    """How ``generator`` samples: ``eager``, ``static`` (bucketed shapes) or
    ``static+cuda-graphs``."""
    return "eager" if generator.static is None else generator.static.name


def _geometry_record(geometry: StimulusGeometry) -> dict:
    """The sidecar's geometry: display, image size and origin (px)."""
    return {
        "display": geometry.display.as_dict(),
        "image_size_px": [geometry.image_width_px, geometry.image_height_px],
        "image_origin_px": list(geometry.origin_px),
    }
