"""Training data: DEP-5 licences, the fixed split, manifests, packing and the crop loader."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from generator.data.fetch import (
    HELD_OUT_FRACTION,
    MANIFEST_VERSION,
    fetch_images,
    licence_for,
    load_manifest,
    split_for,
)
from generator.data.images import ImageBank, load_bank, pack_manifest, random_crops
from generator.data.pack import pack_images
from generator.errors import FoveaError

REPO = Path(__file__).resolve().parents[2]
PACK = REPO / "generator" / "data" / "photos-1024.npz"

DEP5 = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: 2014 Someone
License: GPL-2+

Files: 16.04/aitzgorri_by_Aitzol.jpg
Copyright: Aitzol, 2018
License: CC-BY-4.0

Files: desktop/Ubuntu-*-no-logo.png
Copyright: X
License: CC-BY-SA-4.0

Files: debian/*
Copyright: packager
License: MIT
"""


def test_licence_matches_source_tree_patterns_against_installed_paths():
    assert licence_for(DEP5, "usr/share/backgrounds/aitzgorri_by_Aitzol.jpg") == "CC-BY-4.0"
    assert (
        licence_for(DEP5, "usr/share/backgrounds/mate/desktop/Ubuntu-Cold-no-logo.png")
        == "CC-BY-SA-4.0"
    )
    assert licence_for(DEP5, "usr/share/wallpapers/Path/contents/images/2560x1600.jpg") == "GPL-2+"
    assert licence_for("not a DEP-5 file", "a.jpg") == "see copyright file"


def test_split_is_fixed_and_holds_out_about_the_stated_fraction():
    ids = [f"pkg--image{i}" for i in range(2000)]
    splits = [split_for(i) for i in ids]
    assert splits == [split_for(i) for i in ids]
    frac = splits.count("heldout") / len(ids)
    print(f"held-out fraction {frac:.3f} (target {HELD_OUT_FRACTION})")
    assert abs(frac - HELD_OUT_FRACTION) < 0.03


def test_offline_fetch_writes_a_complete_deterministic_manifest(tmp_path):
    first = fetch_images(cache_dir=tmp_path / "a", include_packages=False, progress=False)
    second = fetch_images(cache_dir=tmp_path / "b", include_packages=False, progress=False)
    assert first == second
    assert load_manifest(tmp_path / "a") == first
    assert len(first["images"]) >= 8 and first["version"] == MANIFEST_VERSION
    assert "classes" not in first
    for entry in first["images"]:
        assert entry["source"] == "scikit-image" and entry["licence"]
        assert len(entry["sha256"]) == 64 and entry["split"] in ("train", "heldout")
        assert (tmp_path / "a" / entry["cached_file"]).is_file()
        assert not {"class_name", "class_id"} & set(entry)


def test_a_fetch_stopped_while_caching_an_image_leaves_no_torn_image(tmp_path, monkeypatch):
    """Ctrl-C (or a kill, a full disk) while an image was being cached left a partial PNG that
    the next (idempotent) fetch kept as cached, and listed with its hash; now the image is
    written whole or not at all, and the fetch run again gives the uninterrupted manifest."""
    from PIL import Image

    real_save, calls = Image.Image.save, []

    def save_stopped_at_the_third(image, fp, *args, **kwargs):
        calls.append(fp)
        if len(calls) == 3:
            (fp.write if hasattr(fp, "write") else Path(fp).write_bytes)(b"\x89PNG half")
            raise KeyboardInterrupt
        return real_save(image, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save_stopped_at_the_third)
    with pytest.raises(KeyboardInterrupt):
        fetch_images(cache_dir=tmp_path / "a", include_packages=False, progress=False)
    monkeypatch.setattr(Image.Image, "save", real_save)
    assert [p.name for p in (tmp_path / "a" / "images").iterdir() if ".tmp-" in p.name] == []
    again = fetch_images(cache_dir=tmp_path / "a", include_packages=False, progress=False)
    whole = fetch_images(cache_dir=tmp_path / "b", include_packages=False, progress=False)
    assert again == whole


def test_a_version_1_manifest_with_class_labels_still_loads(tmp_path):
    manifest = fetch_images(cache_dir=tmp_path, include_packages=False, progress=False)
    old = dict(manifest, version=1, classes=["landscape", "closeup"])
    old["images"] = [dict(e, class_name="closeup", class_id=1) for e in manifest["images"]]
    (tmp_path / "manifest.json").write_text(json.dumps(old))
    bank = load_bank(source=tmp_path, split="all")
    assert [e["id"] for e in bank.entries] == [e["id"] for e in manifest["images"]]
    x, picks = random_crops(bank, count=3, crop_px=32, generator=torch.Generator().manual_seed(0))
    assert x.shape == (3, 3, 32, 32) and picks.shape == (3,)


def test_missing_manifest_names_the_command(tmp_path):
    with pytest.raises(FoveaError, match="fovea data images"):
        load_manifest(tmp_path)


def test_pack_round_trip_keeps_images_and_manifest(tmp_path):
    fetch_images(cache_dir=tmp_path, include_packages=False, progress=False)
    info = pack_images(cache_dir=tmp_path, out=tmp_path / "p.npz", max_side_px=256)
    assert info["bytes"] < 50 * 1024 * 1024
    bank = load_bank(source=tmp_path / "p.npz", split="all")
    cached = load_bank(source=tmp_path, split="all")
    assert [e["id"] for e in bank.entries] == [e["id"] for e in cached.entries]
    assert all(min(im.shape[1:]) <= 256 for im in bank.images)


def test_a_pack_over_the_size_limit_leaves_the_previous_pack(tmp_path, monkeypatch):
    """A pack over 50 MB was refused only after it had replaced the previous pack (a working
    pack lost to a too-large --max-side-px); now the previous one stays byte for byte."""
    import generator.data.pack as pack_module

    fetch_images(cache_dir=tmp_path, include_packages=False, progress=False)
    pack_images(cache_dir=tmp_path, out=tmp_path / "p.npz", max_side_px=64)
    before = (tmp_path / "p.npz").read_bytes()
    monkeypatch.setattr(pack_module, "MAX_PACK_BYTES", len(before) + 1)
    with pytest.raises(FoveaError, match="over the .* limit; lower"):
        pack_images(cache_dir=tmp_path, out=tmp_path / "p.npz", max_side_px=256)
    assert (tmp_path / "p.npz").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if ".tmp-" in p.name) == []


def test_committed_pack_has_train_and_heldout_photos_with_licences():
    with np.load(PACK) as z:
        manifest = json.loads(bytes(z["manifest"]).decode())
    images = manifest["images"]
    assert PACK.stat().st_size <= 50 * 1024 * 1024
    assert {e["split"] for e in images} == {"train", "heldout"}
    assert sum(e["source"] == "debian" for e in images) >= 30
    assert all(e["licence"] and e["licence"] != "see copyright file" for e in images)
    assert pack_manifest(PACK) == manifest


def test_the_default_pack_path_works_from_any_folder(tmp_path, monkeypatch):
    """The commands' default ``--data generator/data/photos-1024.npz`` is written from the
    repository root; from another folder it is found there (a path that exists here wins)."""
    monkeypatch.chdir(tmp_path)
    assert pack_manifest(Path("generator/data/photos-1024.npz")) == pack_manifest(PACK)
    assert len(load_bank(source="generator/data/photos-1024.npz", split="heldout")) >= 1
    here = tmp_path / "generator" / "data" / "photos-1024.npz"
    here.parent.mkdir(parents=True)
    here.write_bytes(b"not a zip file")
    with pytest.raises(FoveaError, match="not a packed image file"):
        pack_manifest(Path("generator/data/photos-1024.npz"))


def test_a_file_that_is_not_a_pack_is_a_one_line_error(tmp_path):
    bad = tmp_path / "photos.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(FoveaError, match="not a packed image file"):
        load_bank(source=bad)
    with pytest.raises(FoveaError, match="fovea data pack"):
        pack_manifest(tmp_path / "missing.npz")


def test_crops_are_deterministic_in_range_and_multiscale():
    bank = load_bank(source=PACK, split="train")
    seed = 1234
    print(f"seed {seed}")
    a, ia = random_crops(bank, count=6, crop_px=64, generator=torch.Generator().manual_seed(seed))
    b, ib = random_crops(bank, count=6, crop_px=64, generator=torch.Generator().manual_seed(seed))
    c, _ = random_crops(
        bank, count=6, crop_px=64, generator=torch.Generator().manual_seed(seed + 1)
    )
    assert a.shape == (6, 3, 64, 64) and a.dtype == torch.float32
    assert torch.equal(a, b) and torch.equal(ia, ib)
    assert not torch.equal(a, c)
    assert a.min() >= -1 and a.max() <= 1


def test_crops_name_the_image_they_come_from():
    # Plain images of distinct grey levels and sizes: a crop's value tells its image.
    levels = [0, 60, 120, 180, 240]
    images = [torch.full((3, 64 + 16 * k, 96), v, dtype=torch.uint8) for k, v in enumerate(levels)]
    bank = ImageBank(images, [{"id": f"grey{v}"} for v in levels])
    x, picks = random_crops(bank, count=12, crop_px=32, generator=torch.Generator().manual_seed(5))
    assert picks.dtype == torch.long and len(set(picks.tolist())) > 1
    expected = torch.tensor([levels[i] for i in picks.tolist()]) / 127.5 - 1
    torch.testing.assert_close(x.mean(dim=(1, 2, 3)), expected, atol=1e-5, rtol=0)


def test_heldout_images_never_reach_the_training_bank():
    train_ids = {e["id"] for e in load_bank(source=PACK, split="train").entries}
    held_ids = {e["id"] for e in load_bank(source=PACK, split="heldout").entries}
    assert train_ids and held_ids and not train_ids & held_ids


@pytest.mark.slow
def test_fetch_from_debian_packages(tmp_path, monkeypatch):
    """Fetches the smallest listed package (~11 MB); skips only where apt cannot fetch it."""
    from generator.data import fetch, sources

    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        pytest.skip("apt-get/dpkg not available on this system")
    probe = subprocess.run(
        ["apt-get", "download", "--print-uris", "lomiri-wallpapers-20.04"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0 or ".deb" not in probe.stdout:
        pytest.skip(f"apt cannot fetch lomiri-wallpapers-20.04 here: {probe.stderr.strip()[:200]}")
    small = [s for s in sources.PACKAGE_SOURCES if s.package == "lomiri-wallpapers-20.04"]
    monkeypatch.setattr(fetch, "PACKAGE_SOURCES", tuple(small))
    manifest = fetch.fetch_images(cache_dir=tmp_path, progress=False)
    debian = [e for e in manifest["images"] if e["source"] == "debian"]
    assert len(debian) == len(small[0].files) == 1  # Kleiber; Infinite-Sea is digital art
    assert {e["licence"] for e in debian} == {"CC-BY-SA-3.0"}
    assert all(e["version"] for e in debian)


def test_sixteen_bit_grey_and_broken_images_in_a_cache(tmp_path, capsys):
    """A cache folder's image that is 16-bit grey (a PNG from a scientific camera) was packed
    and trained on almost all white: PIL's convert('RGB') clips 0-65535 at 255. One cut short
    or not an image at all stopped fovea data pack and training with PIL's traceback. Now the
    16-bit image is scaled to 8 bits, and a broken one is one line naming the file."""
    from PIL import Image

    from fovea_cli.main import main as fovea

    fetch_images(cache_dir=tmp_path, include_packages=False, progress=False)
    manifest = load_manifest(tmp_path)
    entry = next(e for e in manifest["images"] if e["split"] == "train")
    cached = tmp_path / entry["cached_file"]
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (128, 1))
    Image.fromarray(ramp).save(cached)
    assert Image.open(cached).mode.startswith("I")
    pack = tmp_path / "p.npz"
    assert fovea(["data", "pack", "--cache", str(tmp_path), "--out", str(pack)]) == 0
    for source in (pack, tmp_path):
        bank = load_bank(source=source, split="train")
        image = bank.images[[e["id"] for e in bank.entries].index(entry["id"])].float()
        assert abs(float(image.mean()) - 127.5) < 2, source  # a ramp, not white
        assert float(image[:, :, 0].mean()) < 2 and float(image[:, :, -1].mean()) > 253

    jpeg = tmp_path / "cut.jpg"
    Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)).save(
        jpeg
    )
    for broken in (jpeg.read_bytes()[:300], b"not an image"):
        cached.write_bytes(broken)
        assert fovea(["data", "pack", "--cache", str(tmp_path), "--out", str(pack)]) == 2
        err = capsys.readouterr().err
        assert f"{cached} (in manifest.json) is not a readable image" in err, err
        with pytest.raises(FoveaError, match="is not a readable image"):
            load_bank(source=tmp_path, split="train")


def test_a_manifest_that_lists_nothing_usable_is_a_one_line_error(tmp_path, capsys):
    """A hand-made cache manifest that is a JSON list, or whose images lack 'split' or
    'cached_file', stopped fovea data pack and training with a TypeError / KeyError traceback;
    one listing no images packed '0 images' and training then said 'no train images of at least
    0 px'. Now each is one line naming the manifest and what is missing."""
    from fovea_cli.main import main as fovea

    def pack() -> str:
        assert fovea(["data", "pack", "--cache", str(tmp_path), "--out", str(out)]) == 2
        return capsys.readouterr().err

    out = tmp_path / "p.npz"
    manifest = tmp_path / "manifest.json"
    manifest.write_text("[1, 2]")
    assert "must be a JSON object with an 'images' list" in pack()
    manifest.write_text(json.dumps({"images": [{"id": "mine"}]}))
    assert "image 0 has no split, cached_file" in pack()
    with pytest.raises(FoveaError, match="image 0 has no split"):
        load_bank(source=tmp_path, split="train")
    manifest.write_text(json.dumps({"images": [{"id": "a", "split": "test", "cached_file": "a"}]}))
    assert "split 'test', not 'train' or 'heldout'" in pack()
    manifest.write_text(json.dumps({"images": []}))
    assert "lists no train or heldout images to pack" in pack() and not out.exists()
    with pytest.raises(FoveaError, match=r"^no train images in"):
        load_bank(source=tmp_path, split="train")


def test_a_cache_fetched_again_with_another_max_side_holds_that_size(tmp_path):
    """fovea data images --max-side-px 128 into a cache made at the default 1024 kept the
    cached 512 px images and wrote a manifest saying max_side_px 128 (and sizes of 512): a
    pack of it then held images the manifest did not describe. Now an image cached at another
    size is cached again; a fetch with the same setting rewrites nothing."""
    full = fetch_images(cache_dir=tmp_path, include_packages=False, progress=False)
    small = fetch_images(
        cache_dir=tmp_path, max_side_px=128, include_packages=False, progress=False
    )
    assert small["max_side_px"] == 128
    for entry in small["images"]:
        with Image.open(tmp_path / entry["cached_file"]) as im:
            assert min(im.size) <= 128 and im.size == (entry["width_px"], entry["height_px"])
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "images").iterdir()}
    again = fetch_images(
        cache_dir=tmp_path, max_side_px=128, include_packages=False, progress=False
    )
    assert again == small
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "images").iterdir()} == stamps
    assert fetch_images(cache_dir=tmp_path, include_packages=False, progress=False) == full


def test_a_pack_is_written_only_where_training_can_read_it(tmp_path, capsys):
    """fovea data pack --out photos (no .npz) wrote the pack, and fovea train --data photos then
    said 'no image manifest at photos/manifest.json; run fovea data images': training takes only
    a path ending in .npz as a pack. --out naming a folder failed naming a temporary
    '.W.tmp-<pid>'. Both are refused before the work, naming --out and a path that works."""
    from fovea_cli.main import main as fovea

    fetch_images(cache_dir=tmp_path / "cache", include_packages=False, progress=False)
    folder = tmp_path / "folder"
    folder.mkdir()
    pack = ["data", "pack", "--cache", str(tmp_path / "cache"), "--out"]
    assert fovea([*pack, str(tmp_path / "photos")]) == 2
    err = capsys.readouterr().err
    assert "must name a .npz file" in err and f"{tmp_path / 'photos.npz'}" in err, err
    assert not (tmp_path / "photos").exists()
    assert fovea([*pack, str(folder)]) == 2
    assert f"--out {folder} is a folder" in capsys.readouterr().err
    assert fovea([*pack, str(tmp_path / "photos.npz")]) == 0
    assert len(load_bank(source=tmp_path / "photos.npz", split="all")) == 9
