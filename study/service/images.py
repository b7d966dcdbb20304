"""What a generation service does with one request, in the generator's process or thread.

The trial's scene comes from the session's scene source, picked by the request's seed (scene
models only); then the foveated image at the gaze, or the reference the foveated image is
compared with: the full-resolution twin (``reference = "generated"``) or the original photograph
the scene came from (``reference = "original"``). The foveated image, its twin and the original
of one seed share one scene.
"""

from __future__ import annotations

import time
from typing import get_args

from generator.errors import FoveaError
from protocol.schema import Reference
from study.generation import GenerationRequest, GenerationResult
from study.service.cache import LruCache

REFERENCES = get_args(Reference)


class TrialImages:
    """Makes the images of generation requests.

    Args:
        generator: a loaded ``generator.FoveatedGenerator``.
        geometry: ``generator.StimulusGeometry`` of every image.
        scenes: scene-source spec (``pool`` or a folder; ``generator.scene_sources``); None:
            ``pool``. Ignored by models that take no scenes.
        reference: ``generated`` or ``original`` (what a ``full`` request returns).
        steps: sampler steps (None: the model's default).

    Raises:
        FoveaError: an unknown reference, ``original`` with a model that takes no scenes, or a
            scene source that cannot be opened.
    """

    def __init__(
        self, *, generator, geometry, scenes: str | None, reference: str, steps: int | None
    ) -> None:
        if reference not in REFERENCES:
            raise FoveaError(f"reference must be generated or original, got {reference!r}")
        if reference == "original" and not generator.takes_scene:
            raise FoveaError(
                f"reference 'original' needs a scene-conditioned model; {generator.model_id} "
                "takes prompts or classes, not scenes"
            )
        self.generator = generator
        self.geometry = geometry
        self.reference = reference
        self.steps = steps
        self.source = None
        if generator.takes_scene:
            from generator.scene_sources import scene_source

            self.source = scene_source(scenes or "pool")
        self._scenes = LruCache(4)  # a seed's foveated image, twin and original share a scene

    def scene(self, seed: int):
        """The seed's ``generator.scene.Scene`` (None for models that take no scenes)."""
        if self.source is None:
            return None
        scene = self._scenes.get(int(seed))
        if scene is None:
            scene = self.source.scene(
                seed=int(seed),
                width_px=self.geometry.image_width_px,
                height_px=self.geometry.image_height_px,
                factor=self.generator.scene_factor,
            )
            self._scenes.put(int(seed), scene)
        return scene

    def make(self, request: GenerationRequest, *, on_step=None) -> GenerationResult:
        """The request's image and record (``sidecar``: the generator's, ``reference`` added)."""
        if request.kind == "full" and self.reference == "original":
            return self._original(request)
        out = self.generator.generate(
            seed=request.seed,
            geometry=self.geometry,
            gaze_px=request.gaze_px,
            spec=request.spec,
            condition=request.conditioning,
            steps=self.steps,
            on_step=on_step,
            scene=self.scene(request.seed),
        )
        sidecar = dict(out.sidecar)
        if request.kind == "full":
            sidecar["reference"] = "generated"
        return GenerationResult(
            image=out.image,
            tokens=int(out.tokens),
            tokens_full=int(out.tokens_full),
            token_ratio=float(out.layout.token_ratio),
            seconds=float(out.seconds),
            sidecar=sidecar,
        )

    def _original(self, request: GenerationRequest) -> GenerationResult:
        from generator.layout import LayoutSpec

        start = time.perf_counter()
        scene = self.scene(request.seed)
        if scene.original is None:
            raise FoveaError(
                f"scene {scene.source} has no original photograph to compare with "
                "(reference 'original')"
            )
        layout = self.generator.layout(
            geometry=self.geometry, gaze_px=None, spec=LayoutSpec(mode="full")
        )
        seconds = time.perf_counter() - start
        return GenerationResult(
            image=scene.original,
            tokens=int(layout.num_tokens_full),
            tokens_full=int(layout.num_tokens_full),
            token_ratio=1.0,
            seconds=seconds,
            sidecar={
                "reference": "original",
                "seed": int(request.seed),
                "scene": scene.record(),
                "image_size_px": [self.geometry.image_width_px, self.geometry.image_height_px],
                "seconds": seconds,
            },
        )
