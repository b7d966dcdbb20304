"""``fovea bench realtime``: the session's own trial loop, timed, with and without speculation.

The bench runs real trials: the study's ``TrialRunner`` with the simulated participant
(``study.trackers.sim``, as in ``fovea simulate``) and the parametric observer, the process
generation service started as a session starts it (``study.service.start``), and a PsychoPy
window (Xvfb when there is no display) on the real clock, its flips paced to ``refresh_hz``
(``study.frames.FrameTimer``: a virtual display has no vsync). Each figure is read from what the
trial itself records (``TrialOutcome``): fixation acquired to the first interval's first flip,
the foveated request's latency and generator time, PsychoPy's frame intervals.

Trials alternate between the two modes (``speculative``: generation starts at the fixation
target; ``plain``: at the measured gaze) in ABBA order with the same seeds, targets and landing
points, so that both see the same machine load (its load averages before and after are recorded);
between trials the eyes rest off every target, so that each trial starts with the same saccade in
both modes (the simulated participant's randomness is keyed by the plan). A Ctrl-C during the
trials keeps the finished ones: the records are made from them, marked ``interrupted``; so does a
generator that fails for good (the service gave up restarting it, a request raised), its message
in ``stopped_by``.
On a share ``off_target_prob`` of trials the eyes land ``off_target_deg`` away from the target
(beyond the speculation tolerance, within the fixation tolerance): there the speculation is
replaced. Frame intervals are also measured for a
stretch with no generation at all (``baseline_*``: the mark alone, and image and mark), which
separates drops caused by generation from drops a loaded machine or the virtual display cause
anyway; ``onset`` frames (the first of each interval: a texture upload) are counted apart.

Records (one per mode) carry at least ``mode``, ``latency_median_s``, ``latency_p95_s``
(fixation acquired to stimulus on screen), ``gen_latency_median_s``/``gen_latency_p95_s``,
``frames`` and ``dropped_frames``.

Modules: ``plan`` (configuration, trial plan, the bench's protocol), ``run`` (the window and the
trial loop), ``records`` (the records from the trials' outcomes).
"""

from study.realtime.plan import BenchConfig, BenchTrial, bench_protocol, plan_trials
from study.realtime.run import run_realtime_bench, write_records

__all__ = [
    "BenchConfig",
    "BenchTrial",
    "bench_protocol",
    "plan_trials",
    "run_realtime_bench",
    "write_records",
]
