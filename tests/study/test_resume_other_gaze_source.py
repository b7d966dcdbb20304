"""A session resumed with another gaze source or observer is refused with the command that
resumes it (the refusal said only "resume it with the same", though ``fovea run`` has no
``--observer`` and a simulated session is resumed by ``fovea simulate``)."""

from __future__ import annotations

import pytest

from tests.study.conftest import small_protocol_dict, write_toml

pytestmark = pytest.mark.display


def test_resuming_with_another_tracker_names_the_command_that_resumes(virtual_x, tmp_path, capsys):
    from fovea_cli.main import main

    protocol = write_toml(small_protocol_dict(trials=2), tmp_path / "small.toml")
    data = str(tmp_path / "data")
    assert main(["simulate", str(protocol), "--data", data, "--quiet"]) == 0
    capsys.readouterr()
    as_run = ["run", str(protocol), "--participant", "sim01", "--data", data]
    assert main([*as_run, "--tracker", "sim", "--resume"]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: session ")
    assert error.endswith(
        "ran with tracker sim and observer parametric; resume it with the same: "
        "--tracker sim --observer parametric (a simulated session: fovea simulate, or the fovea "
        "demo that recorded it)"
    )
    as_sim = ["simulate", str(protocol), "--data", data, "--resume"]
    assert main([*as_sim, "--tracker", "eyelink-emulated"]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.endswith(
        "resume it with the same: --tracker sim --observer parametric (a simulated session: "
        "fovea simulate, or the fovea demo that recorded it)"
    )
