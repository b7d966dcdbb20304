"""What a local diffusers pipeline directory must hold, checked without torch: ``fovea check``
(``protocol.models.check_model``) and the loader (``generator.loading``) refuse the same copies
with the same words."""

from __future__ import annotations

import json
from pathlib import Path

#: The FLUX.2 pipeline classes a directory's ``model_index.json`` may name ([klein], [dev]).
FLUX2_PIPELINES = ("Flux2KleinPipeline", "Flux2Pipeline")


def pipeline_class(path: Path) -> str | None:
    """The ``_class_name`` ``path/model_index.json`` names; None when it cannot be read (the
    loader says why)."""
    try:
        index = json.loads((Path(path) / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return index.get("_class_name") if isinstance(index, dict) else None


def missing_components(path: Path, index: dict) -> str | None:
    """Why ``path`` cannot load, naming every component folder its ``model_index.json``
    (``index``) lists but ``path`` lacks (a copy that left out the text encoder or the
    tokenizer), else every model component folder without its weights; None when all is there.
    diffusers would otherwise report a weights file missing from ``path`` itself, or, for a
    tokenizer, load without one and stop at the first prompt."""
    missing = [f"{name}/" for name in _components(index) if not (path / name).is_dir()]
    if missing:
        return (
            f"model directory {path} lacks {', '.join(missing)} (listed in its model_index.json): "
            "copy the whole directory that save_pretrained wrote"
        )
    return _missing_weights(path, index) or _missing_vocabulary(path, index)


def _missing_weights(path: Path, index: dict) -> str | None:
    """Why ``path`` cannot load when a model component's folder (one with a ``config.json``: the
    transformer, the VAE, a text encoder) holds no weights file, as a copy that stopped before the
    largest files leaves it; diffusers would report a ``diffusion_pytorch_model.bin`` missing,
    a file such a directory never had."""
    empty = [
        f"{name}/"
        for name in _components(index)
        if (path / name / "config.json").is_file()
        and not any(
            file.name.endswith((".safetensors", ".bin")) for file in (path / name).iterdir()
        )
    ]
    if not empty:
        return None
    return (
        f"model directory {path}: {', '.join(empty)} {'has' if len(empty) == 1 else 'have'} "
        "a config.json but no weights file (*.safetensors): copy the whole directory that "
        "save_pretrained wrote"
    )


#: Files that hold a tokenizer's vocabulary (fast: tokenizer.json; BPE: vocab.json; WordPiece:
#: vocab.txt; SentencePiece: the .model files). A folder with none loads as an empty tokenizer.
VOCABULARY_FILES = (
    "tokenizer.json",
    "vocab.json",
    "vocab.txt",
    "spiece.model",
    "tokenizer.model",
    "sentencepiece.bpe.model",
)


def _missing_vocabulary(path: Path, index: dict) -> str | None:
    """Why ``path`` cannot serve prompts when a tokenizer folder holds no vocabulary file (a copy
    that kept only ``tokenizer_config.json``): transformers loads it as an empty tokenizer that
    encodes every prompt as no tokens, so the images come out unprompted without a word."""
    empty = [
        f"{name}/"
        for name in _components(index)
        if "Tokenizer" in str(index[name][-1])
        and not any((path / name / file).is_file() for file in VOCABULARY_FILES)
    ]
    if not empty:
        return None
    return (
        f"model directory {path}: {', '.join(empty)} {'has' if len(empty) == 1 else 'have'} "
        f"no vocabulary file ({', '.join(VOCABULARY_FILES)}): copy the whole directory that "
        "save_pretrained wrote"
    )


def _components(index: dict) -> list[str]:
    """The component folders ``model_index.json`` (``index``) lists: ``name: [library, class]``
    entries, leaving out ``_``-prefixed metadata and components saved as None."""
    return [
        name
        for name, entry in index.items()
        if not name.startswith("_") and isinstance(entry, list) and entry[-1] is not None
    ]
