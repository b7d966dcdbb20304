"""The report's stimulus examples: regenerated from what the sessions recorded, cached, or a
note when they cannot be shown."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from analysis.fits import FitSettings
from analysis.report import ReportConfig, build_report
from analysis.report_stimuli import CACHE_DIR_NAME, foveated_caption
from analysis.simulate_data import SimCondition, SimulationSpec, simulate_dataset

SEED = 515
CONDITIONS = ("acuity_centre", "acuity_right2")


def simulated_with_model(
    root: Path, *, model: str | None, participants: int = 3, device: str | None = None
) -> Path:
    """A small simulated data set (256 px images) whose sidecars say a generator run used
    ``model`` (None: as simulated, no generator recorded), on ``device`` when given."""
    print(f"simulated data: seed {SEED}, model {model}")
    spec = SimulationSpec(
        participants=participants,
        conditions=(
            SimCondition(name=CONDITIONS[0], threshold=1.5),
            SimCondition(name=CONDITIONS[1], threshold=1.0, fixation_deg=(2.0, 0.0)),
        ),
        trials_per_condition=40,
        image_size_px=(256, 256),
        seed=SEED,
    )
    simulate_dataset(out_dir=root, spec=spec)
    if model is not None:
        for sidecar in root.rglob("*_beh.json"):
            record = json.loads(sidecar.read_text(encoding="utf-8"))
            generator = {"model": model, "steps": 2} | ({"device": device} if device else {})
            record["runs"] = [{"generator": generator, "status": "completed"}]
            sidecar.write_text(json.dumps(record), encoding="utf-8")
    return root


def _report(data: Path, out: Path):
    config = ReportConfig(
        fit=FitSettings(n_boot=100, bayes=False), progress=False, workers=1, stimuli=True
    )
    return build_report(data_dir=data, out_dir=out, config=config)


def test_each_condition_shows_its_pair_at_the_group_threshold_and_a_rerun_uses_the_cache(
    tmp_path,
):
    data = simulated_with_model(tmp_path / "data", model="tiny")
    result = _report(data, tmp_path / "out")
    examples = result.summary["stimulus_examples"]
    assert [e["condition"] for e in examples] == list(CONDITIONS)
    group = {c["condition"]: c["group_threshold"] for c in result.summary["conditions"]}
    for e in examples:
        assert e["level_source"] == "group threshold"
        assert e["level"] == pytest.approx(group[e["condition"]])
        assert e["figure"] == f"figures/stimuli_{e['condition']}.png"
        assert (result.out_dir / e["figure"]).stat().st_size > 1000
        assert 0 < e["tokens"] < e["tokens_full"], e
        assert e["source"] == "regenerated with model 'tiny'" and e["note"] == ""
    cache = result.out_dir / "figures" / CACHE_DIR_NAME
    assert len(list(cache.glob("*_foveated.png"))) == len(CONDITIONS)
    html = result.html.read_text(encoding="utf-8")
    assert "The stimuli at the group threshold" in html
    assert html.count('alt="stimulus example ') == len(CONDITIONS)

    again = _report(data, tmp_path / "out")
    assert all(e["source"].endswith("(cached)") for e in again.summary["stimulus_examples"])
    first = (result.out_dir / examples[0]["figure"]).read_bytes()
    assert (again.out_dir / examples[0]["figure"]).read_bytes() == first


def test_images_regenerated_on_another_kind_of_device_say_so(tmp_path):
    """Sessions that generated on a GPU, regenerated here on the CPU (the report's default
    ``--device``): the pictures come with a note that pixels can differ slightly."""
    data = simulated_with_model(tmp_path / "data", model="tiny", participants=2, device="cuda:0")
    result = _report(data, tmp_path / "out")
    for e in result.summary["stimulus_examples"]:
        assert e["source"] == "regenerated with model 'tiny'"
        assert (result.out_dir / e["figure"]).is_file()
        assert e["note"] == (
            "the sessions generated on 'cuda:0', these images on 'cpu': kernels differ, "
            "so pixels can differ slightly from what was shown"
        )


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_a_device_this_machine_lacks_is_refused_before_the_fits(tmp_path):
    """``--device cuda`` without a GPU: a one-line error and exit status 2, before any fit."""
    data = simulated_with_model(tmp_path / "data", model="tiny", participants=2)
    out = tmp_path / "out"
    root = Path(__file__).resolve().parents[2]
    command = [sys.executable, "analysis/report.py", str(data), "--out", str(out)]
    done = subprocess.run(
        [*command, "--device", "cuda"], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: device 'cuda' requested but this torch ({torch.__version__}) is a CPU build: "
        "install a CUDA build of torch on the GPU machine (README, GPU labs)"
    ]
    assert not (out / "report.html").exists()


def test_a_model_that_cannot_be_loaded_gives_a_note_not_a_failure(tmp_path):
    data = simulated_with_model(tmp_path / "data", model="no-such-model-here")
    result = _report(data, tmp_path / "out")
    for e in result.summary["stimulus_examples"]:
        assert e["figure"] is None
        assert "model 'no-such-model-here', which cannot be loaded here" in e["note"]
    html = result.html.read_text(encoding="utf-8")
    assert "cannot be loaded here" in html
    assert not list((result.out_dir / "figures").glob("stimuli_*.png"))


def test_sessions_that_made_no_images_say_so(tmp_path):
    data = simulated_with_model(tmp_path / "data", model=None)
    result = _report(data, tmp_path / "out")
    notes = [e["note"] for e in result.summary["stimulus_examples"]]
    assert len(notes) == len(CONDITIONS)
    assert all("no images were made" in n for n in notes)


def test_no_stimuli_option_skips_the_examples(tmp_path):
    data = simulated_with_model(tmp_path / "data", model="no-such-model-here", participants=3)
    config = ReportConfig(
        fit=FitSettings(n_boot=100, bayes=False), progress=False, workers=1, stimuli=False
    )
    result = build_report(data_dir=data, out_dir=tmp_path / "out", config=config)
    assert result.summary["stimulus_examples"] == []
    assert "The stimuli at the group threshold" not in result.html.read_text(encoding="utf-8")


def test_the_sessions_saved_images_are_shown_when_present(tmp_path):
    """Sessions that saved the images shown per trial (DATA/sourcedata/sub-<p>/ses-<s>/eyetrack/
    images/trial-0007_foveated.png and _full.png): those are shown, at the trial's own level,
    and no generator is needed (these sidecars record none)."""
    data = simulated_with_model(tmp_path / "data", model=None)
    levels = {}
    for beh in data.rglob("*_beh.tsv"):
        participant = beh.name.split("_")[0].removeprefix("sub-")
        images = data / "sourcedata" / f"sub-{participant}" / "ses-1" / "eyetrack" / "images"
        images.mkdir(parents=True)
        trials = pd.read_csv(beh, sep="\t", na_values="n/a")
        for rec in trials.itertuples(index=False):
            levels[(participant, int(rec.trial))] = float(rec.level)
            for kind, grey in (("foveated", 90), ("full", 160)):
                pixels = np.full((256, 256, 3), grey, dtype=np.uint8)
                Image.fromarray(pixels).save(images / f"trial-{int(rec.trial):04d}_{kind}.png")
    result = _report(data, tmp_path / "out")
    for e in result.summary["stimulus_examples"]:
        assert e["source"] == "the session's saved images" and e["note"] == ""
        assert e["level"] == pytest.approx(levels[(e["participant"], e["trial"])])
        assert e["level_source"].startswith("the shown trial nearest the group threshold")
        assert (result.out_dir / e["figure"]).is_file()
    assert not (result.out_dir / "figures" / CACHE_DIR_NAME).exists()


def _set_na(data: Path, columns: tuple[str, ...], rows) -> None:
    """Writes n/a into ``columns`` of the trials ``rows(table)`` selects, in every session."""
    for beh in data.rglob("*_beh.tsv"):
        table = pd.read_csv(beh, sep="\t", dtype=str, keep_default_na=False)
        table.loc[rows(table), list(columns)] = "n/a"
        table.to_csv(beh, sep="\t", index=False)


def test_trials_without_a_seed_or_gaze_give_a_note_not_a_traceback(tmp_path):
    """seed and gaze may be n/a (the contract's missing value). No trial of a condition with a
    seed: nothing to regenerate, a note (the model is not loaded); no gaze and no fixation
    target either: the condition's fixation target (sidecar) is used."""
    data = simulated_with_model(tmp_path / "data", model="no-such-model")
    _set_na(data, ("seed",), lambda t: t.index >= 0)
    _set_na(
        data,
        ("gaze_x_deg", "gaze_y_deg", "fixation_x_deg", "fixation_y_deg"),
        lambda t: t["condition"] == CONDITIONS[1],
    )
    result = _report(data, tmp_path / "out")
    examples = {e["condition"]: e for e in result.summary["stimulus_examples"]}
    for e in examples.values():
        assert e["seed"] is None and e["figure"] is None
        assert e["note"] == (
            f"no analysed trial of {e['condition']} recorded its seed (seed n/a), so its images "
            "cannot be regenerated"
        )
    assert examples[CONDITIONS[1]]["gaze_deg"] == [2.0, 0.0]


def test_saved_images_are_shown_without_a_seed_and_a_seeded_trial_is_preferred(tmp_path):
    """Saved images need no seed: a condition whose trials all lack one still shows them
    (captioned seed n/a); where some trials have a seed, the example is one of those."""
    data = simulated_with_model(tmp_path / "data", model=None)
    for beh in data.rglob("*_beh.tsv"):
        participant = beh.name.split("_")[0].removeprefix("sub-")
        images = data / "sourcedata" / f"sub-{participant}" / "ses-1" / "eyetrack" / "images"
        images.mkdir(parents=True)
        for trial in pd.read_csv(beh, sep="\t", na_values="n/a")["trial"]:
            for kind, grey in (("foveated", 90), ("full", 160)):
                pixels = np.full((256, 256, 3), grey, dtype=np.uint8)
                Image.fromarray(pixels).save(images / f"trial-{int(trial):04d}_{kind}.png")
    _set_na(data, ("seed",), lambda t: t["condition"] == CONDITIONS[1])
    _set_na(
        data,
        ("seed",),
        lambda t: (t["condition"] == CONDITIONS[0]) & (t["trial"].astype(int) % 2 == 1),
    )
    result = _report(data, tmp_path / "out")
    examples = {e["condition"]: e for e in result.summary["stimulus_examples"]}
    assert examples[CONDITIONS[1]]["seed"] is None
    assert examples[CONDITIONS[0]]["trial"] % 2 == 0 and examples[CONDITIONS[0]]["seed"] is not None
    for e in examples.values():
        assert e["source"] == "the session's saved images" and e["note"] == ""
        assert (result.out_dir / e["figure"]).is_file()


def test_a_fixation_beside_the_image_is_captioned_as_such():
    # A condition fixating off the image (allowed: all periphery) got "fixation marked" over
    # an image with no mark in it (seen in the tiny test protocol's report).
    assert foveated_caption((128, 128, 3), (64.0, 64.0)) == "foveated, fixation marked"
    assert foveated_caption((128, 128, 3), (128.0, 0.0)) == "foveated, fixation marked"
    assert foveated_caption((128, 128, 3), (300.0, 64.0)) == "foveated; fixation off the image"
