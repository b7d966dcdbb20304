"""The contact sheet: references, foveated versions with the fixation marked, token layouts."""

from __future__ import annotations

import numpy as np
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
