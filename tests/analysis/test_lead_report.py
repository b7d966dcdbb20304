"""The report end to end on a simulated data set (the study's layout and columns), and bad input."""

import json

import pandas as pd
import pytest

from analysis.fits import FitSettings
from analysis.report import ReportConfig, build_report
from analysis.simulate_data import SimulationSpec, simulate_dataset
from generator.errors import FoveaError

SEED = 7


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    print(f"seed {SEED}")
    spec = SimulationSpec(participants=3, trials_per_condition=120, procedure="constant", seed=SEED)
    simulate_dataset(out_dir=root / "data", spec=spec)
    config = ReportConfig(fit=FitSettings(n_boot=200), progress=False, workers=1)
    return root, build_report(data_dir=root / "data", out_dir=root / "out", config=config)


def test_report_writes_the_pinned_outputs(report):
    root, result = report
    table = pd.read_csv(result.thresholds_csv)
    pinned = [
        "participant",
        "condition",
        "threshold",
        "ci_low",
        "ci_high",
        "slope",
        "lapse",
        "n_trials",
    ]
    assert list(table.columns[: len(pinned)]) == pinned
    assert len(table) >= 3 * 2  # participants x conditions
    fitted = table.dropna(subset=["threshold"])
    assert (fitted["ci_low"] <= fitted["threshold"]).all() and (
        fitted["threshold"] <= fitted["ci_high"]
    ).all()
    html = result.html.read_text()
    assert "<img" in html and "data:image/png;base64," in html  # figures embedded
    assert "http://" not in html.split("<body", 1)[-1] or 'src="http' not in html
    summary = json.loads(result.summary_json.read_text())
    assert summary  # machine-readable
    assert list((result.out_dir / "figures").glob("*.png"))


def test_missing_column_names_the_file(tmp_path):
    spec = SimulationSpec(participants=1, trials_per_condition=20, procedure="constant", seed=SEED)
    simulate_dataset(out_dir=tmp_path / "data", spec=spec)
    (beh,) = (tmp_path / "data").glob("sub-*/ses-*/beh/*_beh.tsv")
    frame = pd.read_csv(beh, sep="\t", keep_default_na=False)
    frame.drop(columns=["correct"]).to_csv(beh, sep="\t", index=False)
    with pytest.raises(FoveaError, match=beh.name):
        build_report(
            data_dir=tmp_path / "data",
            out_dir=tmp_path / "out",
            config=ReportConfig(progress=False, workers=1),
        )


def test_empty_data_directory_is_a_clear_error(tmp_path):
    (tmp_path / "data").mkdir()
    with pytest.raises(FoveaError):
        build_report(
            data_dir=tmp_path / "data",
            out_dir=tmp_path / "out",
            config=ReportConfig(progress=False, workers=1),
        )
