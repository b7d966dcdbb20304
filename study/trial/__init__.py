"""One gaze-contingent 2AFC trial: the runner and its phases (``runner``, ``fixation``,
``presentation``), the gaze checks (``gaze``), where the two images come from (``sources``) and
the trial's state and outcome (``state``)."""

from study.trial.gaze import FixationHold, GazeMonitor
from study.trial.runner import TrialRunner
from study.trial.sources import TrialImageSources
from study.trial.state import TrialOutcome, trial_rng

__all__ = [
    "FixationHold",
    "GazeMonitor",
    "TrialImageSources",
    "TrialOutcome",
    "TrialRunner",
    "trial_rng",
]
