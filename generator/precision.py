"""The model's number format on its device (light: no torch, for parsers and protocols).

- ``float32``: the default; what the CPU runs, and what the default model's figures used.
- ``bfloat16``: FLUX pipeline directories on a GPU: half the memory and the tensor cores' speed;
  the GPU timings (``benchmarks/device/realtime_flux2.py``) run in it.
- ``float16``: the same size, a narrower range (FLUX models can overflow in it).

A study's foveated images and their twins must come from one format: stimulus sets record it
and a session refuses a set made in another (``stimuli.check``).
"""

from __future__ import annotations

from typing import Literal, get_args

Dtype = Literal["float32", "bfloat16", "float16"]
DTYPES: tuple[str, ...] = get_args(Dtype)
DEFAULT_DTYPE: Dtype = "float32"
