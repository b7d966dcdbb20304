"""What a protocol shows: the display, the stimulus (``[stimulus]``) and the conditions.

Level variables (``[[conditions]] level_variable``), larger always meaning more degradation, are
defined with their layouts in ``generator.levels``: ``strength`` (acuity mode), ``radius_shrink``
and ``periphery_factor`` (circle mode; only explicit ``levels`` work for ``periphery_factor``:
constant stimuli or QUEST+ over those levels). The default display and circle radius are the
generator's (``generator.geometry.default_display``, ``generator.layout.DEFAULT_CIRCLE_RADIUS``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import Field, StrictFloat, ValidationInfo, field_validator, model_validator

from generator.decoding import Decode
from generator.geometry import default_display
from generator.layout import DEFAULT_CIRCLE_RADIUS
from generator.levels import LEVEL_DOMAINS, LEVEL_VARIABLES_BY_MODE, LevelVariable
from generator.precision import DEFAULT_DTYPE, Dtype
from protocol.models import check_image_size, check_model
from protocol.strict import StrictTable

# What a trial's foveated image is compared with: the full-resolution twin or the photograph.
Reference = Literal["generated", "original"]
_DEFAULT_DISPLAY = default_display()


def is_pipeline_directory(model: str) -> bool:
    """Whether ``[stimulus] model`` names a local diffusers pipeline directory (FLUX.1 or
    FLUX.2: a prompt model working in latents) rather than a preset (``default``, ``tiny``, ...)."""
    return Path(model).expanduser().is_dir()


class DisplaySettings(StrictTable):
    """The participant's screen.

    Attributes:
        width_px, height_px: resolution.
        width_cm, height_cm: visible area.
        distance_cm: eye to screen centre.
        refresh_hz: nominal refresh rate; durations are counted in frames of this rate.
        refresh_tolerance: ``fovea run`` refuses a screen whose measured refresh rate differs
            from ``refresh_hz`` by more than this fraction (``study.display_check``).
        gamma: the monitor's gamma (one value, or R, G, B) for PsychoPy's gamma table; None:
            the graphics card's table is left as it is.
        screen: PsychoPy screen index.
        fullscreen: open a full-screen window (``fovea run``); simulations are always windowed.
        background_gray: background luminance as a fraction of white (0..1).
    """

    width_px: int = Field(default=_DEFAULT_DISPLAY.width_px, ge=320, le=16384)
    height_px: int = Field(default=_DEFAULT_DISPLAY.height_px, ge=240, le=16384)
    width_cm: float = Field(default=_DEFAULT_DISPLAY.width_cm, gt=0, le=1000)
    height_cm: float = Field(default=_DEFAULT_DISPLAY.height_cm, gt=0, le=1000)
    distance_cm: float = Field(default=_DEFAULT_DISPLAY.distance_cm, gt=0, le=1000)
    refresh_hz: float = Field(default=60.0, ge=30, le=1000)
    refresh_tolerance: float = Field(default=0.02, gt=0, le=0.5)
    gamma: float | list[float] | None = None
    screen: int = Field(default=0, ge=0)
    fullscreen: bool = True
    background_gray: float = Field(default=0.5, ge=0, le=1)

    @field_validator("gamma")
    @classmethod
    def _gamma(cls, value):
        values = [value] if isinstance(value, float | int) else value
        if values is not None and (
            len(values) not in (1, 3)
            or any(not (math.isfinite(v) and 0.5 <= v <= 5) for v in values)
        ):
            raise ValueError("gamma is one value or three (R, G, B), each in [0.5, 5]")
        return value

    @model_validator(mode="after")
    def _square_pixels(self) -> DisplaySettings:
        """Pixels are square on a real screen: a width or height in other units (mm, inches)
        shows up as pixels many times taller than wide."""
        ratio = (self.width_px / self.width_cm) / (self.height_px / self.height_cm)
        if not 1 / 1.1 <= ratio <= 1.1:
            raise ValueError(
                f"width_cm x height_cm ({self.width_cm:g} x {self.height_cm:g}) does not have "
                f"the shape of width_px x height_px ({self.width_px} x {self.height_px}): "
                f"pixels would be {ratio:.2g} times as wide as tall; give the visible area in "
                "cm (e.g. 59.8 x 33.6 for a 27-inch 16:9 screen)"
            )
        return self

    def geometry(self):
        """The generator's ``DisplayGeometry`` for this screen."""
        from generator.geometry import DisplayGeometry

        return DisplayGeometry(
            width_px=self.width_px,
            height_px=self.height_px,
            width_cm=self.width_cm,
            height_cm=self.height_cm,
            distance_cm=self.distance_cm,
        )


class StimulusSettings(StrictTable):
    """What is generated.

    Attributes:
        model: generator model: ``tiny``, a named model or a local pipeline directory (a
            relative path is relative to the protocol file, as for ``lora`` and ``scenes``, so a
            protocol travels with its model; ``protocol.load_protocol`` stores its absolute
            path; one found only from the working directory is kept as given).
        device: torch device for generation.
        image_width_px, image_height_px: stimulus size, shown 1:1 at the screen centre.
        classes: class labels (class-conditional models); one is drawn per trial.
        prompts: text prompts (text-conditional models); one is drawn per trial.
        seeds: explicit generation seeds; or ``seed_start`` + ``seed_count`` consecutive seeds.
        num_steps: sampler steps (None = the model's default).
        scenes: where a scene-conditioned model's scenes come from: ``pool`` (the project's
            held-out photographs; crop, zoom and flip picked by the seed) or a folder of the
            lab's photographs (JPEG/PNG; a relative path is relative to the protocol file). One
            scene per trial, picked by the trial's seed (``fovea run|simulate --scenes DIR``
            overrides). Prompt and class models take no scenes.
        reference: what the foveated image is compared with: ``generated`` (the full-resolution
            generation of the same scene and seed: does foveation show?) or ``original`` (the
            photograph the scene came from: foveated generation against reality; scene models
            only).
        lora: a LoRA file in the Foveated Diffusion release's format (``generator.release_lora``)
            merged into ``model``, which must then be a FLUX.2 pipeline directory; a relative
            path is relative to the protocol file; ``protocol.load_protocol`` checks the file
            exists and stores its absolute path. None: no LoRA.
        decode: how a latent model's foveated images are decoded: ``full`` (as the twin) or
            ``foveated`` (the periphery at the resolution its tokens carry: faster, the
            periphery's pixels differ slightly; :mod:`generator.decoding`). Pixel models
            (``default``, ``tiny``) take ``full``.
    """

    model: str = Field(default="tiny", min_length=1)
    device: str = Field(default="cpu", pattern=r"^(cpu|cuda(:\d+)?|mps)$")
    image_width_px: int = Field(default=512, ge=32, le=4096)
    image_height_px: int = Field(default=512, ge=32, le=4096)
    classes: list[int] = Field(default_factory=lambda: [0])
    prompts: list[str] = Field(default_factory=list)
    seeds: list[int] = Field(default_factory=list)
    seed_start: int = Field(default=1000, ge=0)
    seed_count: int = Field(default=100, ge=1, le=1_000_000)
    num_steps: int | None = Field(default=None, ge=1, le=1000)
    scenes: str = Field(default="pool", min_length=1)
    reference: Reference = "generated"
    lora: str | None = Field(default=None, min_length=1)
    decode: Decode = "full"
    dtype: Dtype = DEFAULT_DTYPE

    @field_validator("model")
    @classmethod
    def _model_directory(cls, value: str, info: ValidationInfo) -> str:
        """A pipeline directory (one with ``model_index.json``) named relative to
        ``context["protocol_dir"]`` as its absolute path; presets and anything else as given;
        then the name is checked (a preset or an existing directory, ``check_model``)."""
        path = Path(value).expanduser()
        base = (info.context or {}).get("protocol_dir")
        if path.is_absolute() or base is None:
            return check_model(value)
        beside = Path(base) / path
        if (beside / "model_index.json").is_file():
            return check_model(str(beside.absolute()))
        return check_model(value)

    @field_validator("image_width_px", "image_height_px")
    @classmethod
    def _whole_tokens(cls, value: int, info: ValidationInfo) -> int:
        return check_image_size(info.data.get("model"), value)

    @field_validator("lora")
    @classmethod
    def _lora_file(cls, value: str | None, info: ValidationInfo) -> str | None:
        """The LoRA file's absolute path; relative to ``context["protocol_dir"]`` when given
        (``protocol.load_protocol``), else to the working directory."""
        if value is None:
            return None
        path = Path(value).expanduser()
        base = (info.context or {}).get("protocol_dir")
        if not path.is_absolute() and base is not None:
            path = Path(base) / path
        if not path.is_file():
            raise ValueError(f"LoRA file {path} does not exist")
        return str(path.absolute())

    @field_validator("seeds", "classes")
    @classmethod
    def _non_negative(cls, value: list[int]) -> list[int]:
        if any(v < 0 for v in value):
            raise ValueError("values must be >= 0")
        return value

    @field_validator("prompts")
    @classmethod
    def _non_empty(cls, value: list[str]) -> list[str]:
        if any(not p.strip() for p in value):
            raise ValueError("prompts must not be empty strings")
        return value

    @model_validator(mode="after")
    def _one_conditioning(self) -> StimulusSettings:
        if self.prompts and self.classes != [0]:
            raise ValueError("give either classes or prompts, not both")
        if not self.prompts and not self.classes:
            raise ValueError("classes must list at least one class label (or give prompts)")
        if self.reference == "original" and self.prompts:
            raise ValueError(
                "reference 'original' compares with the photograph a scene came from; prompt "
                "models take no scenes (use reference 'generated')"
            )
        if self.lora is not None and not is_pipeline_directory(self.model):
            raise ValueError(
                f"lora needs a FLUX.2 pipeline directory as model (the release's LoRAs fit "
                f"FLUX.2 [klein]); model {self.model!r} is not a directory"
            )
        if self.lora is not None:
            from generator.model_directory import FLUX2_PIPELINES, pipeline_class

            name = pipeline_class(Path(self.model).expanduser())
            if name is not None and name not in FLUX2_PIPELINES:
                raise ValueError(
                    f"lora needs a FLUX.2 pipeline directory as model (the release's LoRAs fit "
                    f"FLUX.2 [klein]); model {self.model!r} is a {name} directory"
                )
        if self.decode == "foveated" and not is_pipeline_directory(self.model):
            raise ValueError(
                f"decode 'foveated' is for latent models (a FLUX pipeline directory); model "
                f"{self.model!r} works in pixels, where decoding costs nothing"
            )
        return self

    def seed_pool(self) -> list[int]:
        """The seeds trials draw from."""
        return (
            list(self.seeds)
            if self.seeds
            else list(range(self.seed_start, self.seed_start + self.seed_count))
        )

    def conditionings(self) -> list[int | str]:
        """The class labels or prompts trials draw from."""
        return list(self.prompts) if self.prompts else list(self.classes)


class Condition(StrictTable):
    """One experimental condition: a layout mode, a fixation location and a level range.

    Attributes:
        name: identifier written to ``beh.tsv`` (letters, digits, ``_``, ``-``).
        layout_mode: ``acuity`` or ``circle``.
        fixation_deg: fixation target (x, y) in degrees from the screen centre (x right, y up).
        level_variable: what ``level`` means (see the module docstring).
        level_min, level_max: range of the adaptive procedures.
        start_level: staircases' start (default: the range's middle on the staircases' step
            scale, ``protocol.levels.start_level``).
        levels: explicit levels (constant stimuli; QUEST+ stimulus domain when given).

    Which levels a level variable has is ``generator.levels.LEVEL_DOMAINS``' (strength > 0,
    0 < radius_shrink < 1, periphery factor 2 or 4): ``levels``, ``level_min``, ``level_max`` and
    ``start_level`` are validated by it (for a discrete variable, whose tested levels are
    ``levels``, the range ends need only be positive).
        padding_deg: acuity mode: extra full-acuity radius for tracker error.
        acuity: acuity model (``linear`` or ``geisler_perry``).
        max_level: coarsest token level of acuity layouts.
        circle_radius: circle mode with ``periphery_factor`` levels: the fixed radius.
        periphery_factor: circle mode with ``radius_shrink`` levels: the fixed factor.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
    layout_mode: Literal["acuity", "circle"] = "acuity"
    # A TOML array is a list: the pair itself is read laxly, its numbers strictly.
    fixation_deg: tuple[StrictFloat, StrictFloat] = Field(default=(0.0, 0.0), strict=False)
    level_variable: LevelVariable = "strength"
    level_min: float = 0.1
    level_max: float = 4.0
    start_level: float | None = None
    levels: list[float] = Field(default_factory=list)
    padding_deg: float = Field(default=0.0, ge=0, le=30)
    acuity: Literal["linear", "geisler_perry"] = "linear"
    max_level: Literal[1, 2, 4, 8, 16] = 8
    circle_radius: float = Field(default=DEFAULT_CIRCLE_RADIUS, gt=0, le=1.5)
    periphery_factor: Literal[2, 4] = 2

    @field_validator("fixation_deg")
    @classmethod
    def _finite_fixation(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not all(math.isfinite(v) and abs(v) <= 60 for v in value):
            raise ValueError("fixation_deg must be two finite numbers within +-60 deg")
        return value

    @field_validator("levels")
    @classmethod
    def _levels(cls, value: list[float]) -> list[float]:
        if any(not math.isfinite(v) for v in value):
            raise ValueError("levels must be finite numbers")
        if len(set(value)) != len(value):
            raise ValueError("levels must not repeat")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Condition:
        allowed = LEVEL_VARIABLES_BY_MODE[self.layout_mode]
        if self.level_variable not in allowed:
            raise ValueError(
                f"level_variable {self.level_variable!r} does not apply to layout_mode "
                f"{self.layout_mode!r}; use {' or '.join(allowed)}"
            )
        self._check_levels()
        if self.level_min >= self.level_max:
            raise ValueError(
                f"level_min ({self.level_min}) must be below level_max ({self.level_max})"
            )
        if (
            self.start_level is not None
            and not self.level_min <= self.start_level <= self.level_max
        ):
            raise ValueError("start_level must lie within [level_min, level_max]")
        return self

    def _check_levels(self) -> None:
        """Every level the condition gives is one its level variable has
        (``generator.levels.LEVEL_DOMAINS``). A discrete variable (periphery factor) is tested
        at its explicit ``levels`` only; its range ends are not levels with a layout and need
        only be positive. Each must be finite (``inf`` and ``nan`` are TOML floats)."""
        for name, value in self._range_ends():
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value}")
        domain = LEVEL_DOMAINS[self.level_variable]
        variable = self.level_variable
        ends = [(f"{name} = {value:g}", value) for name, value in self._range_ends()]
        if domain.values is not None:
            if not self.levels:
                raise ValueError(
                    f"{variable} needs explicit levels "
                    f"({' and/or '.join(f'{v:g}' for v in domain.values)})"
                )
            for name, value in self._range_ends():
                if not value > 0:
                    raise ValueError(f"{name} must be > 0, got {value:g}")
            ends = []
        for what, value in [*ends, *((f"levels has {v:g}", v) for v in self.levels)]:
            if not domain.testable(value):
                raise ValueError(
                    f"{what}: {variable} levels must be {domain.describe()} ({domain.why})"
                )

    def _range_ends(self) -> list[tuple[str, float]]:
        """(field, value) of ``level_min``, ``level_max`` and ``start_level`` when set."""
        ends = [("level_min", self.level_min), ("level_max", self.level_max)]
        if self.start_level is not None:
            ends.append(("start_level", self.start_level))
        return ends
