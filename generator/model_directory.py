"""What a local diffusers pipeline directory must hold, checked without torch: ``fovea check``
(``protocol.models.check_model``) and the loader (``generator.loading``) refuse the same copies
with the same words."""

from __future__ import annotations

from pathlib import Path


def missing_components(path: Path, index: dict) -> str | None:
    """Why ``path`` cannot load, naming every component folder its ``model_index.json``
    (``index``) lists but ``path`` lacks (a copy that left out the text encoder or the
    tokenizer); None when every one is there. diffusers would otherwise report a weights file
    missing from ``path`` itself, or, for a tokenizer, load without one and stop at the first
    prompt."""
    missing = [
        f"{name}/"
        for name, entry in index.items()
        if not name.startswith("_")
        and isinstance(entry, list)
        and entry[-1] is not None
        and not (path / name).is_dir()
    ]
    if not missing:
        return None
    return (
        f"model directory {path} lacks {', '.join(missing)} (listed in its model_index.json): "
        "copy the whole directory that save_pretrained wrote"
    )
