"""Which token rules a generator follows, and the layout it samples on under them.

- ``kit``: the kit's own layouts (:func:`generator.layout.build_layout`) and ids;
- ``release``: the Foveated Diffusion release's circle rule and token order
  (:func:`generator.release_layout.release_circle_layout`), ids and cross-resolution attention
  (:mod:`generator.release_generator`); acuity and full layouts are built as the kit builds them.

The one definition of the default (:func:`default_token_rules`: the release's rules with a LoRA,
the kit's without) and of the layout under each rule (:func:`token_rules_layout`):
:func:`generator.loading.load_generator` generates by them, and what is counted without
generating, ``fovea check``'s token shares (``protocol.levels``) and the report's token savings
(``analysis.tokens``), counts by them too. Numpy only: counting does not load torch.
"""

from __future__ import annotations

from typing import Literal

from generator.errors import FoveaError
from generator.layout import LayoutSpec, TokenLayout, build_layout
from generator.release_layout import release_circle_layout

TokenRules = Literal["kit", "release"]
TOKEN_RULES: tuple[str, ...] = ("kit", "release")


def default_token_rules(*, lora: bool) -> TokenRules:
    """The token rules a model is generated with unless told otherwise: ``release`` with a LoRA
    (the release's LoRAs were trained on its token sequences), else ``kit``."""
    return "release" if lora else "kit"


def check_token_rules(token_rules: str) -> TokenRules:
    """``token_rules`` itself when it is one of ``TOKEN_RULES``.

    Raises:
        FoveaError: anything else.
    """
    if token_rules not in TOKEN_RULES:
        raise FoveaError(f"token_rules must be kit or release, got {token_rules!r}")
    return token_rules  # type: ignore[return-value]


def token_rules_layout(
    token_rules: str,
    *,
    geometry,
    gaze_px: tuple[float, float] | None,
    spec: LayoutSpec,
    patch_px: int,
) -> TokenLayout:
    """The layout a generator following ``token_rules`` samples on (arguments as
    :func:`generator.layout.build_layout`'s): under ``release`` a circle layout with a gaze is
    the release's, every other layout the kit's.

    Raises:
        FoveaError: unknown ``token_rules``, or a layout either rule refuses.
    """
    if (
        check_token_rules(token_rules) == "release"
        and spec.mode == "circle"
        and gaze_px is not None
    ):
        return release_circle_layout(
            geometry=geometry, gaze_px=gaze_px, spec=spec, patch_px=patch_px
        )
    return build_layout(geometry=geometry, gaze_px=gaze_px, spec=spec, patch_px=patch_px)
