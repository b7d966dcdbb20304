"""The study runner: protocols, procedures, the gaze-contingent PsychoPy 2AFC trial, crash-safe
session data, simulated participants, and the ``fovea run`` / ``simulate`` / ``demo`` commands."""
