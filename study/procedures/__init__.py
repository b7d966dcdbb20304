"""Adaptive and fixed procedures (QUEST+, staircases, constant stimuli) and the trial scheduler."""

from study.procedures.scheduler import LoggedTrial, Scheduler, TrialPlan, replay

__all__ = ["LoggedTrial", "Scheduler", "TrialPlan", "replay"]
