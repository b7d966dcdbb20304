"""Shared fixtures for the study tests: a virtual X display and small protocols."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROTOCOLS = REPO / "protocols"


@pytest.fixture(scope="session")
def virtual_x():
    """A usable DISPLAY: the existing one, or an Xvfb started by ``study.xvfb`` (the same code
    ``fovea simulate`` uses) for the whole test session."""
    from study.xvfb import virtual_display

    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    try:
        with virtual_display(width_px=2560, height_px=1440) as display:
            yield display
    except Exception as error:  # noqa: BLE001
        pytest.skip(f"no X display available: {error}")


@pytest.fixture(scope="module")
def window(virtual_x):
    """A small real PsychoPy window (800x600 px) per test module, for trial-rig tests; a module
    needing the display's full size defines its own ``window``."""
    from psychopy import visual

    win = visual.Window(
        size=(800, 600), units="pix", fullscr=False, checkTiming=False, waitBlanking=False
    )
    yield win
    win.close()


def pilot_dict() -> dict:
    """The shipped pilot protocol as a dict (tests derive small protocols from it)."""
    return tomllib.loads((PROTOCOLS / "pilot_2afc.toml").read_text(encoding="utf-8"))


def small_protocol_dict(
    *, method: str = "staircase", trials: int = 6, break_prob: float = 0.0, blinks: bool = True
) -> dict:
    """A fast protocol: the tiny random-weight class model (two classes, no scenes), 128 px
    images, one condition off centre, short timing.

    ``blinks=False``: the simulated participant never blinks. A test that needs every planned
    fixation break seen needs it: a blink late in a break ends the outside run as the eyelid's
    artifact (``study.trial.gaze.GazeMonitor``), and whether the rest of the break outlasts
    ``break_min_s`` then depends on the simulated clock, which follows real time while a trial
    waits for its images (one CI run in a few saw a trial at ``break_prob`` 1 answered)."""
    data = pilot_dict()
    data["name"] = "small_test"
    data["stimulus"].update(
        model="tiny", classes=[0, 1], image_width_px=128, image_height_px=128, seed_count=8
    )
    data["conditions"] = [
        {
            "name": "acuity_right3",
            "layout_mode": "acuity",
            "fixation_deg": [3.0, 0.0],
            "level_variable": "strength",
            "level_min": 0.1,
            "level_max": 8.0,
            "start_level": 2.0,
        }
    ]
    data["procedure"] = {
        "method": method,
        "trials_per_condition": trials,
        "staircase": {"n_staircases": 2, "n_down": 2, "n_up": 1, "step_sizes": [0.3, 0.15]},
        "questplus": {
            "n_levels": 10,
            "n_thresholds": 10,
            "widths_log10": [0.2],
            "lapse_rates": [0.02],
        },
    }
    data["timing"].update(
        fixation_hold_s=0.3,
        gaze_average_s=0.1,
        stimulus_duration_s=0.3,
        isi_s=0.2,
        mask_duration_s=0.1,
        feedback_duration_s=0.1,
        iti_s=0.1,
    )
    data["tracker"]["sim_fixation_break_prob"] = break_prob
    if not blinks:
        data["tracker"]["sim_blink_rate_hz"] = 0.0
    data["simulation"]["speed"] = 2
    data["generation"]["deadline_s"] = 60.0
    # A thread starts in a moment; the process service has tests of its own.
    data["generation"]["service"] = "thread"
    return data


def simulated_session(protocol_path: Path, data_dir: Path, **options):
    """The ``SessionConfig`` of a simulated participant ``sim01`` (simulated tracker, parametric
    observer, simulated clock, quiet, seed 3) with ``protocol_path``'s protocol; ``options``
    override or add fields."""
    from protocol import load_protocol
    from study.session import SessionConfig

    fields = dict(
        participant="sim01",
        tracker="sim",
        observer="parametric",
        seed=3,
        simulated_clock=True,
        quiet=True,
    )
    fields.update(options)
    return SessionConfig(loaded=load_protocol(protocol_path), data_dir=data_dir, **fields)


def write_toml(data: dict, path: Path) -> Path:
    """A minimal TOML writer for protocol dicts (tables, arrays of tables, scalars, lists)."""
    lines: list[str] = []

    def scalar(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
        if isinstance(v, list | tuple):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        if isinstance(v, dict):  # inline table (inside an array of tables)
            return "{ " + ", ".join(f"{k} = {scalar(x)}" for k, x in v.items()) + " }"
        return repr(v)

    def table(prefix: str, d: dict) -> None:
        plain = {k: v for k, v in d.items() if not isinstance(v, dict) and not _is_table_list(v)}
        if prefix:
            lines.append(f"[{prefix}]")
        for k, v in plain.items():
            lines.append(f"{k} = {scalar(v)}")
        for k, v in d.items():
            if isinstance(v, dict):
                table(f"{prefix}.{k}" if prefix else k, v)
            elif _is_table_list(v):
                for item in v:
                    lines.append(f"[[{prefix + '.' if prefix else ''}{k}]]")
                    for kk, vv in item.items():
                        lines.append(f"{kk} = {scalar(vv)}")

    table("", data)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _is_table_list(v) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


FLUX2_PROTOCOL = """\
name = "{name}"

[stimulus]
model = "{model}"
image_width_px = 64
image_height_px = 64
prompts = {prompts}
seed_start = 3
seed_count = 1
num_steps = 1
{extra}

[[conditions]]
name = "centre"
levels = [2.0]

[procedure]
method = "constant"

[generation]
service = "thread"
"""


def write_flux2_protocol(
    path: Path, *, model, extra: str = "", name: str = "flux2_test", prompts=("a cat",)
) -> Path:
    """A one-condition protocol for a (tiny) FLUX.2 directory at 64 px drawing ``prompts``, with
    ``extra`` lines in its ``[stimulus]`` table; returns ``path``."""
    prompts = json.dumps(list(prompts))  # a JSON list of strings is a TOML array
    text = FLUX2_PROTOCOL.format(name=name, model=model, extra=extra, prompts=prompts)
    path.write_text(text, encoding="utf-8")
    return path


def with_service(protocol, service: str):
    """``protocol`` (validated) with ``[generation] service`` set to ``service``."""
    generation = protocol.generation.model_copy(update={"service": service})
    return protocol.model_copy(update={"generation": generation})


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    """A tiny random FLUX.2 [klein] pipeline directory (generator.tiny_flux2)."""
    from generator.tiny_flux2 import save_tiny_flux2_pipeline

    return save_tiny_flux2_pipeline(tmp_path_factory.mktemp("klein") / "tiny-klein")


def stop_with_a_full_disk_at_trial_3(config, monkeypatch) -> None:
    """Run ``config``'s session until saving trial 3's images finds the disk full (the session
    stops resumably after 2 logged trials), then let saving work again."""
    import errno

    import study.trial.runner as trial_runner
    from generator.errors import FoveaError
    from study.session import run_session

    save = trial_runner.save_shown_images

    def full_at_trial_3(*, images_dir, trial, **images):
        if trial == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(images_dir))
        return save(images_dir=images_dir, trial=trial, **images)

    monkeypatch.setattr(trial_runner, "save_shown_images", full_at_trial_3)
    with pytest.raises(FoveaError, match="continue with --resume"):
        run_session(config)
    monkeypatch.setattr(trial_runner, "save_shown_images", save)
