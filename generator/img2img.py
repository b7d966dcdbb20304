"""Image-to-image for prompt models: a scene, upsampled and encoded, noised to a start time.

A prompt model (a FLUX checkpoint, a tiny preset) given a scene does not start from pure noise:
the scene is upsampled to the output size (:func:`generator.scene.upsample_scene`), encoded by the
model's codec (identity in pixel space, the VAE for latent models), packed on the layout and mixed
with the seed's noise tokens on the flow-matching path, ``x_t = (1 - t) x_0 + t * noise`` at
``t = t_start``. Sampling then runs from ``t_start`` to 0 on the same (foveated) layout: a low
``t_start`` keeps the scene, ``t_start = 1`` ignores it.
"""

from __future__ import annotations

import torch

from generator.errors import FoveaError
from generator.layout import TokenLayout
from generator.scene import Scene, scene_tensor, upsample_scene
from generator.tokens import pack

DEFAULT_T_START = 0.6
"""Where image-to-image starts on the flow path (1 = pure noise, 0 = the scene itself)."""


def check_t_start(t_start: float) -> float:
    """``t_start`` as a float in (0, 1], or a :class:`FoveaError` naming the value."""
    t_start = float(t_start)
    if not 0.0 < t_start <= 1.0:
        raise FoveaError(
            f"t_start must be in (0, 1] (1 = start from noise, small = stay close to the scene), "
            f"got {t_start}"
        )
    return t_start


def scene_start_tokens(
    *, codec, scene: Scene, layout: TokenLayout, noise: torch.Tensor, t_start: float
) -> torch.Tensor:
    """The noised scene on the layout, where sampling starts at ``t_start``.

    Args:
        codec: the model's codec (``encode``, ``cells_per_token``, ``px_per_cell``).
        scene: the scene; any size, upsampled to the layout's output size.
        layout: the token layout the image is sampled on.
        noise: (1, N, D) the seed's noise tokens on ``layout`` (``pack(..., noise=True)``).
        t_start: start time in (0, 1].

    Returns:
        (1, N, D) ``(1 - t_start) * pack(encoded scene) + t_start * noise``, on ``noise``'s
        device and dtype.
    """
    t_start = check_t_start(t_start)
    p = codec.cells_per_token
    token_px = p * codec.px_per_cell
    image = upsample_scene(
        scene_tensor(scene), height=layout.grid_h * token_px, width=layout.grid_w * token_px
    )
    x0 = pack(codec.encode(image).float().cpu(), layout, p=p)
    start = (1.0 - t_start) * x0 + t_start * noise.float().cpu()
    return start.to(noise.device, noise.dtype)
