"""Which ``[stimulus] model`` names a protocol may give, checked at load (before torch loads).

A model is one of the generator's presets or a local diffusers pipeline directory
(``generator.loading.load_generator``). The preset names are listed here without importing the
generator's torch modules; ``tests/study/test_protocol_mistakes.py`` checks that they match
``generator.loading.DEFAULT_PRESETS`` and ``generator.tiny.TINY_PRESETS``, that their tokens
are ``PRESET_TOKEN_PX`` wide and their scene factors ``PRESET_SCENE_FACTOR`` (a directory's are
known when it loads).
"""

from __future__ import annotations

import difflib
from pathlib import Path

MODEL_PRESETS: tuple[str, ...] = (
    "default",
    "default-tokens-only",
    "tiny",
    "flux2-tiny",
    "bench-10m",
)
#: Image pixels per token side of every preset: a preset's image sizes are multiples of it.
PRESET_TOKEN_PX = 16
#: Each preset's scene factor (output pixels per scene pixel; None: it takes classes or prompts,
#: not scenes), so ``fovea check`` can check scenes as a session does without loading the model.
PRESET_SCENE_FACTOR: dict[str, int | None] = {
    "default": 4,
    "default-tokens-only": 4,
    "tiny": None,
    "flux2-tiny": None,
    "bench-10m": None,
}


def check_model(model: str) -> str:
    """``model`` itself when it is a preset or an existing directory (a pipeline directory with
    every component folder its ``model_index.json`` lists).

    Raises:
        ValueError: anything else, with the closest preset name when one is close.
    """
    if model in MODEL_PRESETS:
        return model
    path = Path(model).expanduser()
    if path.is_dir():
        _check_directory(path)
        return model
    guess = difflib.get_close_matches(model, MODEL_PRESETS, n=1, cutoff=0.6)
    hint = f"did you mean {guess[0]!r}? " if guess else ""
    raise ValueError(
        f"unknown model {model!r}: {hint}give a preset ({', '.join(MODEL_PRESETS)}) or a local "
        "pipeline directory (a relative path is looked up beside the protocol file, then in the "
        "working directory)"
    )


def _check_directory(path: Path) -> None:
    """ValueError when a pipeline directory lacks a component folder its ``model_index.json``
    lists, or a component's weights file (as the loader refuses it,
    ``generator.model_directory.missing_components``); an unreadable index is left to the
    loader, which says why."""
    import json

    from generator.model_directory import missing_components

    try:
        index = json.loads((path / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    why = missing_components(path, index) if isinstance(index, dict) else None
    if why:
        raise ValueError(why)


def check_image_size(model: str | None, size_px: int) -> int:
    """``size_px`` itself when it divides into a preset's tokens (or ``model`` is not a preset).

    Raises:
        ValueError: a size that is not a multiple of ``PRESET_TOKEN_PX``, with the nearest ones.
    """
    token = PRESET_TOKEN_PX
    if model in MODEL_PRESETS and size_px % token:
        below, above = size_px // token * token, (size_px // token + 1) * token
        raise ValueError(
            f"{size_px} px does not divide into the {token} px tokens of model {model!r}: use a "
            f"multiple of {token} (e.g. {below} or {above})"
        )
    return size_px
