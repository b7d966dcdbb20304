"""The check a session runs at start: a stimulus set is refused when it does not match the
protocol, the session's generator or its scenes, or when its files are missing or damaged.

Nothing is compared by where it lies: a set may be copied or moved (its files are named relative
to it), and so may the protocol, the scene folder (compared scene by scene) and a model directory
(compared by its weights' hash: ``moved_model_directory``)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from generator.errors import FoveaError
from generator.precision import DEFAULT_DTYPE
from protocol.geometry import geometry_record, stimulus_geometry
from protocol.stimulus_settings import is_pipeline_directory
from stimuli.manifest import MANIFEST, StimulusSet, read_manifest, scene_hash, shard_manifests
from stimuli.store import sha256_file, stimulus_key


def check_stimulus_set(
    directory: str | Path,
    *,
    protocol,
    fingerprint: dict | None = None,
    verify_files: bool = True,
    scenes: str | None = None,
) -> StimulusSet:
    """The check a session runs at start: refuse a set that does not match or is damaged.

    Args:
        directory: the set directory (``fovea stimuli build --out``).
        protocol: ``protocol.LoadedProtocol`` or ``Protocol`` the session runs.
        fingerprint: the session generator's ``ModelFingerprint.as_dict()`` (or a dict with at
            least ``weights_sha256``), to compare with the set's; None: the model is compared by
            name only.
        verify_files: hash every file (a full read); False checks presence only.
        scenes: the session's scene-source spec (``protocol.scenes.scenes_spec``); None:
            the protocol's. A set built by a scene model is checked scene by scene: every seed's
            scene from this source must be the one the set was built from.

    Returns:
        The set, for lookups (``session_scenes`` filled).

    Raises:
        FoveaError: naming the directory and every problem (first few): no or partial manifest,
            different model / weights / sampler / device kind / geometry / seeds / conditions /
            scenes / reference than the protocol and generator, missing or corrupted (hash
            mismatch) files.
    """
    directory = Path(directory)
    manifest = read_manifest(manifest_path(directory))
    p = getattr(protocol, "protocol", protocol)
    geometry = geometry_record(stimulus_geometry(p))
    problems = _settings_problems(manifest, p, fingerprint=fingerprint, geometry=geometry)
    session_scenes: dict[int, str] = {}
    if not problems:
        session_scenes = _planned_problems(manifest, protocol, geometry, scenes, problems)
    if not problems:
        problems = _file_problems(directory, manifest["entries"], verify_files=verify_files)
    if problems:
        built_for = (manifest.get("protocol") or {}).get("name")
        if built_for != p.name:
            # Another protocol's set: a build of this one into its folder is refused
            # (``stimuli.build``), so the way on is the right set or another folder.
            raise FoveaError(
                f"stimulus set {directory} was built for protocol {built_for!r} and does not "
                f"match protocol {p.name!r}: "
                + "; ".join(problems)
                + f"; give the set built for {p.name!r}, "
                "or build one with `fovea stimuli build PROTOCOL --out DIR` into another "
                "folder"
            )
        raise FoveaError(
            f"stimulus set {directory} does not match protocol {p.name!r} or is damaged: "
            + "; ".join(problems)
            + f"; rebuild it with `fovea stimuli build PROTOCOL --out {shlex.quote(str(directory))}`"
        )
    return StimulusSet(directory=directory, manifest=manifest, session_scenes=session_scenes)


def missing_references_note(sset: StimulusSet, protocol) -> str | None:
    """A line when the set holds the full-resolution references of only some of the protocol's
    seeds (built with ``--max-seeds`` or ``--only foveated``): a session generates the others as
    it goes, at their full cost. None when every seed's references are in the set."""
    p = getattr(protocol, "protocol", protocol)
    seeds = [int(v) for v in p.stimulus.seed_pool()]
    held = {int(e["seed"]) for e in sset.entries if e["kind"] == "reference"}
    covered = sum(seed in held for seed in seeds)
    if covered == len(seeds):
        return None
    plan = sset.manifest.get("plan") or {}
    how = (
        f" (built with --max-seeds {plan['max_seeds']})"
        if plan.get("max_seeds")
        else f" (built with --only {plan['only']})"
        if plan.get("only") == "foveated"
        else ""
    )
    return (
        f"note: the set holds references for {covered} of the protocol's {len(seeds)} seeds{how}; "
        "a session generates the others' full-resolution twins during its trials"
    )


def generator_weights(protocol, directory: str | Path, *, log=print) -> dict:
    """``{"weights_sha256": ...}`` of the protocol's generator (its model with its LoRA, in its
    dtype), for ``check_stimulus_set``'s ``fingerprint``: the weights a session compares with the
    set's at start (``study.session_setup.stimulus_set_record``). Loaded on the CPU (the bytes
    are the same on every device), after ``directory`` is found to hold a set's manifest."""
    from generator.loading import load_generator
    from generator.weights_hash import weights_sha256

    manifest_path(Path(directory))  # no set there: said before the model loads
    s = getattr(protocol, "protocol", protocol).stimulus
    log(f"loading generator {s.model!r} to compare its weights with the set's ...")
    generator = load_generator(s.model, device="cpu", dtype=s.dtype, lora=s.lora, decode=s.decode)
    return {"weights_sha256": weights_sha256(generator)}


def manifest_path(directory: Path) -> Path:
    """``directory``'s merged manifest; FoveaError when the set is not built or not merged."""
    path = directory / MANIFEST
    if path.is_file():
        return path
    if directory.is_file() or not directory.exists():
        raise FoveaError(
            f"stimulus set {directory} is {'a file' if directory.is_file() else 'not there'}: "
            "give the set's folder (the --out of `fovea stimuli build`)"
        )
    from stimuli.claim import running_builds

    running = running_builds(directory)
    if running:  # not a build that stopped: one that writes its manifest when it ends
        raise FoveaError(
            f"stimulus set {directory} is being built (protocol {running[0]!r}): its "
            f"{MANIFEST} is written when the build ends; check the set then"
        )
    groups = shard_manifests(directory)
    if groups:
        ((count, shards),) = list(groups.items())[:1]
        raise FoveaError(
            f"stimulus set {directory} is not merged ({len(shards)} of {count} shard manifests); "
            f"run `fovea stimuli merge {shlex.quote(str(directory))}` once every shard has finished"
        )
    images = sum(1 for _ in directory.glob("objects/*/*.png"))
    if images:  # a build stopped or failed before its manifest: it continues, reusing them
        raise FoveaError(
            f"stimulus set {directory} has no {MANIFEST} but holds {images} images: its build "
            "did not finish; run the same `fovea stimuli build` again: it reuses them"
        )
    raise FoveaError(
        f"stimulus set {directory} has no {MANIFEST}; build it with "
        "`fovea stimuli build PROTOCOL --out DIR`"
    )


def _settings_problems(manifest: dict, p, *, fingerprint: dict | None, geometry: dict) -> list[str]:
    """Where the set's model, sampler steps, generator fingerprint, geometry and reference kind
    differ from the protocol's and the session generator's."""
    problems: list[str] = []
    model = manifest["model"]
    moved = model.get("model") != p.stimulus.model and moved_model_directory(
        model.get("model"), p.stimulus.model
    )
    if model.get("model") != p.stimulus.model and not moved:
        problems.append(
            f"model {model.get('model')!r} in the set, {p.stimulus.model!r} in the protocol"
        )
    lora = None if p.stimulus.lora is None else sha256_file(Path(p.stimulus.lora))
    if model.get("lora_sha256") != lora:
        problems.append(
            f"LoRA {_short(model.get('lora_sha256'))} in the set, {_short(lora)} in the protocol"
        )
    if model.get("decode", "full") != p.stimulus.decode:
        problems.append(
            f"decode {model.get('decode', 'full')!r} in the set, {p.stimulus.decode!r} in the "
            "protocol"
        )
    if model.get("dtype", DEFAULT_DTYPE) != p.stimulus.dtype:
        problems.append(
            f"dtype {model.get('dtype', DEFAULT_DTYPE)!r} in the set, {p.stimulus.dtype!r} in the "
            "protocol"
        )
    if p.stimulus.num_steps is not None and model.get("steps") != p.stimulus.num_steps:
        problems.append(
            f"sampler steps {model.get('steps')} in the set, {p.stimulus.num_steps} in the protocol"
        )
    if fingerprint is not None:
        by_location = ("model", "model_id") if moved else ("model",)
        for field, value in fingerprint.items():
            if field in model and field not in by_location and model[field] != value:
                problems.append(
                    f"model {field} {model[field]!r} in the set, {value!r} in the session's generator"
                )
    if manifest["geometry"] != geometry:
        problems.append(
            f"geometry {json.dumps(manifest['geometry'])} in the set, {json.dumps(geometry)} in the protocol"
        )
    if manifest["reference"] != p.stimulus.reference:
        problems.append(
            f"references are {manifest['reference']!r} in the set, {p.stimulus.reference!r} in "
            "the protocol"
        )
    return problems


def moved_model_directory(in_set: str | None, in_protocol: str) -> bool:
    """Whether the set was built from a local pipeline directory (its recorded path, which need
    not exist here) and the protocol names another path here: the same directory moved or copied
    to another machine. Its weights decide, not its path: the set's keys hold the weights' hash
    and a session compares it with its generator's (``study.session_setup``)."""
    if not in_set or not is_pipeline_directory(in_protocol):
        return False
    path = Path(in_set)
    if path.expanduser().resolve() == Path(in_protocol).expanduser().resolve():
        return False  # the directory the set was built from: not moved
    return path.is_absolute() or len(path.parts) > 1 or in_set.startswith(("~", "."))


def _short(sha256: str | None) -> str:
    return "none" if sha256 is None else f"sha256 {sha256[:12]}..."


def _planned_problems(
    manifest: dict, protocol, geometry: dict, scenes: str | None, problems: list[str]
) -> dict[int, str]:
    """The session's scenes (seed -> sha256, as ``_session_scenes``); adds to ``problems`` a scene
    that differs from the set's or the images the protocol needs that the set lacks."""
    from stimuli.plan import plan_stimuli

    p = getattr(protocol, "protocol", protocol)
    plan = manifest["plan"]
    planned = plan_stimuli(p, only=plan.get("only", "all"), max_seeds=plan.get("max_seeds"))
    session_scenes = _session_scenes(manifest, protocol, planned, scenes, problems)
    if problems:
        return session_scenes
    planned = [s.with_scene(session_scenes.get(s.seed)) for s in planned]
    keys = {e["key"] for e in manifest["entries"]}
    model = manifest["model"]
    absent = [
        s
        for s in planned
        if stimulus_key(fingerprint=model, geometry=geometry, stimulus=s) not in keys
    ]
    if absent:
        problems.append(
            f"{len(absent)} of {len(planned)} images the protocol needs are not in the set (first: "
            f"{absent[0].label()}); were seeds, conditions or levels changed after the build?"
        )
    return session_scenes


def _file_problems(directory: Path, entries: list[dict], *, verify_files: bool) -> list[str]:
    """Entries whose file is missing or (``verify_files``) whose sha256 differs; stops after 5."""
    problems: list[str] = []
    for entry in entries:
        file = directory / entry["file"]
        what = f"{entry['file']} ({_entry_label(entry)})"
        if not file.is_file():
            problems.append(f"{what} is missing")
        elif verify_files:
            digest = sha256_file(file)
            if digest != entry["sha256"]:
                problems.append(
                    f"{what} is corrupted (sha256 {digest[:12]}..., manifest {entry['sha256'][:12]}...)"
                )
        if len(problems) >= 5:
            problems.append("... (stopped after 5 problems)")
            break
    return problems


def _session_scenes(manifest, protocol, planned, scenes, problems: list[str]) -> dict[int, str]:
    """Seed -> sha256 of the scene the session makes for it, for the planned seeds of a set
    built with scenes ({} without); a seed whose scene differs from the set's is a problem."""
    made_from = manifest["scenes"]
    if made_from is None:
        return {}
    from generator.scene_sources import scene_source

    p = getattr(protocol, "protocol", protocol)
    if scenes is None:
        from protocol.scenes import scenes_spec

        scenes = scenes_spec(protocol) if hasattr(protocol, "path") else p.stimulus.scenes
    source = scene_source(scenes)
    in_set = {int(e["seed"]): scene_hash(e) for e in manifest["entries"]}
    out: dict[int, str] = {}
    for seed in sorted({s.seed for s in planned}):
        scene = source.scene(
            seed=seed,
            width_px=p.stimulus.image_width_px,
            height_px=p.stimulus.image_height_px,
            factor=int(made_from["factor"]),
        )
        out[seed] = scene.sha256
        if seed in in_set and in_set[seed] != scene.sha256:
            problems.append(
                f"seed {seed}'s scene from {scenes!r} ({scene.source}, sha256 "
                f"{scene.sha256[:12]}...) is not the one the set was made from (sha256 "
                f"{str(in_set[seed])[:12]}... from {made_from['spec']!r})"
            )
            break
    return out


def _entry_label(entry: dict) -> str:
    if entry["kind"] == "reference":
        return f"reference seed {entry['seed']} conditioning {entry['conditioning']!r}"
    return f"foveated seed {entry['seed']} {entry['condition']} level {entry['level']:g}"
