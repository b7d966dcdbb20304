"""Adaptive and fixed procedures (QUEST+, staircases, constant stimuli), the trial scheduler,
the practice block, counterbalancing and the session's plan that puts them together."""

from study.procedures.practice import PracticeBlock, is_practice
from study.procedures.scheduler import LoggedTrial, Scheduler, TrialPlan, replay
from study.procedures.session_plan import SessionPlan

__all__ = [
    "LoggedTrial",
    "PracticeBlock",
    "Scheduler",
    "SessionPlan",
    "TrialPlan",
    "is_practice",
    "replay",
]
