"""Which scenes a session or a stimulus set uses, and their check against the running model.

``scenes_spec`` gives the scene-source spec for ``generator.scene_sources.scene_source``:
``pool`` or an absolute path, from the protocol's ``[stimulus] scenes`` or a ``--scenes``
override. A relative path in the protocol is relative to the protocol file (a protocol and its
photographs travel together); one on the command line is relative to the working directory. A
path that does not exist is refused there, before a generator loads.

``check_scenes`` refuses, with one line naming the file and the reason, what would fail later: a
bad scene folder, or scenes or ``reference = "original"`` with a model that takes no scenes.
Sessions call it before the window opens, ``fovea stimuli build`` before generating;
``fovea check`` and ``fovea stimuli check`` run it before any model loads
(``check_scenes_unloaded``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from generator.errors import FoveaError

POOL = "pool"


def scenes_spec(loaded, *, override: str | Path | None = None) -> str:
    """The scene-source spec of a session.

    Args:
        loaded: ``protocol.LoadedProtocol``.
        override: ``--scenes`` (``pool`` or a folder), or None for the protocol's choice.

    Raises:
        FoveaError: a path that does not exist, named with where it came from.
    """
    if override is not None:
        if str(override) == POOL:
            return POOL
        path = Path(override).expanduser().absolute()
        where = f"--scenes {override}"
    else:
        spec = loaded.protocol.stimulus.scenes
        if spec == POOL:
            return POOL
        path = Path(spec).expanduser()
        if not path.is_absolute():
            path = Path(loaded.path).parent / path
        path = path.absolute()
        where = f"{loaded.path}: [stimulus] scenes = {spec!r} (relative to the protocol file)"
    if not path.exists():
        raise FoveaError(
            f"{where}: {path} does not exist; give a folder of photographs or {POOL!r}"
        )
    return str(path)


@dataclass(frozen=True)
class CheckedScenes:
    """A checked scene source with the model's scene factor.

    Attributes:
        spec: scene-source spec (``pool`` or an absolute path).
        source: ``generator.scene_sources.SceneSource``.
        factor: output pixels per scene pixel of the model.
        width_px, height_px: the stimulus size.
    """

    spec: str
    source: object
    factor: int
    width_px: int
    height_px: int

    def scene(self, seed: int):
        """The seed's ``generator.scene.Scene``."""
        return self.source.scene(
            seed=int(seed), width_px=self.width_px, height_px=self.height_px, factor=self.factor
        )

    def record(self) -> dict:
        """``{"spec", "source", "factor"}`` for sidecars and manifests."""
        return {"spec": self.spec, "source": self.source.describe(), "factor": self.factor}


def check_scenes(*, spec: str, protocol, scene_factor: int | None) -> CheckedScenes | None:
    """Check a scene source against the running model, before anything is written.

    Args:
        spec: scene-source spec (``scenes_spec``).
        protocol: ``protocol.Protocol``.
        scene_factor: the running generator's scene factor (``FoveatedGenerator.scene_factor``,
            or a service's ``start()`` info); None for models that take no scenes.

    Returns:
        The checked source, or None when the model takes no scenes.

    Raises:
        FoveaError: scenes or ``reference = "original"`` given to a model that takes no scenes,
            or a scene source with an unusable file (``generator.scene_sources``' ``SceneError``).
    """
    stimulus = protocol.stimulus
    if scene_factor is None:
        if spec != POOL:
            raise FoveaError(
                f"model {stimulus.model!r} takes prompts or classes, not scenes: drop --scenes "
                f"(or [stimulus] scenes = {stimulus.scenes!r}) or use a scene model (default)"
            )
        if stimulus.reference == "original":
            raise FoveaError(
                f"[stimulus] reference = 'original' needs a scene model; {stimulus.model!r} takes "
                "prompts or classes (use reference = 'generated')"
            )
        return None
    from generator.scene_sources import scene_source

    source = scene_source(spec)
    width_px, height_px = stimulus.image_width_px, stimulus.image_height_px
    source.check(width_px=width_px, height_px=height_px, factor=scene_factor)
    return CheckedScenes(spec, source, int(scene_factor), width_px, height_px)


def unloaded_scene_factor(model: str) -> tuple[bool, int | None]:
    """``(known, factor)``: a model's scene factor without loading it. A preset's is
    ``protocol.models.PRESET_SCENE_FACTOR``; a pipeline directory loads as FLUX.1 or FLUX.2, prompt
    models that take no scenes (None). ``known`` is False for anything else."""
    from protocol.models import PRESET_SCENE_FACTOR
    from protocol.stimulus_settings import is_pipeline_directory

    if model in PRESET_SCENE_FACTOR:
        return True, PRESET_SCENE_FACTOR[model]
    if is_pipeline_directory(model):
        return True, None
    return False, None


def check_scenes_unloaded(*, spec: str, protocol) -> bool:
    """``check_scenes`` without loading the model (``fovea check``, ``fovea stimuli check``): a
    preset's scene factor is known (``protocol.models.PRESET_SCENE_FACTOR``), and a pipeline
    directory (FLUX.1, FLUX.2) takes prompts, so their check is the one a session runs
    (``unloaded_scene_factor``); otherwise only the scene source is checked here. Returns whether
    the check was the session's.

    Raises:
        FoveaError: as ``check_scenes`` (scenes for a model that takes prompts or classes, a bad
            scene folder).
    """
    stimulus = protocol.stimulus
    known, factor = unloaded_scene_factor(stimulus.model)
    if known:
        check_scenes(spec=spec, protocol=protocol, scene_factor=factor)
        return True
    if spec != POOL:
        from generator.scene_sources import scene_source

        scene_source(spec).check(
            width_px=stimulus.image_width_px, height_px=stimulus.image_height_px
        )
    return False
