"""benchmarks/scene_conditioning.py (two trainings, then the records): an output it cannot
write is refused before the trainings, not after them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "scene_conditioning.py"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--json", "{tmp}"], "is a folder"),  # was an IsADirectoryError after both trainings
        (["--json", "{tmp}/a_file/r.json"], "is a file"),
        (["--steps", "0"], "--steps: 0 must be at least 1"),
    ],
)
def test_bad_options_are_refused_before_the_trainings(tmp_path, capsys, args, says):
    (tmp_path / "a_file").write_text("x")
    spec = importlib.util.spec_from_file_location("scene_conditioning", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    argv = ["--work", str(tmp_path / "work"), "--json", str(tmp_path / "r.json")]
    with pytest.raises(SystemExit) as exit_:
        module.main([*argv, *(a.format(tmp=tmp_path) for a in args)])
    assert exit_.value.code == 2 and says in capsys.readouterr().err
    assert not (tmp_path / "work").exists()
