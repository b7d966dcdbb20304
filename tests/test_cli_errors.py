"""Mistakes a lab user makes on the command line give one ``error:`` line and exit status 2,
never a traceback: outputs that are not image files or where a folder is in the way, corrupt
weights, a PNG given as QC rules, an empty photo pack, out-of-range numbers."""

from __future__ import annotations

import errno
import os
import pathlib

import pytest

from fovea_cli.main import main


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["mask", "--size", "64", "--out", "mask.txt"], ".txt is not an image format"),
        (["mask", "--size", "64", "--out", "folder"], "--out folder is a folder"),
        (
            ["generate", "--model", "tiny", "--size", "64", "--out", "a.png", "--mask-out", "m"],
            "--mask-out m: no extension is not an image format",
        ),
        (
            [
                "generate",
                "--model",
                "tiny",
                "--size",
                "64",
                "--out",
                "a.png",
                "--mask-out",
                "a.png",
            ],
            "--mask-out a.png is also --out: one would overwrite the other",
        ),
        (
            ["generate", "--size", "64", "--out", "a.png", "--scene-out", "./a.png"],
            "--scene-out ./a.png is also --out: one would overwrite the other",
        ),
        (  # before: the mode was silently ignored
            ["generate", "--model", "tiny", "--size", "64", "--out", "a.png", "--full"]
            + ["--mode", "circle"],
            "--full makes the full-resolution twin, on no token layout: --mode circle does not",
        ),
        (
            ["generate", "--model", "tiny", "--size", "64", "--out", "a.png"]
            + ["--lora", "bad.safetensors"],
            "LoRA file bad.safetensors is not a readable safetensors file",
        ),
        (
            ["train", "base", "--data", "empty.npz", "--out", "run", "--steps", "1"],
            "empty.npz is not a packed image file",
        ),
        (
            ["train", "base", "--out", "file.txt", "--steps", "1", "--crop-px", "64"]
            + ["--batch-size", "2"],
            "file.txt: a file is in the way (a folder must go there)",
        ),
        (["train", "base", "--out", "run", "--lr", "-1"], "--lr must be positive, got -1.0"),
        (  # before: found after every generation and scoring were done, the records lost
            ["bench", "quality", "--json", "q.json", "--sheets", "file.txt"],
            "file.txt: a file is in the way (a folder must go there)",
        ),
        (
            ["report", "data", "--out", "out", "--qc-rules", "rules.png", "--no-stimuli"],
            "QC rules rules.png: not a text file (JSON or TOML)",
        ),
        (
            ["report", "data", "--out", "file.txt/report", "--no-stimuli"],
            "file.txt/report: a file is in the way",  # before the data are read
        ),
    ],
)
def test_a_bad_path_or_file_is_one_error_line(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "file.txt").write_text("in the way")
    (tmp_path / "rules.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "sub-01_ses-1_task-x_beh.tsv").write_text("participant\n")
    assert main(args) == 2
    assert message in _error_line(capsys)
    assert not (tmp_path / "a.png").exists()  # refused before anything was generated


@pytest.mark.parametrize(
    "args, message",
    [
        (["bench", "generator", "--json", "b.json", "--repeats", "0"], "0 must be at least 1"),
        (["bench", "generator", "--json", "b.json", "--sizes", "abc"], "'abc' is not a whole"),
        (["generate", "--steps", "-3", "--out", "a.png"], "-3 must be at least 1"),
        (["report", "data", "--out", "out", "--seed", "-1"], "-1 must not be negative"),
        (["simulate", "p.toml", "--seed", "-1"], "-1 must not be negative"),
        # torch takes no seed of 2**64 or more (a traceback after the model had loaded)
        (["generate", "--seed", str(10**23), "--out", "a.png"], "too large for a seed"),
        (["run", "p.toml", "--seed", str(2**32)], "at most 4294967295"),
        (["train", "base", "--out", "run", "--seed", str(2**64)], "too large for a seed"),
        (["stimuli", "sheet", "set", "--tile-px", "0"], "0 must be at least 1"),
        # before: "set holds no images" for --rows 0; a sheet without levels for --levels 0
        (["stimuli", "sheet", "set", "--rows", "0"], "0 must be at least 1"),
        (["stimuli", "sheet", "set", "--levels", "-1"], "-1 must be at least 1"),
        # a traceback (log of a strength) or a late error after the first generations
        (["bench", "quality", "--json", "q.json", "--strengths", "-1"], "-1 must be a positive"),
        (["bench", "quality", "--json", "q.json", "--strengths", "nan"], "nan must be a positive"),
        (["bench", "quality", "--json", "q.json", "--fovea-deg", "0"], "0 must be a positive"),
        (["bench", "lora", "--json", "q.json", "--strengths", "inf"], "inf must be a positive"),
    ],
)
def test_out_of_range_numbers_are_usage_errors(capsys, args, message):
    with pytest.raises(SystemExit) as done:
        main(args)
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["bench", "generator", "--json", "records"], "records is a folder; give a file"),
        (["bench", "quality", "--json", "notes.txt/q.json"], "notes.txt is a file, not a folder"),
        (["bench", "latent", "--json", "records"], "records is a folder"),
    ],
)
def test_json_outputs_are_checked_before_the_benchmark_runs(
    tmp_path, monkeypatch, capsys, args, message
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "records").mkdir()
    (tmp_path / "notes.txt").write_text("not a folder")
    with pytest.raises(SystemExit) as done:
        main(args)
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def _some_data(root: pathlib.Path) -> None:
    """A small data set in ``root``: the report creates its output folder once data loaded."""
    from analysis.simulate_data import SimulationSpec, simulate_dataset

    simulate_dataset(out_dir=root, spec=SimulationSpec(participants=1, trials_per_condition=10))


def _read_only_mkdir(monkeypatch, code=errno.EROFS):
    """``Path.mkdir`` fails as on a read-only mount (or, with ``code``, another OSError)."""

    def mkdir(self, *args, **kwargs):
        raise OSError(code, os.strerror(code), str(self))

    monkeypatch.setattr(pathlib.Path, "mkdir", mkdir)


@pytest.mark.parametrize("entry", ["fovea", "analysis/report.py"])
def test_an_output_on_a_read_only_file_system_is_one_error_line(
    tmp_path, monkeypatch, capsys, entry
):
    from analysis.report import main as report_main

    monkeypatch.chdir(tmp_path)
    _some_data(tmp_path / "data")
    _read_only_mkdir(monkeypatch)
    args = ["data", "--out", "copy/report", "--no-stimuli"]
    status = main(["report", *args]) if entry == "fovea" else report_main(args)
    assert status == 2
    assert _error_line(capsys) == (
        "error: copy/report: read-only file system (write to a writable folder, or copy the "
        "folder first)"
    )


@pytest.mark.parametrize(
    "code, what",
    [(errno.ENOSPC, "no space left on the device"), (errno.EDQUOT, "disk quota exceeded")],
)
def test_a_full_disk_is_one_error_line_saying_to_run_again(
    tmp_path, monkeypatch, capsys, code, what
):
    monkeypatch.chdir(tmp_path)
    _some_data(tmp_path / "data")
    _read_only_mkdir(monkeypatch, code=code)
    assert main(["report", "data", "--out", "out", "--no-stimuli"]) == 2
    assert _error_line(capsys) == (
        f"error: out: {what} (free some, then run the same command again: what was written "
        "whole is kept)"
    )


def test_other_os_errors_of_an_output_keep_their_traceback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _some_data(tmp_path / "data")
    _read_only_mkdir(monkeypatch, code=errno.EIO)
    with pytest.raises(OSError, match="Input/output error"):
        main(["report", "data", "--out", "out", "--no-stimuli"])


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--steps", "0", "--steps must be at least 1, got 0"),
        ("--steps", "-5", "--steps must be at least 1, got -5"),
        ("--time-budget-s", "0", "--time-budget-s must be positive, got 0.0"),
        ("--groups", "0", "--groups must be at least 1, got 0"),
        ("--warmup-steps", "-1", "--warmup-steps must be 0 or more, got -1"),
        ("--ema-decay", "nan", "--ema-decay must be in [0, 1), e.g. 0.999, got nan"),
        ("--ema-decay", "1.5", "--ema-decay must be in [0, 1)"),
        ("--t-mean", "inf", "--t-mean must be a finite number, got inf"),
        ("--t-std", "-1", "--t-std must be positive, got -1.0"),
        ("--max-zoom-out", "0.5", "--max-zoom-out must be at least 1, got 0.5"),
        ("--lora-rank", "0", "--lora-rank must be at least 1, got 0"),
        ("--checkpoint-every-s", "-1", "--checkpoint-every-s must be positive, got -1.0"),
    ],
)
def test_training_numbers_out_of_range_are_one_error_line(
    tmp_path, monkeypatch, capsys, flag, value, message
):
    """Before, --steps 0 or a NaN --ema-decay trained nothing (or diverged) and still saved
    ``model.safetensors`` as if it were a model."""
    monkeypatch.chdir(tmp_path)
    args = ["train", "base", "--out", "run", "--crop-px", "64", "--batch-size", "2"]
    assert main([*args, flag, value]) == 2
    assert message in _error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_output_into_a_closed_pipe_is_no_traceback():
    """`fovea check PROTOCOL | head -1` printed a BrokenPipeError traceback once head had read
    its line (seen with a protocol whose check prints several notes). The rest of the output
    goes nowhere, without a word; the status is a shell's for SIGPIPE (141)."""
    import subprocess
    import sys

    code = "import sys; from fovea_cli.main import main; sys.exit(main(['check', 'pilot_2afc']))"
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            cwd=pathlib.Path(__file__).resolve().parents[1],
        )
    finally:
        os.close(write_end)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
    assert done.returncode == 141


def test_only_a_closed_standard_output_counts_as_the_reader_gone():
    """A BrokenPipeError from another pipe (a generation child process that died) must stay an
    error, not end the command silently with status 141: only a stdout whose reading end is
    closed is taken for `| head` having its lines."""
    from fovea_cli.main import reader_gone

    read_end, write_end = os.pipe()
    try:
        assert not reader_gone(write_end)
        os.close(read_end)
        assert reader_gone(write_end)
    finally:
        os.close(write_end)
    with open(os.devnull, "w") as devnull:
        assert not reader_gone(devnull.fileno())
