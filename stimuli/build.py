"""``fovea stimuli build``: pre-generate a protocol's stimulus set (or one shard of it).

Shards: ``--shard I/N`` (1-based) takes every N-th planned image starting at the I-th. Under
``accelerate launch`` (its environment variables present, ``WORLD_SIZE`` > 1) each process takes
the shard of its rank and the GPU of its local rank, with no option needed. Each shard writes its
own manifest; the last to finish merges them (or run ``fovea stimuli merge DIR``). Images already
in the store (an interrupted build, another shard) are reused, not regenerated.

Scene models: every image of a seed is made from that seed's scene (the protocol's ``[stimulus]
scenes`` or ``--scenes``, checked before anything is generated); the scene's record goes into
each entry and its hash into each key. With ``reference = "original"`` the references are the
scenes' original photographs, not generations.
"""

from __future__ import annotations

import os
import platform
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from generator.errors import FoveaError
from protocol.geometry import geometry_record, stimulus_geometry
from protocol.provenance import software_version
from stimuli.claim import claim_set_folder
from stimuli.manifest import (
    FORMAT,
    MANIFEST,
    merge_manifests,
    read_manifest,
    shard_manifest_name,
    shard_manifests,
    shard_of_manifest,
    stale_shards,
    write_json_atomic,
)
from stimuli.store import ObjectStore, stimulus_key


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    def take(self, items: list) -> list:
        return items[self.index - 1 :: self.count]


def parse_shard(text: str) -> Shard:
    """``"2/4"`` -> ``Shard(2, 4)``; FoveaError names the valid form."""
    try:
        a, b = text.split("/")
        shard = Shard(int(a), int(b))
    except ValueError:
        raise FoveaError(f"--shard must look like I/N (e.g. 2/4), got {text!r}") from None
    if not (shard.count >= 1 and 1 <= shard.index <= shard.count):
        raise FoveaError(f"--shard {text}: need 1 <= I <= N")
    return shard


def shard_from_env(environ=None) -> tuple[Shard, int | None] | None:
    """(shard, local rank) when running under ``accelerate launch`` with several processes."""
    env = os.environ if environ is None else environ
    if not any(k.startswith("ACCELERATE_") for k in env):
        return None
    try:
        world = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", env.get("LOCAL_RANK", "0")))
        local = int(env["LOCAL_RANK"]) if "LOCAL_RANK" in env else None
    except ValueError:
        return None
    if world <= 1:
        return None
    return Shard(rank + 1, world), local


def build_stimulus_set(
    *,
    protocol_path: str | Path,
    out: str | Path | None = None,
    shard: Shard | None = None,
    only: str = "all",
    max_seeds: int | None = None,
    device: str | None = None,
    progress: bool = True,
    log=print,
    scenes: str | None = None,
) -> Path:
    """Generate the (shard's) images and write its manifest; returns the manifest path.

    Args:
        protocol_path: the protocol TOML.
        out: set directory (default ``stimulus_sets/<protocol name>``).
        shard: this process's shard (None: the whole set, or the ``accelerate`` rank's shard).
        only: ``all``, ``references`` or ``foveated``.
        max_seeds: only the first N seeds of the protocol's pool.
        device: torch device override (default: the protocol's; ``cuda`` becomes
            ``cuda:<local rank>`` under ``accelerate``).
        progress: show a tqdm progress bar.
        scenes: ``--scenes``: ``pool`` or a folder of photographs instead of the protocol's
            ``[stimulus] scenes``.
    """
    from protocol import load_protocol

    t_start = time.perf_counter()
    loaded = load_protocol(protocol_path)
    p = loaded.protocol
    directory = Path(out) if out is not None else Path("stimulus_sets") / p.name
    shard, device = _shard_and_device(shard, device or p.stimulus.device, log=log)
    # Held to the end: no build of another protocol writes into the folder meanwhile.
    with claim_set_folder(directory, p.name):
        return _build_claimed(
            loaded,
            directory=directory,
            shard=shard,
            device=device,
            only=only,
            max_seeds=max_seeds,
            progress=progress,
            log=log,
            scenes=scenes,
            t_start=t_start,
        )


def _build_claimed(
    loaded, *, directory, shard, device, only, max_seeds, progress, log, scenes, t_start
) -> Path:
    """``build_stimulus_set`` with the set folder claimed (``stimuli.claim``)."""
    from generator.loading import load_generator
    from protocol.scenes import check_scenes, scenes_spec
    from stimuli.fingerprint import fingerprint, keep_recorded_model_id
    from stimuli.plan import plan_stimuli, skipped_conditions

    p = loaded.protocol
    manifests = _check_no_other_protocols_set(directory, loaded, log=log, shard=shard)
    _check_no_other_shard_count(directory, shard)
    planned = plan_stimuli(p, only=only, max_seeds=max_seeds)
    if not planned:
        raise FoveaError(f"{loaded.path}: nothing to pre-generate with --only {only}")
    if shard is None or shard.count == 1:
        _note_fewer_images(directory, manifests.get(MANIFEST), len(planned), log=log)
    mine = shard.take(planned) if shard else planned
    skipped = skipped_conditions(p)
    if skipped and only != "references":  # said before the work, not only after it
        log(
            f"note: staircase levels are continuous; the set holds only the references for "
            f"{', '.join(skipped)} (their foveated images are generated during the trials)"
        )
    log(f"loading generator {p.stimulus.model!r} on {device} ...")
    generator = load_generator(
        p.stimulus.model,
        device=device,
        dtype=p.stimulus.dtype,
        lora=p.stimulus.lora,
        decode=p.stimulus.decode,
    )
    checked = check_scenes(
        spec=scenes_spec(loaded, override=scenes), protocol=p, scene_factor=generator.scene_factor
    )
    fp = fingerprint(
        generator, model=p.stimulus.model, steps=p.stimulus.num_steps, lora=p.stimulus.lora
    ).as_dict()
    fp = keep_recorded_model_id(fp, [m["model"] for m in manifests.values()])
    label = f"shard {shard.index}/{shard.count}" if shard else "stimuli"
    entries, tally = _generate_entries(
        generator,
        mine,
        p=p,
        checked=checked,
        fingerprint=fp,
        store=ObjectStore(directory),
        label=label,
        progress=progress,
        known_seconds=_generation_seconds(manifests.values()),
    )
    tally.total_s = time.perf_counter() - t_start
    plan = dict(only=only, max_seeds=max_seeds, planned=len(planned), skipped_conditions=skipped)
    manifest = _manifest(
        loaded,
        checked=checked,
        fingerprint=fp,
        shard=shard,
        device=device,
        tally=tally,
        plan=plan,
        entries=entries,
    )
    # Again before writing: a build that did not claim the folder (an older fovea, a machine
    # whose file system does not share locks) may have written another protocol's manifest.
    _check_no_other_protocols_set(directory, loaded, log=lambda *_: None, shard=shard)
    path = _write_manifest(directory, shard, manifest, log=log)
    log(
        f"{len(mine)} images ({tally.generated} generated, {tally.reused} reused) in "
        f"{tally.total_s:.1f} s (generation {tally.generation_s:.1f} s) -> {path}"
    )
    return path


def _check_no_other_protocols_set(
    directory: Path, loaded, *, log, shard: Shard | None = None
) -> dict[str, dict]:
    """A set folder holds one protocol's set: another protocol's build into it would replace
    its manifest (the images stay, but no manifest lists them, and sessions given the folder
    would refuse it), so it is refused. The same protocol with changed settings (an edit, then
    a rebuild) replaces it, and says so; its images are reused where they still match.
    Another shard's manifest is not this build's to replace: its shard is to be built again.
    Returns the folder's readable manifests (all of this protocol) by file name."""
    own = shard_manifest_name(shard.index, shard.count) if shard and shard.count > 1 else MANIFEST
    manifests = {}
    for path in sorted(directory.glob("manifest*.json")):
        try:
            manifests[path.name] = read_manifest(path)
        except FoveaError:
            continue  # an unreadable manifest: rebuilt by this build
        old = manifests[path.name].get("protocol") or {}
        if old.get("name") != loaded.protocol.name:
            raise FoveaError(
                f"{directory} holds the stimulus set of protocol {old.get('name')!r} "
                f"({path.name}); building {loaded.protocol.name!r} into it would replace it: "
                "give --out another folder"
            )
        if old.get("settings_sha256", loaded.settings_sha256) != loaded.settings_sha256:
            other = shard_of_manifest(path.name)
            again = (
                "this build replaces it (images that still match are reused)"
                if other is None or path.name == own or own == MANIFEST
                else f"build its shard again with these settings (--shard {other[0]}/{other[1]})"
            )
            log(
                f"note: {path.name} was built from other settings of {loaded.protocol.name!r}; {again}"
            )
    return manifests


def _check_no_other_shard_count(directory: Path, shard: Shard | None) -> None:
    """A sharded build's manifest is merged with the folder's shard manifests of its count;
    those of another count (an earlier build on another number of GPUs or machines) stop the
    merge, so they are refused before the work, not after it."""
    if shard is None or shard.count == 1:
        return
    stale = [
        p for c, found in shard_manifests(directory).items() if c != shard.count for _, p in found
    ]
    if stale:
        raise FoveaError(
            f"{directory} holds the shard manifests of another shard count "
            f"({', '.join(p.name for p in stale)}); this build has {shard.count} shards and "
            "could not be merged with them: remove them (the images stay and are reused), "
            "then build again"
        )


def _note_fewer_images(directory: Path, old: dict | None, planned: int, *, log) -> None:
    """A build that lists fewer images than the set's manifest (``--max-seeds`` or ``--only``
    narrower than the build before) replaces that manifest: the images it leaves out stay in
    ``objects/`` but no manifest lists them, so a session generates them live. Said before the
    work, with the way back (a build with the earlier options reuses them, generating none).
    ``old`` is the set's manifest as read (None: none, or unreadable and rebuilt by this build)."""
    if old is None:
        return
    listed = len(old.get("entries") or [])
    if listed <= planned:
        return
    before = old.get("plan") or {}
    options = f"--only {before.get('only', 'all')}"
    if before.get("max_seeds"):
        options += f" --max-seeds {before['max_seeds']}"
    log(
        f"note: {directory / MANIFEST} lists {listed} images; this build lists {planned}. The other "
        f"{listed - planned} stay in {directory / 'objects'} but sessions will not use them; "
        f"a build with {options} lists them again without generating them"
    )


@dataclass
class _Tally:
    """What a build did: images generated and reused, seconds generating and in all."""

    generated: int = 0
    reused: int = 0
    generation_s: float = 0.0
    total_s: float = 0.0


def _shard_and_device(shard: Shard | None, device: str, *, log) -> tuple[Shard | None, str]:
    """The shard to build (given, or the ``accelerate`` rank's) and its torch device (``cuda``
    becomes ``cuda:<local rank>`` under ``accelerate``)."""
    local_rank = None
    if shard is None:
        found = shard_from_env()
        if found is not None:
            shard, local_rank = found
            log(f"accelerate launch: process {shard.index} of {shard.count}")
    if device == "cuda" and local_rank is not None:
        device = f"cuda:{local_rank}"
    return shard, device


def _generate_entries(
    generator,
    mine: list,
    *,
    p,
    checked,
    fingerprint: dict,
    store: ObjectStore,
    label: str,
    progress: bool,
    known_seconds: dict[str, float] | None = None,
) -> tuple[list[dict], _Tally]:
    """Each planned stimulus of ``mine`` from the store, or generated and stored; returns the
    manifest entries (in plan order) and the tally. A reused image keeps the generation time
    an earlier manifest recorded for its key (``known_seconds``; None where none did)."""
    known_seconds = known_seconds or {}
    from generator.progress import progress_bar

    geometry = stimulus_geometry(p)
    geometry_id = geometry_record(geometry)
    entries, tally = [], _Tally()
    bar = progress_bar(mine, desc=label, unit="img", enabled=progress)
    scene_of = _SceneCache(checked)
    for s in bar:
        scene = scene_of(s.seed)
        s = s.with_scene(None if scene is None else scene.sha256)
        key = stimulus_key(fingerprint=fingerprint, geometry=geometry_id, stimulus=s)
        layout = generator.layout(geometry=geometry, gaze_px=s.gaze_px, spec=s.spec)
        stored = store.existing(key)
        seconds = None
        if stored is None:
            image, seconds = _make_image(generator, s, scene=scene, geometry=geometry, p=p)
            tally.generation_s += seconds
            stored = store.write(key, image)
            tally.generated += 1
        else:
            tally.reused += 1
            seconds = known_seconds.get(key)
        entries.append(_entry(key, s, scene=scene, layout=layout, stored=stored, seconds=seconds))
        bar.set_postfix(generated=tally.generated, reused=tally.reused)
    bar.close()
    return entries, tally


def _generation_seconds(manifests) -> dict[str, float]:
    """Each image key's generation time recorded in ``manifests`` (a rebuild keeps them)."""
    return {
        e["key"]: e["seconds"]
        for m in manifests
        for e in m.get("entries", [])
        if isinstance(e, dict) and e.get("key") and isinstance(e.get("seconds"), int | float)
    }


def _entry(key: str, s, *, scene, layout, stored: tuple, seconds: float | None) -> dict:
    """The manifest entry of planned stimulus ``s`` stored as ``stored`` (file, sha256, bytes)."""
    file, digest, size = stored
    return {
        "key": key,
        "kind": s.kind,
        "reference": s.reference,
        "seed": s.seed,
        "conditioning": s.conditioning,
        "scene": None if scene is None else scene.record(),
        "condition": s.condition,
        "level": s.level,
        "fixation_deg": None if s.fixation_deg is None else list(s.fixation_deg),
        "gaze_px": None if s.gaze_px is None else list(s.gaze_px),
        "spec": s.spec.as_dict(),
        "file": file,
        "sha256": digest,
        "bytes": size,
        "tokens": layout.num_tokens,
        "tokens_full": layout.num_tokens_full,
        "token_ratio": layout.token_ratio,
        "seconds": seconds,
    }


def _manifest(
    loaded,
    *,
    checked,
    fingerprint: dict,
    shard: Shard | None,
    device: str,
    tally: _Tally,
    plan: dict,
    entries: list[dict],
) -> dict:
    """The (shard's) manifest: protocol, stimulus settings, geometry, model, scenes, plan, this
    shard's host and timings, and the entries."""
    import torch

    p = loaded.protocol
    return {
        "format": FORMAT,
        "protocol": {
            "name": p.name,
            "path": str(Path(loaded.path).absolute()),
            "sha256": loaded.sha256,
            "settings_sha256": loaded.settings_sha256,
        },
        "stimulus": p.stimulus.model_dump(mode="json"),
        "geometry": geometry_record(stimulus_geometry(p)),
        "model": fingerprint,
        "scenes": None if checked is None else checked.record(),
        "reference": p.stimulus.reference,
        "plan": plan,
        "shards": [
            {
                "index": shard.index if shard else 1,
                "count": shard.count if shard else 1,
                "host": socket.gethostname(),
                "platform": platform.platform(),
                "device": device,
                "torch": torch.__version__,
                "fovea": software_version(),
                "images": len(entries),
                "generated": tally.generated,
                "reused": tally.reused,
                "generation_s": tally.generation_s,
                "total_s": tally.total_s,
                "finished_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        ],
        "timings": {"generation_s": tally.generation_s, "total_s": tally.total_s},
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "entries": entries,
    }


def _write_manifest(directory: Path, shard: Shard | None, manifest: dict, *, log) -> Path:
    """Write the set's manifest (one shard: its own, merged when every shard is there); returns
    the path written last (the merged manifest once there is one)."""
    if shard is None or shard.count == 1:
        path = directory / MANIFEST
        write_json_atomic(path, manifest)
        return path
    path = directory / shard_manifest_name(shard.index, shard.count)
    write_json_atomic(path, manifest)
    stale = stale_shards(directory, manifest, index=shard.index, count=shard.count)
    if stale:  # an earlier build's shards, not built again yet: they merge once they are
        again = ", ".join(f"--shard {i}/{shard.count}" for i, _ in stale)
        log(
            f"note: {', '.join(p.name for _, p in stale)} {'is' if len(stale) == 1 else 'are'} "
            f"from an earlier build with other settings; build {again} with this protocol: "
            "the last shard to finish merges the set"
        )
        return path
    merged = merge_manifests(directory, quiet_if_incomplete=True)
    if merged is not None:
        log(f"all {shard.count} shards present: merged into {merged}")
        path = merged
    return path


class _SceneCache:
    """Seed -> scene of a checked scene source (None without one); the last few are kept, as
    planned stimuli of one seed come in runs."""

    def __init__(self, checked) -> None:
        self.checked = checked
        self._kept: dict[int, object] = {}

    def __call__(self, seed: int):
        if self.checked is None:
            return None
        if seed not in self._kept:
            if len(self._kept) >= 8:
                self._kept.pop(next(iter(self._kept)))
            self._kept[seed] = self.checked.scene(seed)
        return self._kept[seed]


def _make_image(generator, s, *, scene, geometry, p):
    """(image (H, W, 3) uint8, seconds) of planned stimulus ``s``: the original photograph of
    its scene (references with ``reference = "original"``) or a generation from its scene."""
    if s.kind == "reference" and s.reference == "original":
        if scene is None or scene.original is None:
            raise FoveaError(
                f"{s.label()}: the scene has no original photograph (reference 'original')"
            )
        return scene.original, 0.0
    result = generator.generate(
        seed=s.seed,
        geometry=geometry,
        gaze_px=s.gaze_px,
        spec=s.spec,
        condition=s.conditioning,
        steps=p.stimulus.num_steps,
        scene=scene,
    )
    return result.image, float(result.seconds)
