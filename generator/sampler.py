"""Flow-matching sampling over a token layout: Euler steps from noise (t = 1) to data (t = 0).

The path is ``x_t = (1 - t) x_0 + t * noise`` and the denoiser predicts ``v = noise - x_0``, so an
Euler step is ``x <- x + (t_next - t) v`` (FLUX's convention). Image-to-image starts part-way, at
``t_start < 1``, from a noised image instead of pure noise.

Two samplers (their names, without torch: ``generator.sampler_names.SAMPLERS``): ``euler``
integrates the ODE; ``renoise`` takes each step's clean estimate ``x_0 = x - t v`` and noises it
afresh to the next time (the multistep sampling of consistency models, Song et al. 2023,
Algorithm 1). The default model uses ``renoise``: under Euler, the little of the start noise that
its x-prediction passes through at t = 1 is taken for content by every later step and grows into
speckled tokens; fresh noise per step does not add up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from generator.denoiser import Conditioning, Denoiser, TokenPositions


def shifted_timesteps(steps: int, *, shift: float = 1.0, t_start: float = 1.0) -> torch.Tensor:
    """(steps + 1,) times from ``t_start`` to 0, warped by ``t' = shift u / (1 + (shift - 1) u)``.

    ``shift > 1`` spends more steps at high noise, as larger images need (SD3, FLUX). The
    unwarped times ``u`` are evenly spaced from the ``u`` that warps to ``t_start`` down to 0, so a
    later start keeps the same number of steps and the same warp; ``t_start = 1`` is the plain
    schedule.
    """
    if not 0.0 < t_start <= 1.0:
        raise ValueError(f"t_start must be in (0, 1], got {t_start}")
    u_start = t_start / (shift - (shift - 1) * t_start)  # inverse of the warp
    u = torch.linspace(u_start, 0.0, steps + 1, dtype=torch.float64)
    t = shift * u / (1 + (shift - 1) * u)
    t[0] = t_start  # exact, whatever the rounding of the inverse
    return t.float()


def euler_step(
    x: torch.Tensor, v: torch.Tensor, *, t_now: torch.Tensor, t_next: torch.Tensor
) -> torch.Tensor:
    """One Euler step of the flow ODE from ``t_now`` to ``t_next``: ``x + (t_next - t_now) v``."""
    return x + (t_next - t_now).to(x.dtype) * v


@dataclass
class SampleResult:
    """Sampled tokens (B, N, D), the wall time of each step in seconds, and which sampler ran
    (``eager``: :func:`sample_euler`; ``renoise``: :func:`sample_renoise`; ``static`` or
    ``static+cuda-graphs``: :class:`generator.static_sampler.StaticSampler`)."""

    tokens: torch.Tensor
    step_seconds: list[float]
    sampler: str = "eager"


@torch.no_grad()
def sample_euler(
    denoiser: Denoiser,
    noise: torch.Tensor,
    *,
    ids: TokenPositions,
    cond: Conditioning,
    steps: int,
    shift: float = 1.0,
    t_start: float = 1.0,
    uncond: Conditioning | None = None,
    guidance_scale: float = 1.0,
    on_step: Callable[[int], None] | None = None,
) -> SampleResult:
    """Integrate the flow ODE from ``noise`` (B, N, D) at time ``t_start`` to data tokens.

    ``noise`` is pure noise for ``t_start = 1``; for image-to-image it is the noised start
    ``(1 - t_start) x_0 + t_start * noise`` and the ``steps`` Euler steps run from ``t_start``.

    Classifier-free guidance, when ``uncond`` is given and ``guidance_scale != 1``:
    ``v = v_uncond + guidance_scale * (v_cond - v_uncond)`` (both in one batched forward).
    """
    times = shifted_timesteps(steps, shift=shift, t_start=t_start).to(noise.device)
    x = noise
    step_seconds = []
    use_cfg = uncond is not None and guidance_scale != 1.0
    for i in range(steps):
        start = time.perf_counter()
        t = times[i].expand(x.shape[0]).to(x.dtype)
        if use_cfg:
            both = _cat_conditioning(uncond, cond)
            v_u, v_c = denoiser(torch.cat([x, x]), ids=ids, t=torch.cat([t, t]), cond=both).chunk(2)
            v = v_u + guidance_scale * (v_c - v_u)
        else:
            v = denoiser(x, ids=ids, t=t, cond=cond)
        x = euler_step(x, v, t_now=times[i], t_next=times[i + 1])
        if x.is_cuda:  # kernels run asynchronously: wait so the step's time is its own
            torch.cuda.synchronize(x.device)
        step_seconds.append(time.perf_counter() - start)
        if on_step is not None:
            on_step(i)
    return SampleResult(tokens=x, step_seconds=step_seconds)


@torch.no_grad()
def sample_renoise(
    denoiser: Denoiser,
    noise: torch.Tensor,
    *,
    ids: TokenPositions,
    cond: Conditioning,
    steps: int,
    fresh_noise: Callable[[int], torch.Tensor],
    shift: float = 1.0,
    on_step: Callable[[int], None] | None = None,
) -> SampleResult:
    """From ``noise`` (B, N, D) at t = 1: at each time ``t`` the clean estimate
    ``x_0 = x - t v``, then ``x <- (1 - t_next) x_0 + t_next * fresh_noise(i)`` (B, N, D) for the
    next time; the last step returns ``x_0``. ``fresh_noise(i)`` must be unit-variance noise,
    the same for the same step of the same seed (the caller's determinism)."""
    times = shifted_timesteps(steps, shift=shift).to(noise.device)
    x = noise
    step_seconds = []
    for i in range(steps):
        start = time.perf_counter()
        t_now, t_next = times[i], times[i + 1]
        v = denoiser(x, ids=ids, t=t_now.expand(x.shape[0]).to(x.dtype), cond=cond)
        x_0 = x - t_now.to(x.dtype) * v
        if i + 1 < steps:
            fresh = fresh_noise(i).to(x.device, x.dtype)
            x = (1 - t_next).to(x.dtype) * x_0 + t_next.to(x.dtype) * fresh
        else:
            x = x_0
        if x.is_cuda:
            torch.cuda.synchronize(x.device)
        step_seconds.append(time.perf_counter() - start)
        if on_step is not None:
            on_step(i)
    return SampleResult(tokens=x, step_seconds=step_seconds, sampler="renoise")


def step_seed(seed: int, step: int) -> int:
    """The seed of ``sample_renoise``'s fresh noise after step ``step`` of image seed ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(step)]).generate_state(1, np.uint64)[0] >> 1)


def _cat_conditioning(a: Conditioning, b: Conditioning) -> Conditioning:
    cat = lambda u, v: None if u is None else torch.cat([u, v])  # noqa: E731
    return Conditioning(
        text=cat(a.text, b.text),
        pooled=cat(a.pooled, b.pooled),
        guidance=cat(a.guidance, b.guidance),
    )
