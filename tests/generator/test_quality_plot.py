"""The quality figure: drawn from summaries (several merged, the first wins), errors without a trace."""

from __future__ import annotations

import json

from PIL import Image

from generator.evaluation.quality_plot import main, merge_medians, plot_quality


def _row(jod, ratio, psnr):
    return {"jod_median": jod, "token_ratio_median": ratio, "fovea_psnr_db_median": psnr}


def _summary(jod_at_half: float) -> dict:
    return {
        "resolution": 256,
        "seeds": [0],
        "medians": {
            "default-foveated": {"0.5": _row(jod_at_half, 0.14, 37.9), "1.0": _row(8.0, 0.07, 33)},
            "default-foveated-circle-p2": {"None": _row(9.2, 0.4, 43.0)},
            "default-naive": {"0.5": _row(4.0, 0.14, 18.7), "1.0": _row(3.9, 0.07, 14.7)},
            "oracle": {"0.5": _row(9.9, 0.14, None), "1.0": _row(9.7, 0.07, 44.0)},
        },
    }


def test_summaries_merge_with_the_first_winning():
    extra = {"medians": {"ceiling": {"0.5": _row(9.4, 0.14, 52.4)}}}
    merged = merge_medians([_summary(8.6), _summary(1.0), extra])
    assert merged["default-foveated"]["0.5"]["jod_median"] == 8.6
    assert merged["ceiling"]["0.5"]["jod_median"] == 9.4
    assert set(merged["default-foveated"]) == {"0.5", "1.0"}


def test_the_figure_is_written_from_merged_summaries(tmp_path):
    in_memory = _summary(8.6)  # run_quality's own summary: an identical fovea is inf, not None
    in_memory["medians"]["oracle"]["1.0"]["fovea_psnr_db_median"] = float("inf")
    out = plot_quality([in_memory, _summary(1.0)], tmp_path / "q.png")
    with Image.open(out) as image:
        assert image.size[0] > 500 and image.size[1] > 300


def test_the_command_draws_from_files_and_reports_a_missing_one(tmp_path, capsys):
    path = tmp_path / "s_summary.json"
    path.write_text(json.dumps(_summary(8.6)))
    assert main([str(path), "--out", str(tmp_path / "q.png")]) == 0
    assert (tmp_path / "q.png").is_file()
    assert main([str(tmp_path / "missing.json"), "--out", str(tmp_path / "r.png")]) == 2
    assert "cannot read" in capsys.readouterr().err
