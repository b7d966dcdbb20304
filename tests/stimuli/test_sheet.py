"""The contact sheet: references, foveated versions with the fixation marked, token layouts."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from stimuli.manifest import MANIFEST, read_manifest
from stimuli.sheet import write_contact_sheet


def test_contact_sheet_shows_every_column(built_set, tmp_path):
    out = write_contact_sheet(
        built_set, out=tmp_path / "sheet.png", rows=2, levels_per_condition=2, tile_px=128
    )
    sheet = np.asarray(Image.open(out).convert("RGB"))
    # columns: reference + (centre: 2 levels + right: 1 level) x (foveated, layout) = 7
    assert sheet.shape == (30 + 2 * 128, 110 + 7 * 128, 3)
    manifest = read_manifest(built_set / MANIFEST)
    first = manifest["entries"][0]
    assert first["kind"] == "reference"
    reference = np.asarray(Image.open(built_set / first["file"]).convert("RGB"))
    assert np.array_equal(sheet[30 : 30 + 128, 110 : 110 + 128], reference)  # 128 px tiles: 1:1
    # the foveated tile of the first level has the red fixation ring drawn on it
    tile = sheet[30 : 30 + 128, 110 + 128 : 110 + 256].astype(int)
    red = (tile[..., 0] > 200) & (tile[..., 1] < 100) & (tile[..., 2] < 100)
    assert red.sum() > 20


def test_a_sheet_too_large_is_refused_before_it_is_made(built_set, tmp_path, capsys):
    """`--tile-px 100000` allocated 22 GB and was killed: the option is bounded, and a sheet
    over ``MAX_SHEET_PIXELS`` (here 4 rows x 7 tiles of 2048 px, 118 megapixels) is refused
    before its image exists; nothing is written."""
    from fovea_cli.main import main

    out = tmp_path / "sheet.png"
    argv = ["stimuli", "sheet", str(built_set), "--out", str(out)]
    with pytest.raises(SystemExit) as info:
        main([*argv, "--tile-px", "100000"])
    assert info.value.code == 2
    assert "--tile-px: 100000 px is out of range: give 16 to 2048" in capsys.readouterr().err
    assert main([*argv, "--tile-px", "2048"]) == 2
    err = capsys.readouterr().err.strip()
    assert "4 rows x 7 tiles of 2048 px would be 14446x8222 px, more than 80 megapixels" in err
    assert "give a smaller --tile-px, --rows or --levels" in err and "\n" not in err
    assert not out.exists()
    assert main([*argv, "--tile-px", "16"]) == 0 and out.exists()


def test_a_sheet_of_a_set_with_a_missing_image_says_how_to_remake_it(built_set, tmp_path, capsys):
    """An image deleted from the set: the sheet named the file and stopped there; it now says
    that the set's build remakes it (store.existing regenerates what is missing)."""
    import shutil

    from fovea_cli.main import main

    damaged = tmp_path / "set"
    shutil.copytree(built_set, damaged)
    entry = read_manifest(damaged / MANIFEST)["entries"][0]
    (damaged / entry["file"]).unlink()
    assert main(["stimuli", "sheet", str(damaged), "--out", str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert entry["file"] in err and "\n" not in err
    assert f"`fovea stimuli build PROTOCOL --out {damaged}` (the set's build) remakes it" in err


def test_a_wide_sets_tiles_keep_the_images_aspect_ratio(tmp_path):
    """A 256x128 px set's tiles were squares: every image and fixation ring squeezed to half
    its width. The tiles' longer side is --tile-px, the other in proportion: at 256 px a
    reference tile is the image itself."""
    from fovea_cli.main import main
    from tests.stimuli.conftest import PROTOCOL

    text = PROTOCOL.format(seed_start=7).replace("image_width_px = 128", "image_width_px = 256")
    text = text.replace("classes = [0, 1]", "classes = [0]").replace(
        "seed_count = 2", "seed_count = 1"
    )
    protocol = tmp_path / "wide.toml"
    protocol.write_text(text, encoding="utf-8")
    directory, out = tmp_path / "wide set", tmp_path / "sheet.png"
    assert main(["stimuli", "build", str(protocol), "--out", str(directory), "--no-progress"]) == 0
    assert main(["stimuli", "sheet", str(directory), "--out", str(out), "--tile-px", "256"]) == 0
    sheet = np.asarray(Image.open(out).convert("RGB"))
    assert sheet.shape == (30 + 128, 110 + 7 * 256, 3)  # one row of 256x128 px tiles
    first = read_manifest(directory / MANIFEST)["entries"][0]
    assert first["kind"] == "reference"
    reference = np.asarray(Image.open(directory / first["file"]).convert("RGB"))
    assert reference.shape == (128, 256, 3)
    assert np.array_equal(sheet[30:158, 110:366], reference)


def test_the_sheet_is_written_whole_or_not_at_all_and_its_default_place_is_explained(
    built_set, tmp_path, monkeypatch, capsys
):
    """The sheet was saved straight to its file: a disk that filled meanwhile left a torn
    contact_sheet.png in the set (and the error named no file). It is written atomically now.
    Its default place is the set's folder, which a set on a read-only share (or a folder in the
    way) refuses: the error says to give --out."""
    import shutil

    from fovea_cli.main import main
    from tests.disk_full import disk_fills_while_writing

    copy = tmp_path / "set"
    shutil.copytree(built_set, copy)
    sheet = copy / "contact_sheet.png"
    sheet.unlink(missing_ok=True)
    argv = ["stimuli", "sheet", str(copy), "--tile-px", "32"]
    with monkeypatch.context() as disk:
        filled = disk_fills_while_writing(disk, "contact_sheet.png")
        assert main(argv) == 2
    assert filled
    assert capsys.readouterr().err.startswith(f"error: {sheet}: no space left on the device")
    assert not [p for p in copy.iterdir() if "contact_sheet" in p.name]  # nor a temporary
    sheet.mkdir()  # in the way, as an unwritable folder is
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {sheet}: a folder is in the way (a file must go there): the contact sheet goes "
        "into the set's folder unless --out names another file (e.g. --out contact_sheet.png)"
    )
