"""How a latent model's foveated images are decoded (light: no torch, for parsers and protocols).

- ``full``: the VAE over every latent cell, as for the full-resolution twin (the default).
- ``foveated``: :mod:`generator.foveated_decode`: the periphery decoded at the resolution its
  tokens carry and upsampled, the fovea's box decoded in full; faster, and the periphery's pixels
  differ slightly from a full decode's. Pixel-space models (the default model) decode for free
  and take ``full`` only.

The twin (every token fine) is always decoded in full.
"""

from __future__ import annotations

from typing import Literal

Decode = Literal["full", "foveated"]
DECODES: tuple[str, ...] = ("full", "foveated")
