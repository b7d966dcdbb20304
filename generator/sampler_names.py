"""The samplers' names (light: no torch, for parsers): what :mod:`generator.sampler` runs.

- ``euler``: Euler steps along the flow-matching ODE (FLUX's convention).
- ``renoise``: each step's clean estimate noised afresh to the next time (the default model's).
"""

from __future__ import annotations

from typing import Literal, get_args

Sampler = Literal["euler", "renoise"]
SAMPLERS: tuple[Sampler, ...] = get_args(Sampler)
