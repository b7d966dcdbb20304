"""A generator that follows the Foveated Diffusion release's conventions, for its LoRAs.

With the release's LoRA merged into a FLUX.2 transformer (:mod:`generator.release_lora`), the
transformer should see what it was trained on: circle layouts built by the release's rule and in
its token order (:mod:`generator.release_layout`), the release's position ids (block top-left,
no level axis) and its cross-resolution attention (:mod:`generator.crpa`). Acuity and full layouts
are built as usual and sampled with the same ids and attention rule (multi-level layouts use the
natural extension of the release's two-level rule; how well the LoRA carries over to them is a
measurement for real weights).
"""

from __future__ import annotations

from generator.layout import LayoutSpec, TokenLayout
from generator.pipeline import FoveatedGenerator
from generator.token_rules import token_rules_layout


class ReleaseFoveatedGenerator(FoveatedGenerator):
    """:class:`FoveatedGenerator` whose circle layouts follow the release's rule and order
    (:func:`generator.token_rules.token_rules_layout` under ``release``)."""

    def layout(self, *, geometry, gaze_px, spec: LayoutSpec) -> TokenLayout:
        return token_rules_layout(
            "release", geometry=geometry, gaze_px=gaze_px, spec=spec, patch_px=self.token_px
        )


def with_release_conventions(generator: FoveatedGenerator) -> ReleaseFoveatedGenerator:
    """The same model with the release's layouts, ids and, for FLUX.2 transformers,
    cross-resolution attention.

    It takes ``generator`` over rather than copying a multi-GB model: the denoiser (and the
    transformer's attention processors) are switched in place and shared with the result, so use
    only the returned generator afterwards. :func:`generator.loading.load_generator` calls it on
    a generator it has just loaded."""
    from generator.crpa import enable_crpa

    denoiser = generator.denoiser
    denoiser.position_ids = "release"
    if denoiser.axes == 4 and denoiser.crpa is None:
        denoiser.crpa = enable_crpa(denoiser.transformer)
    out = ReleaseFoveatedGenerator(
        denoiser=denoiser,
        encoder=generator.encoder,
        codec=generator.codec,
        model_id=f"{generator.model_id} (release token rules)",
        steps=generator.steps,
        shift=generator.shift,
        guidance_scale=generator.guidance_scale,
    )
    return out
