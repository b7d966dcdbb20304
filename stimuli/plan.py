"""What a protocol lets us pre-generate: the references for every (seed, conditioning), and
foveated versions at each condition's fixation target for every level the procedure can present.

A reference is what the foveated image is compared with (``[stimulus] reference``): the
full-resolution twin (``generated``) or the original photograph of the seed's scene
(``original``). Scene models make every image of a seed from that seed's scene; the planned
stimuli get its hash from ``stimuli.build`` (``with_scene``), and it is part of every key.

Levels: explicit ``levels`` of a condition, else the grid the procedure draws from (QUEST+:
``questplus.n_levels`` log-spaced levels; constant stimuli: ``constant.n_levels``), computed
exactly as ``study.procedures.tracks`` does so that the values match bit for bit. Staircases move
in continuous steps: their foveated images cannot be pre-generated (references still are).

Foveated images in a session are generated at the *measured* gaze; the pre-generated ones at the
fixation target serve as deadline-miss stand-ins (``[generation] on_deadline_miss = "cached"``),
for contact sheets and for offline quality checks.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from generator.errors import FoveaError
from protocol.geometry import stimulus_geometry

Only = Literal["all", "references", "foveated"]


@dataclass(frozen=True)
class PlannedStimulus:
    """One image to pre-generate.

    Attributes:
        kind: ``reference`` (full resolution) or ``foveated``.
        seed, conditioning: generation seed and class label or prompt.
        condition: protocol condition name (foveated only).
        level: the condition's level (foveated only).
        spec: ``generator.LayoutSpec``.
        fixation_deg: the fixation target (foveated only), deg from the screen centre.
        gaze_px: the target in image pixels (foveated only).
        reference: ``generated`` or ``original`` (references only; None for foveated images).
        scene_sha256: the seed's scene (scene models; None until ``with_scene``, or without).
    """

    kind: Literal["reference", "foveated"]
    seed: int
    conditioning: int | str
    condition: str | None
    level: float | None
    spec: object
    fixation_deg: tuple[float, float] | None
    gaze_px: tuple[float, float] | None
    reference: str | None = None
    scene_sha256: str | None = None

    def with_scene(self, sha256: str | None) -> PlannedStimulus:
        """This stimulus made from the scene with hash ``sha256``."""
        return dataclasses.replace(self, scene_sha256=sha256)

    def label(self) -> str:
        if self.kind == "reference":
            what = "original photograph" if self.reference == "original" else "reference"
            return f"{what} seed {self.seed} conditioning {self.conditioning!r}"
        return (
            f"foveated seed {self.seed} conditioning {self.conditioning!r} condition "
            f"{self.condition} level {self.level:g}"
        )


def condition_levels(protocol, condition) -> list[float] | None:
    """The levels ``condition`` can be presented at, or None (continuous staircase levels)."""
    if condition.levels:
        return [float(v) for v in condition.levels]
    method = protocol.procedure.method
    if method == "questplus":
        n = protocol.procedure.questplus.n_levels
    elif method == "constant":
        n = protocol.procedure.constant.n_levels
    else:
        return None
    grid = np.linspace(math.log10(condition.level_min), math.log10(condition.level_max), n)
    return [float(10**x) for x in grid]


def plan_stimuli(
    protocol, *, only: Only = "all", max_seeds: int | None = None
) -> list[PlannedStimulus]:
    """Everything ``protocol`` lets us pre-generate, in a fixed order (shards slice this list).

    Args:
        protocol: ``protocol.Protocol``.
        only: ``all``, ``references`` or ``foveated``.
        max_seeds: use only the first N seeds of the pool (quick sets, sheets); None: all.
    """
    from generator.layout import LayoutSpec
    from protocol.levels import layout_spec

    if only not in ("all", "references", "foveated"):
        raise FoveaError(f"--only must be all, references or foveated, got {only!r}")
    if max_seeds is not None and max_seeds < 1:
        raise FoveaError(f"--max-seeds must be >= 1, got {max_seeds}")
    seeds = protocol.stimulus.seed_pool()
    if max_seeds is not None:
        seeds = seeds[:max_seeds]
    conditionings = protocol.stimulus.conditionings()
    geometry = stimulus_geometry(protocol)
    out: list[PlannedStimulus] = []
    if only in ("all", "references"):
        full = LayoutSpec(mode="full")
        reference = protocol.stimulus.reference
        for seed in seeds:
            for c in conditionings:
                out.append(
                    PlannedStimulus(
                        "reference", int(seed), c, None, None, full, None, None, reference
                    )
                )
    if only in ("all", "foveated"):
        for condition in protocol.conditions:
            levels = condition_levels(protocol, condition)
            if levels is None:
                continue
            fx, fy = (float(v) for v in condition.fixation_deg)
            gx, gy = geometry.deg_to_image_px(fx, fy)
            gaze = (round(float(gx), 3), round(float(gy), 3))
            for level in levels:
                spec = layout_spec(condition=condition, level=level)
                for seed in seeds:
                    for c in conditionings:
                        out.append(
                            PlannedStimulus(
                                "foveated",
                                int(seed),
                                c,
                                condition.name,
                                level,
                                spec,
                                (fx, fy),
                                gaze,
                            )
                        )
    return out


def skipped_conditions(protocol) -> list[str]:
    """Conditions whose foveated images cannot be pre-generated (continuous staircase levels)."""
    return [c.name for c in protocol.conditions if condition_levels(protocol, c) is None]
