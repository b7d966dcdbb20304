"""Foveated generation: display geometry, acuity, token layouts, mixed-resolution tokens,
per-token-position transformers and flow-matching sampling."""

from generator.acuity import AcuityModel
from generator.denoiser import Conditioning, FluxDenoiser
from generator.errors import FoveaError
from generator.geometry import DisplayGeometry, StimulusGeometry, default_display
from generator.layout import LayoutSpec, TokenLayout, build_layout
from generator.pipeline import FoveatedGenerator, Generation
from generator.tokens import pack, unpack

__all__ = [
    "AcuityModel",
    "Conditioning",
    "DisplayGeometry",
    "FluxDenoiser",
    "FoveaError",
    "FoveatedGenerator",
    "Generation",
    "LayoutSpec",
    "StimulusGeometry",
    "TokenLayout",
    "build_layout",
    "default_display",
    "pack",
    "unpack",
]
