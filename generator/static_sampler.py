"""Euler sampling at static shapes: token-count buckets, padding masked out, one CUDA graph each.

Why: the gaze-contingent loop samples a new layout at every fixation, and a foveated layout's token
count changes with the gaze. Eager PyTorch launches every kernel of every block from Python at
every step; for a klein-sized transformer at a few hundred tokens the GPU mostly waits on those
launches (H200, ``benchmarks/results/gpu_flux_h200.json``: 22.8 ms per step at 280 tokens, 24.2 ms
at 592, 85 ms at 4096). A CUDA graph replays a whole captured loop with one launch, but it fixes
every shape and every address. So:

- **Buckets.** The layout's ``N`` image tokens are padded to ``B``, the next multiple of
  ``bucket_tokens``; one graph per ``B`` serves every gaze whose count rounds to it.
- **Padding masked out.** In a Flux transformer tokens mix only in attention (norms, MLPs and the
  timestep modulation act per token), so a boolean key mask (text and the ``N`` real tokens) passed
  to every attention processor makes the real tokens' outputs those of the unpadded sequence, to
  float rounding. Padded tokens are zeros with ids 0; their own outputs are dropped. A layout whose
  count fills its bucket exactly (the full-resolution twin) runs without a mask, so attention keeps
  PyTorch's fastest fused kernel.
- **One graph per bucket** captures one Euler step (:func:`generator.sampler.euler_step`) on
  static buffers: tokens, ids, mask, the step's two times and the (cached) prompt embeddings. A
  call copies the layout's noise, ids and mask in and replays the graph once per step, so any step
  count and schedule (:func:`generator.sampler.shifted_timesteps`) use the same graph, each step
  is timed, and ``on_step`` can abort between steps as with the eager sampler (the generation
  service's speculative start relies on it). The graphs share one memory pool: they never run
  concurrently and none reads another's output (PyTorch's CUDA graph notes allow this in any
  replay order). The first call per bucket captures (a few forward passes); :meth:`warm_up`
  does it before a session.

On a CPU (tests, dry runs) the same static-buffer loop runs eagerly, so the padding and masking are
tested here; the capture itself runs only on a GPU. Not for the release's cross-resolution
attention (:mod:`generator.crpa` gathers tokens per layout), classifier-free guidance, or the
scene-conditioned default model (its conditioning is per token); :class:`StaticSampler` refuses
those with a clear error.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from generator.denoiser import Conditioning, FluxDenoiser, TokenPositions
from generator.sampler import SampleResult, euler_step, shifted_timesteps

DEFAULT_BUCKET_TOKENS = 128
"""Image tokens per bucket step: at 1024² (4096 fine tokens) a session's gazes fall into a few
buckets per layout, and padding wastes under 128 tokens (against the 512 text tokens of FLUX.2)."""


def bucket_size(num_tokens: int, *, bucket_tokens: int = DEFAULT_BUCKET_TOKENS) -> int:
    """The static image-token count for ``num_tokens``: the next multiple of ``bucket_tokens``."""
    if num_tokens < 1 or bucket_tokens < 1:
        raise ValueError(f"need num_tokens, bucket_tokens >= 1, got {num_tokens}, {bucket_tokens}")
    return math.ceil(num_tokens / bucket_tokens) * bucket_tokens


def warm_up_counts(total_tokens: int, *, bucket_tokens: int = DEFAULT_BUCKET_TOKENS) -> list[int]:
    """Token counts whose warm-up prepares every bucket a layout of at most ``total_tokens``
    can use: one below each bucket (its masked graph) and ``total_tokens`` itself (the twin's
    exact count, unmasked when it fills its bucket)."""
    below = [b - 1 for b in range(bucket_tokens, total_tokens + bucket_tokens, bucket_tokens)]
    return [n for n in below if 1 <= n < total_tokens] + [int(total_tokens)]


def key_mask(*, text_len: int, num_tokens: int, bucket: int, device) -> torch.Tensor:
    """(1, text_len + bucket) bool: True for the keys a query may attend to (text, then the
    ``num_tokens`` real image tokens), False for the padding. The text comes first, as in the
    Flux transformers' joint sequence."""
    mask = torch.zeros(1, text_len + bucket, dtype=torch.bool, device=device)
    mask[:, : text_len + num_tokens] = True
    return mask


class CaptureError(RuntimeError):
    """A CUDA graph capture failed (an operation a capture forbids, or the driver refused it);
    :class:`generator.pipeline.FoveatedGenerator` then samples eagerly."""


@dataclass
class _Bucket:
    """One bucket's static buffers and, on CUDA, its captured step."""

    tokens: torch.Tensor  # (1, B, D): the current tokens, updated in place by each step
    img_ids: torch.Tensor  # (B, axes)
    mask: torch.Tensor | None  # (1, L + B) bool, None for an exactly filled bucket
    t_now: torch.Tensor  # (1,) float32: the step's time
    t_next: torch.Tensor  # (1,) float32: the time it steps to
    graph: object | None = None  # torch.cuda.CUDAGraph once captured


class StaticSampler:
    """Euler sampling of a :class:`FluxDenoiser` at bucketed, static shapes (CUDA graphs on GPU);
    :meth:`sample` takes :func:`generator.sampler.sample_euler`'s arguments and gives its result.

    Args:
        denoiser: the transformer wrapper (kit position ids; no CRPA).
        bucket_tokens: the bucket step (:func:`bucket_size`).
        graphs: capture CUDA graphs; default: when the denoiser is on a CUDA device.
    """

    def __init__(
        self,
        denoiser: FluxDenoiser,
        *,
        bucket_tokens: int = DEFAULT_BUCKET_TOKENS,
        graphs: bool | None = None,
    ):
        if getattr(denoiser, "crpa", None) is not None:
            raise ValueError(
                "static shapes do not cover the release's cross-resolution attention (CRPA): its "
                "token groups change with every layout; sample it with generator.sampler."
            )
        self.denoiser = denoiser
        self.bucket_tokens = int(bucket_tokens)
        device = denoiser.device
        self.graphs = device.type == "cuda" if graphs is None else bool(graphs)
        if self.graphs and device.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA device, the denoiser is on {device}")
        self._cond: Conditioning | None = None  # static prompt buffers, filled on first use
        self._txt_ids: torch.Tensor | None = None  # (L, axes), filled on first use
        self._buckets: dict[tuple[int, bool], _Bucket] = {}
        self._pool = None

    @property
    def name(self) -> str:
        """``static+cuda-graphs`` when it captures graphs, else ``static``."""
        return "static+cuda-graphs" if self.graphs else "static"

    @property
    def captured(self) -> list[tuple[int, bool]]:
        """(bucket, masked) keys whose graph is captured (empty on a CPU)."""
        return [k for k, b in self._buckets.items() if b.graph is not None]

    @torch.no_grad()
    def sample(
        self,
        tokens: torch.Tensor,
        *,
        ids: TokenPositions,
        cond: Conditioning,
        steps: int,
        shift: float = 1.0,
        t_start: float = 1.0,
        on_step: Callable[[int], None] | None = None,
    ) -> SampleResult:
        """Sample ``tokens`` (1, N, D) (noise, or an image-to-image start at ``t_start``) with
        image ids ``ids`` (N rows) and prompt ``cond``: the (1, N, D) tokens of
        :func:`generator.sampler.sample_euler` up to float rounding, and each step's seconds."""
        n = tokens.shape[1]
        if tokens.shape[0] != 1:
            raise ValueError(
                f"static sampling takes one image at a time, got batch {tokens.shape[0]}"
            )
        self._load_cond(cond)
        if self._txt_ids is None:  # text ids depend on the prompt's length only
            self._txt_ids = ids.txt_ids.detach().clone()
        bucket = bucket_size(n, bucket_tokens=self.bucket_tokens)
        b = self._bucket(bucket, masked=bucket != n, like=tokens, ids=ids)
        b.tokens.zero_()
        b.tokens[:, :n] = tokens
        b.img_ids.zero_()
        b.img_ids[:n] = ids.img_ids
        if b.mask is not None:  # copied in: the graph reads this address
            b.mask.copy_(
                key_mask(text_len=self._text_len, num_tokens=n, bucket=bucket, device=b.mask.device)
            )
        times = shifted_timesteps(steps, shift=shift, t_start=t_start).to(tokens.device)
        step_seconds = []
        for i in range(steps):
            start = time.perf_counter()
            b.t_now.copy_(times[i : i + 1])
            b.t_next.copy_(times[i + 1 : i + 2])
            if self.graphs:
                if b.graph is None:
                    self._capture(b)
                b.graph.replay()
                torch.cuda.synchronize(tokens.device)  # the step's time is its own
            else:
                self._step(b)
            step_seconds.append(time.perf_counter() - start)
            if on_step is not None:
                on_step(i)
        return SampleResult(
            tokens=b.tokens[:, :n].clone(), step_seconds=step_seconds, sampler=self.name
        )

    def warm_up(self, token_counts, *, like: torch.Tensor, ids: TokenPositions, cond) -> None:
        """Prepare (capture, on CUDA) the buckets that ``token_counts`` fall in, before a
        session: one step on the first ``n`` of ``like``'s (1, N, D) tokens and ``ids`` rows for
        each count ``n <= N`` (a count below its bucket prepares the masked graph, one that fills
        it the unmasked one)."""
        for n in sorted({int(c) for c in token_counts}):
            if not 1 <= n <= like.shape[1]:
                raise ValueError(f"warm-up count {n} is outside 1..{like.shape[1]}")
            self.sample(
                like[:, :n],
                ids=TokenPositions(img_ids=ids.img_ids[:n], txt_ids=ids.txt_ids),
                cond=cond,
                steps=1,
            )

    @property
    def _text_len(self) -> int:
        return self._cond.text.shape[1]

    def _load_cond(self, cond: Conditioning) -> None:
        """Copy the prompt into the static buffers (allocated on first use)."""
        copy = lambda src: None if src is None else src.detach().clone()  # noqa: E731
        if self._cond is None:
            self._cond = Conditioning(
                text=copy(cond.text), pooled=copy(cond.pooled), guidance=copy(cond.guidance)
            )
            return
        for name in ("text", "pooled", "guidance"):
            static, new = getattr(self._cond, name), getattr(cond, name)
            if (static is None) != (new is None) or (
                static is not None and static.shape != new.shape
            ):
                raise ValueError(
                    f"the prompt's {name!r} changed shape or presence; a static sampler serves one "
                    "prompt shape (make another for another model or prompt length)"
                )
            if static is not None:
                static.copy_(new)

    def _bucket(self, bucket: int, *, masked: bool, like: torch.Tensor, ids) -> _Bucket:
        key = (bucket, masked)
        if key not in self._buckets:
            dev = like.device
            zeros = lambda *shape, dtype: torch.zeros(*shape, dtype=dtype, device=dev)  # noqa: E731
            self._buckets[key] = _Bucket(
                tokens=zeros(1, bucket, like.shape[2], dtype=like.dtype),
                img_ids=zeros(bucket, ids.img_ids.shape[1], dtype=ids.img_ids.dtype),
                mask=zeros(1, self._text_len + bucket, dtype=torch.bool) if masked else None,
                t_now=zeros(1, dtype=torch.float32),
                t_next=zeros(1, dtype=torch.float32),
            )
        return self._buckets[key]

    def _step(self, b: _Bucket) -> None:
        """One Euler step on the static buffers (what a graph captures)."""
        x = b.tokens
        ids = TokenPositions(img_ids=b.img_ids, txt_ids=self._txt_ids)
        v = self.denoiser(x, ids=ids, t=b.t_now.to(x.dtype), cond=self._cond, attention_mask=b.mask)
        x.copy_(euler_step(x, v, t_now=b.t_now, t_next=b.t_next))

    def _capture(self, b: _Bucket) -> None:
        """Warm up on a side stream (cuBLAS and allocator state), then capture one step. The
        warm-up steps change the tokens buffer, so it is saved and restored around them."""
        device = b.tokens.device
        saved = b.tokens.clone()
        try:
            stream = torch.cuda.Stream(device=device)
            stream.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(stream):
                for _ in range(2):
                    self._step(b)
            torch.cuda.current_stream(device).wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self._pool):
                self._step(b)
        except Exception as error:
            raise CaptureError(
                f"capturing the {b.tokens.shape[1]}-token bucket's step as a CUDA graph failed: "
                f"{type(error).__name__}: {error}"
            ) from error
        self._pool = graph.pool() if self._pool is None else self._pool
        b.graph = graph
        b.tokens.copy_(saved)
