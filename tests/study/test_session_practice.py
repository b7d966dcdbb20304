"""Session structure through the real PsychoPy window (virtual display), the tiny generator, the
simulated tracker and a simulated participant: the example pair after the instructions, the
practice block (repeated while below its criterion, logged as ``block = practice``), blocked
conditions in the participant's Latin-square order, a break with its minimum duration and
progress text, the goodbye screen with the session's duration, the analysis dropping practice
rows, and an exact resume that does not repeat a finished practice."""

from __future__ import annotations

import itertools
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from protocol import load_protocol
from study.session import SessionConfig, run_session
from tests.study.conftest import small_protocol_dict, write_toml

pytestmark = pytest.mark.display
SEED = 6  # this seed's first practice block has a wrong answer: the practice repeats
BREAK_MIN_S = 5.0


def _protocol_dict() -> dict:
    data = small_protocol_dict(method="constant", trials=4)
    right = data["conditions"][0]
    data["conditions"] = [right, {**right, "name": "acuity_left3", "fixation_deg": [-3.0, 0.0]}]
    data["procedure"].update(order="blocked", counterbalance="latin_square")
    data["procedure"]["constant"] = {"repeats": 2, "n_levels": 2}  # 4 main trials per condition
    # A hard first practice level and a strict criterion: the practice may repeat (at most 2).
    data["practice"] = {
        "trials": 2,
        "levels": [0.1, 8.0],
        "criterion": 1.0,
        "max_blocks": 2,
        "example": True,
    }
    data["breaks"] = {"every_n_trials": 4, "min_duration_s": BREAK_MIN_S}
    return data


def _config(root, loaded, *, resume=False, shots=True) -> SessionConfig:
    return SessionConfig(
        loaded=loaded,
        data_dir=root / "data",
        participant="sim02",  # participant 2: row 1 of the Latin square (the reversed order)
        session="1",
        tracker="sim",
        observer="parametric",
        seed=SEED,
        resume=resume,
        simulated_clock=True,
        screenshots_dir=(root / "shots") if shots else None,
        quiet=True,
    )


def _rows(path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", na_values="n/a", keep_default_na=False)


@pytest.fixture(scope="module")
def session(virtual_x, tmp_path_factory):
    root = tmp_path_factory.mktemp("structure")
    loaded = load_protocol(write_toml(_protocol_dict(), root / "structure.toml"))
    result = run_session(_config(root, loaded))
    sidecar = json.loads(result.paths.beh_json.read_text())
    return {
        "root": root,
        "loaded": loaded,
        "result": result,
        "rows": _rows(result.paths.beh_tsv),
        "sidecar": sidecar,
    }


def test_practice_comes_first_is_logged_as_practice_and_repeats_below_the_criterion(session):
    rows, sidecar = session["rows"], session["sidecar"]
    assert session["result"].completed
    blocks = [k for k, _ in itertools.groupby(rows["block"])]
    assert blocks == ["practice", "main"]
    practice = rows[rows["block"] == "practice"]
    assert practice["track"].str.startswith("practice/").all()
    assert set(practice["level"]) <= {0.1, 8.0}
    record = sidecar["practice"]
    answered = practice[practice["correct"].notna()]
    assert len(answered) == 2 * len(record["blocks"]) and record["finished"]
    pairs = answered["correct"].to_numpy().reshape(-1, 2)  # 2 answers per practice block
    assert [b["correct"] for b in record["blocks"]] == [int(p.sum()) for p in pairs]
    # criterion 1.0: passed exactly when the last block was all correct; a failed first block
    # was repeated (the limit is 2 blocks)
    assert record["passed"] == (record["blocks"][-1]["accuracy"] == 1.0)
    assert len(record["blocks"]) == (1 if record["blocks"][0]["accuracy"] == 1.0 else 2)
    assert record["blocks"][0]["accuracy"] < 1.0 and len(record["blocks"]) == 2  # (SEED)
    main = rows[rows["block"] == "main"]
    assert int(main["correct"].notna().sum()) == 8


def test_blocked_conditions_follow_the_participants_latin_square_row(session):
    rows, sidecar = session["rows"], session["sidecar"]
    record = sidecar["counterbalancing"]
    assert record["scheme"] == "latin_square" and record["participant_number"] == 2
    assert record["latin_square_row"] == 1
    assert record["condition_order"] == ["acuity_left3", "acuity_right3"]
    main = rows[rows["block"] == "main"]
    assert [k for k, _ in itertools.groupby(main["condition"])] == record["condition_order"]
    practice = rows[(rows["block"] == "practice") & (rows["attempt"] == 1)]
    assert practice["condition"].tolist()[:2] == record["condition_order"]


def test_break_after_n_responses_lasts_its_minimum_with_a_progress_message(session):
    rows, sidecar = session["rows"], session["sidecar"]
    breaks = sidecar["runs"][-1]["breaks"]
    assert [b["after_responses"] for b in breaks] == [4] and breaks[0]["block"] == 1
    assert breaks[0]["duration_s"] >= BREAK_MIN_S
    main = rows[(rows["block"] == "main") & rows["onset_s"].notna()]
    answered = main[main["correct"].notna()]
    fourth = answered.iloc[3]
    after = main[main["trial"] > fourth["trial"]].iloc[0]
    assert after["onset_s"] - fourth["onset_s"] >= BREAK_MIN_S
    text = session["loaded"].protocol.instructions.break_text
    assert text.format(done=4, total=8, block=1, blocks=2).startswith("Block 1 of 2 done")
    shot = _shot(session, "break")
    assert (shot.sum(axis=2) < 200).sum() > 200  # the text is drawn


def test_example_pair_is_shown_side_by_side_after_the_instructions(session):
    example = session["sidecar"]["example"]
    assert example["level"] == 8.0 and example["condition"] == "acuity_left3"
    shot = _shot(session, "example")
    grey = np.abs(shot - shot[0, 0]).sum(axis=2) > 30  # differs from the background
    h, w = grey.shape
    top = grey[: h // 2]
    left, right = top[:, : w // 2], top[:, w // 2 :]
    assert left.mean() > 0.05 and right.mean() > 0.05  # an image on each side
    assert not grey[: h // 2, w // 2 - 2 : w // 2 + 2].all()  # a gap between them


def test_goodbye_screen_and_the_sessions_duration(session):
    sidecar, rows = session["sidecar"], session["rows"]
    assert sidecar["session_duration_s"] > rows["onset_s"].max()
    assert (session["root"] / "shots" / "goodbye.png").exists()
    from study.session_screens import format_duration

    assert format_duration(725.2) == "12 min 5 s" and format_duration(42) == "42 s"


def test_analysis_drops_practice_rows(session):
    from analysis.data import load_dataset

    dataset = load_dataset(data_dir=session["root"] / "data")
    rows = session["rows"]
    assert len(dataset.trials) == int((rows["block"] == "main").sum())
    assert set(dataset.trials["block"]) == {"main"}


def test_exact_resume_keeps_the_order_and_does_not_repeat_a_finished_practice(session, tmp_path):
    """The session cut after its practice and two main trials, then resumed: the same rows."""
    rows = session["rows"]
    first_main = int(rows.index[rows["block"] == "main"][0])
    keep = first_main + 2
    src = session["result"].paths
    root = tmp_path
    loaded = load_protocol(shutil.copy(session["loaded"].path, root / "structure.toml"))
    dst = _config(root, loaded, shots=False)
    from study.datalog import SessionPaths

    paths = SessionPaths(data_dir=root / "data", participant="sim02", session="1", task="fovea2afc")
    paths.beh_dir.mkdir(parents=True)
    lines = src.beh_tsv.read_text().splitlines(keepends=True)
    paths.beh_tsv.write_text("".join(lines[: 1 + keep]))
    sidecar = json.loads(src.beh_json.read_text())
    sidecar.update(completed=False, runs=sidecar["runs"][:1])
    sidecar["protocol_file"] = str(loaded.path)
    paths.beh_json.write_text(json.dumps(sidecar))
    dst.resume = True
    result = run_session(dst)
    assert result.completed
    resumed = _rows(paths.beh_tsv)
    columns = ["trial", "block", "track", "condition", "level", "seed", "interval_foveated"]
    columns += ["correct", "attempt"]
    pd.testing.assert_frame_equal(resumed[columns], rows[columns])
    again = json.loads(paths.beh_json.read_text())
    assert again["practice"] == session["sidecar"]["practice"]
    assert "practice" not in [b for b in resumed["block"][keep:]]
    assert "example" not in json.loads(paths.beh_json.read_text()).get("runs", [{}])[-1]


def _shot(session, name):
    from PIL import Image

    image = Image.open(session["root"] / "shots" / f"{name}.png").convert("RGB")
    return np.asarray(image).astype(int)


def test_a_participant_pressing_space_at_once_waits_out_the_breaks_minimum(virtual_x, tmp_path):
    """The keyboard path (``fovea run``): SPACE held from the first frame; the break screen stays
    until its minimum duration has passed (simulated clock, 10 frame periods per flip)."""
    from psychopy import visual

    from study.presenter import Presenter, SimClock
    from study.procedures import SessionPlan
    from study.session_screens import SessionScreens

    loaded = load_protocol(write_toml(_protocol_dict(), tmp_path / "p.toml"))
    p = loaded.protocol
    win = visual.Window(size=(320, 240), units="pix", waitBlanking=False, checkTiming=False)
    try:
        clock = SimClock()
        presenter = Presenter(
            protocol=p,
            win=win,
            clock=clock,
            tracker=None,
            physio=None,
            simulated=True,
            speed=10,
            auto_advance=False,
        )
        presenter.keys = lambda key_list: ["space"]  # pressed on every frame
        screens = SessionScreens(
            protocol=p,
            plan=SessionPlan(protocol=p, seed=1, participant="01"),
            presenter=presenter,
            sidecar={},
            run_record={},
            write_sidecar=lambda: None,
            say=lambda *a: None,
        )
        screens.screen("break", "break", min_duration_s=BREAK_MIN_S)
        assert BREAK_MIN_S <= clock() < BREAK_MIN_S + 0.2
        start = clock()
        screens.screen("goodbye", "goodbye")  # no minimum: the first SPACE ends it
        assert clock() - start < 0.2
    finally:
        win.close()


def test_practice_feedback_without_feedback_in_the_main_trials(virtual_x, tmp_path):
    """``[practice] feedback = true`` with ``[feedback] enabled = false``: the practice trials end
    with the feedback mark (the gaze file's ``feedback`` phase), the main trials do not."""
    data = small_protocol_dict(method="constant", trials=4)
    data["conditions"] = data["conditions"][:1]
    data["procedure"]["constant"] = {"repeats": 1, "n_levels": 2}
    data["practice"] = {"trials": 2, "levels": [8.0], "criterion": 0.5, "feedback": True}
    data["feedback"] = {"enabled": False}
    loaded = load_protocol(write_toml(data, tmp_path / "practice_feedback.toml"))
    print(f"seed {SEED}")
    result = run_session(_config(tmp_path, loaded, shots=False))
    assert result.completed
    rows = _rows(result.paths.beh_tsv)
    columns = json.loads(result.paths.physio_json.read_text())["Columns"]
    gaze = pd.read_csv(result.paths.physio_tsv_gz, sep="\t", header=None, names=columns)
    with_feedback = set(gaze.loc[gaze["phase"] == "feedback", "trial"].astype(int))
    blocks = dict(zip(rows["trial"].astype(int), rows["block"], strict=True))
    practice = {t for t, b in blocks.items() if b == "practice"}
    assert practice and len(practice) < len(blocks)
    assert with_feedback == practice


def test_the_console_says_when_a_break_is_on_the_participants_screen(tmp_path):
    """The experimenter at the terminal saw nothing while the participant sat at a break (the
    pause and the recalibration each print a line): the break's line says after how many
    responses, its minimum duration, and who ends it."""
    from types import SimpleNamespace

    from study.session_screens import SessionScreens

    p = load_protocol(write_toml(_protocol_dict(), tmp_path / "p.toml")).protocol
    practice = SimpleNamespace(blocks=[], summary=lambda: {})
    plan = SimpleNamespace(
        practice=practice, block="main", n_responses=0, total_planned_responses=8
    )
    shown, lines, written = [], [], []
    presenter = SimpleNamespace(
        auto_advance=False,
        clock=lambda: 0.0,
        text_screen=lambda text, *, phase, min_duration_s=0.0: shown.append(
            (phase, min_duration_s)
        ),
    )
    screens = SessionScreens(
        protocol=p,
        plan=plan,
        presenter=presenter,
        sidecar={},
        run_record=(run_record := {}),
        write_sidecar=lambda: written.append(list(run_record.get("breaks", []))),
        say=lines.append,
    )
    for done in (3, 4, 4, 5):  # the break after the 4th response, once
        plan.n_responses = done
        screens.before_trial()
    assert shown == [("break", BREAK_MIN_S)]
    assert lines == [
        "  break after 4 of 8 responses (block 1 of 2 done), at least 5 s; "
        "the participant's SPACE continues"
    ]
    # Written when it ends: a run killed before its end records keeps its breaks in beh.json
    # (a simulated run killed after 11 breaks had none there).
    assert [[b["after_responses"] for b in w] for w in written] == [[4]]
