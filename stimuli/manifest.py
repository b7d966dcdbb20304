"""Stimulus-set manifests: write, read, merge shards, and the set's lookups (the check a session
runs at start is :mod:`stimuli.check`'s).

A set directory holds ``objects/`` (see ``stimuli.store``) and ``manifest.json``; a sharded build
writes ``manifest.shard-III-of-NNN.json`` per shard and ``merge_manifests`` combines them (the
last shard to finish does it automatically). Shards must agree on the protocol (name and content
hash), model, geometry, scenes and plan, not on where the protocol, LoRA or scene folder were:
shards built on several machines name them by different paths.

Nothing reads the set through a path recorded in it: ``protocol.path`` (absolute) and the scenes'
``spec`` are provenance; entries' ``file`` is relative to the set directory, so a set can be
copied, moved or mounted read-only.

``manifest.json``::

    {"format": "fovea-stimulus-set/2",
     "protocol": {"name", "path", "sha256", "settings_sha256"}, "stimulus": {... protocol [stimulus] table ...},
     "geometry": {"display": {...}, "image_size_px", "image_origin_px"},
     "model": {"model", "model_id", "weights_sha256", "steps", "shift", "guidance_scale",
               "token_px", "device_type", "dtype", "lora_sha256" (only with a LoRA),
               "decode" (only when "foveated")},
     "scenes": {"spec", "source", "factor"} | null (models without scenes),
     "reference": "generated" | "original",
     "plan": {"only", "max_seeds", "planned": N, "skipped_conditions": [...]},
     "shards": [{"index", "count", "host", "device", "fovea" (version), "generated", "reused",
                 "total_s", ...}],
     "timings": {"generation_s", "total_s"},
     "entries": [{"key", "kind", "reference", "seed", "conditioning",
                  "scene": {"sha256", "source", "size_px"} | null, "condition", "level",
                  "fixation_deg", "gaze_px", "spec", "file", "sha256", "bytes", "tokens",
                  "tokens_full", "token_ratio", "seconds"}, ...]}

References are keyed by seed, conditioning *and* scene: a session's check recomputes the scene
of every seed from its own scene source and refuses a set made from other scenes.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from generator.atomic import write_atomic
from generator.errors import FoveaError
from stimuli.store import ObjectStore, read_png

FORMAT = "fovea-stimulus-set/2"
MANIFEST = "manifest.json"
_SHARD_RE = re.compile(r"^manifest\.shard-(\d+)-of-(\d+)\.json$")


def shard_manifest_name(index: int, count: int) -> str:
    return f"manifest.shard-{index:03d}-of-{count:03d}.json"


def shard_of_manifest(name: str) -> tuple[int, int] | None:
    """(index, count) of a shard manifest's file name; None for another name."""
    m = _SHARD_RE.match(name)
    return None if m is None else (int(m.group(1)), int(m.group(2)))


def write_json_atomic(path: Path, data: dict) -> None:
    """Write a manifest atomically (``generator.atomic``): stopped mid-write, the old manifest
    stays and no temporary is left in the set."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(data, indent=1) + "\n")


def read_manifest(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FoveaError(f"stimulus manifest {path} is unreadable: {error}") from None
    if isinstance(data, dict) and str(data.get("format", "")).startswith("fovea-stimulus-set/"):
        if data["format"] != FORMAT:
            raise FoveaError(
                f"{path} is a {data['format']!r} manifest from another version of fovea "
                f"({FORMAT!r} expected); rebuild the set with `fovea stimuli build`"
            )
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise FoveaError(f"{path} is not a stimulus-set manifest (format {FORMAT!r} expected)")
    problem = _shape_problem(data)
    if problem:
        raise FoveaError(
            f"stimulus manifest {path}: {problem}; it was edited or damaged, rebuild the set "
            "with `fovea stimuli build`"
        )
    return data


# The manifest's fields a session and `fovea stimuli check` read, with their JSON types.
_FIELD_TYPES = {
    "protocol": dict,
    "geometry": dict,
    "model": dict,
    "scenes": (dict, type(None)),
    "reference": str,
    "plan": dict,
    "entries": list,
}
_ENTRY_TYPES = {
    "key": str,
    "kind": str,
    "reference": (str, type(None)),
    "seed": int,
    "conditioning": (int, str),
    "scene": (dict, type(None)),
    "condition": (str, type(None)),
    "level": (int, float, type(None)),
    "spec": dict,
    "gaze_px": (list, type(None)),
    "file": str,
    "sha256": str,
}


def _shape_problem(data: dict) -> str | None:
    """What is wrong with the shape of a manifest's fields and entries (None: nothing)."""
    for field, kind in _FIELD_TYPES.items():
        if field not in data:
            return f"field {field!r} is missing"
        if not isinstance(data[field], kind):
            return f"field {field!r} is {_json_type(data[field])}"
    token_px = data["model"].get("token_px")
    if not isinstance(token_px, int) or isinstance(token_px, bool) or token_px < 1:
        return "field 'model' has no positive integer 'token_px'"
    for number, entry in enumerate(data["entries"], 1):
        if not isinstance(entry, dict):
            return f"entry {number} is {_json_type(entry)}, not an object"
        for field, kind in _ENTRY_TYPES.items():
            if field not in entry:
                return f"entry {number} has no {field!r}"
            if not isinstance(entry[field], kind) or isinstance(entry[field], bool):
                return f"entry {number}'s {field!r} is {_json_type(entry[field])}"
    return None


def _json_type(value) -> str:
    """``value``'s JSON type with its article, for messages."""
    for kind, name in ((bool, "a boolean"), (dict, "an object"), (list, "an array")):
        if isinstance(value, kind):
            return name
    if isinstance(value, str):
        return "a string"
    return "null" if value is None else "a number"


def shard_manifests(directory: Path) -> dict[int, list[tuple[int, Path]]]:
    """Shard manifests present, by shard count: ``{count: [(index, path), ...]}``."""
    found: dict[int, list[tuple[int, Path]]] = {}
    if directory.is_dir():
        for path in sorted(directory.iterdir()):
            m = _SHARD_RE.match(path.name)
            if m:
                found.setdefault(int(m.group(2)), []).append((int(m.group(1)), path))
    return found


def merge_manifests(directory: str | Path, *, quiet_if_incomplete: bool = False) -> Path | None:
    """Combine the shard manifests of ``directory`` into ``manifest.json``.

    Args:
        directory: the set directory.
        quiet_if_incomplete: return None (instead of raising) when shards are still missing.

    Raises:
        FoveaError: no shards, shards missing, or shards built from different protocols, models
            or geometry.
    """
    directory = Path(directory)
    groups = shard_manifests(directory)
    if not groups:
        raise FoveaError(f"{directory}: no shard manifests (manifest.shard-I-of-N.json) to merge")
    if len(groups) > 1:
        raise FoveaError(
            f"{directory}: shard manifests of different shard counts ({', '.join(map(str, sorted(groups)))}); "
            "remove the stale ones"
        )
    ((count, shards),) = groups.items()
    shards = sorted(shards)
    present = {i for i, _ in shards}
    missing = sorted(set(range(1, count + 1)) - present)
    if missing:
        if quiet_if_incomplete:
            return None
        raise FoveaError(
            f"{directory}: shards {', '.join(map(str, missing))} of {count} are missing; run "
            f"`fovea stimuli build PROTOCOL --shard I/{count}` for them, then merge again"
        )
    parts = [read_manifest(path) for _, path in shards]
    first = parts[0]
    _check_no_other_protocols_manifest(directory, first)
    for (_, path), part in zip(shards, parts, strict=True):
        for field in _SHARED_FIELDS:
            if _what_counts(field, part.get(field)) != _what_counts(field, first.get(field)):
                raise FoveaError(
                    f"{path}: field {field!r} differs from shard 1 ({shards[0][1].name}); all shards "
                    "must come from the same protocol, model and options"
                )
    # By image and plan place: conditions that present the same images (same fixation, layout
    # and level under two names) share keys, and each needs its own entry.
    entries: dict[tuple, dict] = {}
    for part in parts:
        for entry in part["entries"]:
            entries.setdefault((entry["key"], entry["condition"], entry["level"]), entry)
    merged = {k: v for k, v in first.items() if k not in ("entries", "shards", "timings")}
    merged["shards"] = [s for part in parts for s in part.get("shards", [])]
    merged["timings"] = {
        "generation_s": sum(p.get("timings", {}).get("generation_s", 0.0) for p in parts),
        "total_s": max(p.get("timings", {}).get("total_s", 0.0) for p in parts),
    }
    merged["entries"] = sorted(entries.values(), key=_entry_order)
    planned = first["plan"].get("planned")
    if planned is not None and len(merged["entries"]) != planned:
        raise FoveaError(
            f"{directory}: the shards hold {len(merged['entries'])} images, the plan has {planned}; "
            "rebuild the shards with the same options"
        )
    out = directory / MANIFEST
    write_json_atomic(out, merged)
    return out


def _check_no_other_protocols_manifest(directory: Path, shard: dict) -> None:
    """A set folder holds one protocol's set: merging another protocol's shards into it would
    replace its ``manifest.json`` (the build refuses the same: ``stimuli.build``). An
    unreadable manifest is replaced, as a build replaces it."""
    path = directory / MANIFEST
    if not path.is_file():
        return
    try:
        held = (read_manifest(path).get("protocol") or {}).get("name")
    except FoveaError:
        return
    name = (shard.get("protocol") or {}).get("name")
    if held != name:
        raise FoveaError(
            f"{directory} holds the stimulus set of protocol {held!r} ({MANIFEST}); merging the "
            f"shards of {name!r} into it would replace it: move the shard manifests and their "
            "objects/ to another folder and merge there"
        )


#: The fields all shards of a set agree on (as ``_what_counts`` reads them).
_SHARED_FIELDS = ("protocol", "stimulus", "geometry", "model", "scenes", "reference", "plan")


def stale_shards(
    directory: Path, manifest: dict, *, index: int, count: int
) -> list[tuple[int, Path]]:
    """(index, path) of the folder's other shard manifests of ``count`` shards made with another protocol,
    model or options than ``manifest`` (shard ``index``'s): an earlier build's, their shards
    not yet built again. A shard finishing beside them does not merge (``merge_manifests``
    would refuse them); unreadable ones count as stale."""
    stale = []
    for i, path in shard_manifests(directory).get(count, []):
        if i == index:
            continue
        try:
            part = read_manifest(path)
        except FoveaError:
            stale.append((i, path))
            continue
        if any(
            _what_counts(f, part.get(f)) != _what_counts(f, manifest.get(f)) for f in _SHARED_FIELDS
        ):
            stale.append((i, path))
    return stale


def _what_counts(field: str, value):
    """A manifest field as shards must agree on it: where the files were on the machine that
    built the shard is left out (shards built on several machines, or from several working
    directories, name the same protocol, LoRA and scene folder by different paths). The protocol
    is its name and content hash, the LoRA its hash (the model's ``lora_sha256``), a scene folder
    its content (each entry's scene hash, part of its key). A protocol recorded with its
    settings' hash is its name and that hash (a copy with CRLF line endings or another comment
    is the same protocol: ``protocol.identity``). A model directory is its weights' hash, not
    its path (``stimuli.fingerprint``)."""
    if field == "protocol" and isinstance(value, dict):
        if value.get("settings_sha256"):
            return {"name": value.get("name"), "settings_sha256": value["settings_sha256"]}
        return {k: v for k, v in value.items() if k != "path"}
    if field == "stimulus" and isinstance(value, dict):
        # Paths as resolved on each machine: the protocol's settings hash holds them as
        # written, the model's weights and LoRA hashes and the scenes' hashes what they are.
        return {k: v for k, v in value.items() if k not in ("lora", "model", "scenes")}
    if field == "model" and isinstance(value, dict):  # its weights' hash identifies it
        return {k: v for k, v in value.items() if k != "model"}
    if field == "scenes" and isinstance(value, dict) and value.get("spec") != "pool":
        return {k: v for k, v in value.items() if k not in ("spec", "source")}
    return value


def _entry_order(entry: dict):
    return (
        entry["kind"] != "reference",
        str(entry.get("condition")),
        entry.get("level") or 0.0,
        entry["seed"],
        str(entry["conditioning"]),
    )


@dataclass
class StimulusSet:
    """A checked stimulus set.

    Attributes:
        directory: the set directory.
        manifest: the parsed manifest.
        session_scenes: seed -> sha256 of the scene the session makes for it (its own scene
            source, checked against the set: ``check_stimulus_set``); empty without scenes.
            Lookups take the seed's scene from here, so an image of another scene is never
            served.
    """

    directory: Path
    manifest: dict
    session_scenes: dict[int, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.store = ObjectStore(self.directory)
        self._by_ref = {}
        self._by_fov = {}
        for e in self.manifest["entries"]:
            scene = scene_hash(e)
            if e["kind"] == "reference":
                self._by_ref[(e["seed"], _cond(e["conditioning"]), scene)] = e
            else:
                key = (
                    e["seed"],
                    _cond(e["conditioning"]),
                    scene,
                    e["condition"],
                    float(e["level"]),
                )
                self._by_fov[key] = e

    @property
    def entries(self) -> list[dict]:
        return self.manifest["entries"]

    def _scene(self, seed: int) -> str | None:
        return self.session_scenes.get(int(seed))

    def reference_entry(self, *, seed: int, conditioning: int | str) -> dict | None:
        """The manifest entry of the reference (the full-resolution twin or the original
        photograph, as the set was built) of the seed's scene, or None."""
        return self._by_ref.get((int(seed), _cond(conditioning), self._scene(seed)))

    def foveated_entry(
        self, *, seed: int, conditioning: int | str, condition: str, level: float
    ) -> dict | None:
        """The manifest entry of the foveated image at the condition's fixation target, or None."""
        key = (int(seed), _cond(conditioning), self._scene(seed), condition, float(level))
        return self._by_fov.get(key)

    def read(self, entry: dict) -> np.ndarray:
        """An entry's image ((H, W, 3) uint8)."""
        return read_png(self.directory / entry["file"])

    def reference(self, *, seed: int, conditioning: int | str) -> np.ndarray | None:
        """The reference image ((H, W, 3) uint8), or None if the set lacks it."""
        e = self.reference_entry(seed=seed, conditioning=conditioning)
        return None if e is None else self.read(e)

    def foveated(
        self, *, seed: int, conditioning: int | str, condition: str, level: float
    ) -> np.ndarray | None:
        """The foveated image at the condition's fixation target, or None."""
        e = self.foveated_entry(
            seed=seed, conditioning=conditioning, condition=condition, level=level
        )
        return None if e is None else self.read(e)


def scene_hash(entry: dict) -> str | None:
    """The sha256 of the scene a manifest entry was made from (None without scenes)."""
    return (entry.get("scene") or {}).get("sha256")


def _cond(value):
    return value if isinstance(value, str) else int(value)
