"""The study runner: procedures, the gaze-contingent PsychoPy 2AFC trial, crash-safe session
data, simulated participants, and the ``fovea run`` / ``simulate`` commands (the protocol schema
is the ``protocol`` package; ``fovea demo`` lives in ``fovea_cli``)."""
