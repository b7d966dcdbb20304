"""The experimenter's controls between trials and the status line on the console.

Between any two trials the operator can press ``p`` (pause: a pause screen until SPACE) or
``c`` (recalibrate; during the fixation phase ``c`` recalibrates at once). Keys pressed at any
time during a trial count: the presenter keeps them when it clears the key buffer
(``Presenter.take_operator_keys``). After each trial the console shows one status line: the
trial number and the responses so far of the total, the condition and level, the result, and
the last calibration's validation error. After ``[procedure] max_aborts_in_a_row`` aborted
trials in a row the participant is asked to wait and the console asks the operator what to do
(``AbortStreak``). The participant's texts are the protocol's ``[instructions]``.
"""

from __future__ import annotations

from collections import Counter

PAUSE_KEY = "p"
RECALIBRATE_KEY = "c"
OPERATOR_KEYS = (PAUSE_KEY, RECALIBRATE_KEY)
AGAIN_KEY, ACCEPT_KEY = "r", "a"
VALIDATION_TEXT = (
    "{finding}\n\n"
    f"{AGAIN_KEY.upper()}: calibrate again\n"
    f"{ACCEPT_KEY.upper()}: accept it anyway (logged as an override)\n"
    "Escape: end the session (--resume continues it)"
)


class AbortStreak:
    """The trials aborted in a row (a stopped recording neither counts nor breaks the run: the
    session restarts it); ``add`` says what happened once there are ``limit`` of them.

    Args:
        limit: ``[procedure] max_aborts_in_a_row``.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.reasons: list[str] = []

    def add(self, outcome) -> str | None:
        """Count a trial's ``TrialOutcome``. The ``limit``-th abort in a row returns what
        happened (e.g. ``10 trials in a row were aborted (fixation_break 9, deadline 1)``), and
        the count starts again."""
        if outcome.recording_stopped:
            return None
        if not outcome.requeue:
            self.reasons.clear()
            return None
        self.reasons.append(str(outcome.row.get("abort_reason")))
        if len(self.reasons) < self.limit:
            return None
        counts = ", ".join(f"{r} {n}" for r, n in Counter(self.reasons).most_common())
        self.reasons.clear()
        return f"{self.limit} trials in a row were aborted ({counts})"


class OperatorControls:
    """Pause and recalibrate between trials; the per-trial status line.

    Args:
        presenter: the window (``Presenter``).
        calibrate: runs a calibration and records it (the session's).
        say: the console printer.
        calibrations: returns the sidecar's calibration records (the last one's
            ``avg_error_deg`` is the status line's validation error).
        texts: the protocol's ``[instructions]`` (the participant sees the pause screens).
    """

    def __init__(self, *, presenter, calibrate, say, calibrations, texts) -> None:
        self.presenter = presenter
        self.calibrate = calibrate
        self.say = say
        self.calibrations = calibrations
        self.texts = texts
        self.pauses = 0

    def between_trials(self) -> None:
        """Act on the operator keys pressed since the last trial (pause first)."""
        keys = self.presenter.take_operator_keys()
        if PAUSE_KEY in keys:
            self.pauses += 1
            self.say("  paused by the operator (SPACE continues)")
            self.presenter.text_screen(self.texts.pause, phase="pause")
        if RECALIBRATE_KEY in keys:
            self.say("  recalibration asked by the operator")
            self.calibrate()

    def after_aborts(self, finding: str) -> None:
        """Too many aborted trials in a row (``AbortStreak``): the participant is asked to wait
        for the experimenter (``[instructions] wait_for_experimenter``), the console says what
        happened and the keys: ``c`` recalibrates, SPACE goes on, Escape ends the session
        (``QuitRequested``)."""
        self.say(
            f"  {finding}: {RECALIBRATE_KEY}: recalibrate, SPACE: go on, "
            "Escape: end the session (--resume continues it)"
        )
        key = self.presenter.text_screen(
            self.texts.wait_for_experimenter, phase="pause", keys=("space", RECALIBRATE_KEY)
        )
        if key == RECALIBRATE_KEY:
            self.calibrate()

    def validation_error(self) -> str:
        """The last calibration's average validation error, or ``n/a``."""
        for record in reversed(self.calibrations()):
            error = record.get("avg_error_deg")
            if error is not None:
                return f"{float(error):.2f} deg"
        return "n/a"

    def status_line(self, *, trial: int, done: int, total: int, row: dict, requeued: bool) -> str:
        """One line per trial for the console."""
        result = f"aborted ({row['abort_reason']})" if requeued else f"correct {row['correct']}"
        gen = row.get("gen_latency_s")
        # A practice trial is not one of the session's responses: "(0 of 40 done)" hid it.
        progress = "practice" if row.get("block") == "practice" else f"{done} of {total} done"
        return (
            f"  trial {trial:4d} ({progress}) {row['condition']:<16} "
            f"level {row['level']:.3g} {result}"
            + (f"  gen {gen:.2f}s" if gen is not None else "")
            + f"  last validation {self.validation_error()}"
            # Simulated sessions have no one at the keyboard: the hint is for a lab's operator.
            + (
                ""
                if self.presenter.simulated
                else f"  [{PAUSE_KEY}: pause, {RECALIBRATE_KEY}: recalibrate]"
            )
        )


def drift_check_lines(checks, *, trial: int, limit_deg: float | None) -> list[str]:
    """Console lines for the drift checks of trial ``trial`` (``DriftCheckResult``s, in order):
    the offset and whether it was accepted or brought a recalibration."""
    lines = []
    for check in checks:
        offset = "no result" if check.offset_deg is None else f"offset {check.offset_deg:.2f} deg"
        if check.accepted:
            outcome = "accepted"
        elif check.offset_deg is not None and limit_deg is not None:
            outcome = f"above the {limit_deg:.2f} deg limit: recalibration"
        else:
            outcome = f"after {check.attempts} attempt(s): recalibration"
        lines.append(f"  drift check in trial {trial}: {offset}, {outcome}")
    return lines


def validation_question(*, presenter, say, limits):
    """``EyeLinkTracker.override_validation`` for a session with an operator: after each
    validation outside the protocol's limits (or a setup left without one) the window asks
    whether to calibrate again (R) or accept it anyway (A); Escape ends the session.

    Args:
        presenter: the window.
        say: the console printer (the question is printed there too).
        limits: the acceptance limits (``study.trackers.eyelink_setup.AcceptanceLimits``).
    """

    def ask(result) -> bool:
        if result.avg_error_deg is None or result.max_error_deg is None:
            finding = "The setup ended without a validation."
        else:
            finding = (
                f"The validation is outside the protocol's limits: average error "
                f"{result.avg_error_deg:.2f} deg, worst {result.max_error_deg:.2f} deg "
                f"(limits {limits.avg_error_deg:.2f} / {limits.max_error_deg:.2f} deg)."
            )
        say(f"  {finding} {AGAIN_KEY.upper()}: again, {ACCEPT_KEY.upper()}: accept anyway")
        text = VALIDATION_TEXT.format(finding=finding)
        key = presenter.text_screen(text, phase="validation", keys=(AGAIN_KEY, ACCEPT_KEY))
        return key == ACCEPT_KEY

    return ask
