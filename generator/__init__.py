"""Foveated generation: display geometry, acuity, token layouts, mixed-resolution tokens,
per-token-position transformers and flow-matching sampling.

Names are imported lazily (PEP 562), so ``import generator.errors`` or ``generator.geometry``
does not load torch: every ``fovea`` command and the analysis package stay quick to start.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "AcuityModel": "generator.acuity",
    "Conditioning": "generator.denoiser",
    "FluxDenoiser": "generator.denoiser",
    "FoveaError": "generator.errors",
    "DisplayGeometry": "generator.geometry",
    "StimulusGeometry": "generator.geometry",
    "default_display": "generator.geometry",
    "LayoutSpec": "generator.layout",
    "TokenLayout": "generator.layout",
    "build_layout": "generator.layout",
    "FoveatedGenerator": "generator.pipeline",
    "Generation": "generator.pipeline",
    "load_generator": "generator.loading",
    "pack": "generator.tokens",
    "unpack": "generator.tokens",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'generator' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
