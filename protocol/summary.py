"""What ``fovea check`` says about a protocol: the display, the stimulus, how fixation is
controlled, the timing in frames, each condition's full-resolution reach and token share, and the
trials per session (``summary``)."""

from __future__ import annotations

import math

from protocol.models import PRESET_TOKEN_PX
from protocol.run_settings import frames_for
from protocol.session_data import REPORT_MIN_TRIALS_PER_CONDITION, REPORT_MIN_TRIALS_PER_FIT

#: A fixation mark narrower than this (px) has a centre dot and cross bars (1/5 of it) under
#: 2 px: at 16 px/deg the default 0.4 deg mark is four dark specks without a centre.
MARK_MIN_PX = 10.0


def summary(protocol, *, scenes: str) -> list[str]:
    """A few lines: the display, the stimulus, each condition and the trials per session."""
    from protocol.scenes import unloaded_scene_factor

    d, s, procedure = protocol.display, protocol.stimulus, protocol.procedure
    ppd = d.geometry().pixels_per_degree
    known, factor = unloaded_scene_factor(s.model)
    takes_no_scenes = known and factor is None
    scenes_text = (
        "no scenes (the model takes classes or prompts)" if takes_no_scenes else f"scenes {scenes}"
    )
    from protocol.geometry import image_size_deg, stimulus_geometry
    from protocol.levels import protocol_token_rules

    geometry = stimulus_geometry(protocol)
    width_deg, height_deg = image_size_deg(geometry)
    lines = [
        f"display: {d.width_px}x{d.height_px} px, {d.width_cm:g}x{d.height_cm:g} cm at "
        f"{d.distance_cm:g} cm ({ppd:.1f} px/deg at the centre), {d.refresh_hz:g} Hz",
        f"stimulus: model {s.model!r} on {s.device}, {s.image_width_px}x{s.image_height_px} px "
        f"({width_deg:.1f}x{height_deg:.1f} deg), {scenes_text}",
    ]
    rules = protocol_token_rules(protocol)
    total = 0
    few: list[str] = []
    for c in protocol.conditions:
        x, y = (float(v) for v in geometry.deg_to_image_px(*c.fixation_deg))
        on_image = 0 <= x <= s.image_width_px and 0 <= y <= s.image_height_px
        trials = _trials(protocol, c)
        total += trials
        if trials < REPORT_MIN_TRIALS_PER_CONDITION:
            few.append(c.name)
        levels = ", ".join(f"{v:g}" for v in c.levels) if c.levels else None
        lines.append(
            f"condition {c.name}: {c.layout_mode}, fixation ({c.fixation_deg[0]:g}, "
            f"{c.fixation_deg[1]:g}) deg{'' if on_image else ' (off the image: all periphery)'}, "
            f"{c.level_variable} "
            + (f"levels {levels}" if levels else f"{c.level_min:g}..{c.level_max:g}")
            + f", {trials} trials; {_token_shares(c, geometry, token_rules=rules)}; "
            + _full_resolution_reach(c, geometry, token_rules=rules)
        )
    lines.append(
        f"procedure: {procedure.method}, {procedure.order}, {total} main trials per session"
    )
    lines.append(_stimuli_line(protocol, scenes=None if takes_no_scenes else scenes, total=total))
    lines.append(_fixation_line(protocol))
    lines.append(_timing_line(protocol))
    from generator.layout import fine_edge_strip_note
    from protocol.models import PRESET_TOKEN_PX

    strips = fine_edge_strip_note(
        s.image_width_px,
        s.image_height_px,
        patch_px=PRESET_TOKEN_PX,
        display_px=(d.width_px, d.height_px),
    )
    if strips:  # every condition is foveated (the twin is the full-resolution image)
        lines.append(f"note: {strips} ([stimulus] image_width_px, image_height_px)")
    mark_px = protocol.fixation.mark_size_deg * ppd
    if mark_px < MARK_MIN_PX:  # the dot and the bars are 1/5 of the mark (study.presenter)
        lines.append(
            f"note: the fixation mark is {mark_px:.1f} px across ({protocol.fixation.mark_size_deg:g}"
            f" deg at {ppd:.1f} px/deg): its centre dot and cross bars, 1/5 of it "
            f"({mark_px / 5:.1f} px), are too thin to draw, and the participant sees a few specks "
            f"without a centre; [fixation] mark_size_deg = "
            f"{math.ceil(100 * MARK_MIN_PX / ppd) / 100:g} or more draws them 2 px wide"
        )
    wide = _window_wider_than_fovea(protocol, geometry, token_rules=rules)
    every = protocol.breaks.every_n_trials
    if every and every >= total:  # a break comes before a further main trial, never after the last
        lines.append(
            f"note: [breaks] every_n_trials = {every}, but a session has {total} main trials: "
            "no break (lower it for breaks, or set 0)"
        )
    if few:
        lines.append(
            f"note: fewer than {REPORT_MIN_TRIALS_PER_CONDITION} main trials per session in "
            f"{', '.join(few)}: the report fits a participant only with at least "
            f"{REPORT_MIN_TRIALS_PER_CONDITION} analysed trials in each condition (sessions are "
            "pooled; fovea report --qc-rules FILE with min_trials_per_condition lowers it, to "
            f"no fewer than {REPORT_MIN_TRIALS_PER_FIT}: fewer are never fitted)"
        )
    if wide:
        lines.append(
            "note: from the images' generation to the end of interval 2 the gaze may move as far as the "
            "fixation window from the measured gaze, where the full-resolution region is "
            "centred, without a fixation break; that is farther than the region reaches in "
            f"{', '.join(wide)}: a participant can look at coarser tokens in a trial that "
            "counts, and a tracker error that large goes unnoticed; padding_deg widens a "
            "condition's region by that much and, from 0.5 deg, narrows its window to it "
            "([fixation] in docs/protocol.md)"
        )
    return lines


def _deg(value: float) -> str:
    """Degrees for a summary: two decimals below 1 deg, one above."""
    return f"{value:.2f}" if value < 1 else f"{value:.1f}"


def _reach(condition, level: float, geometry, *, token_rules: str) -> float:
    """The full-resolution radius (deg) of ``condition`` at ``level``, gaze on its target."""
    from protocol.levels import condition_layout, full_resolution_radius_deg

    layout = condition_layout(
        condition, level, geometry, token_px=PRESET_TOKEN_PX, token_rules=token_rules
    )
    return full_resolution_radius_deg(layout, geometry)


def _full_resolution_reach(condition, geometry, *, token_rules: str) -> str:
    """``full-resolution radius A deg at LOW, B deg at HIGH`` (``whole image`` when no token is
    coarse), the gaze on the condition's target."""
    levels = condition.levels or (condition.level_min, condition.level_max)
    low, high = min(levels), max(levels)
    texts = []
    for level in (low, high) if low != high else (low,):
        radius = _reach(condition, level, geometry, token_rules=token_rules)
        texts.append(
            f"{'whole image' if math.isinf(radius) else _deg(radius) + ' deg'} at {level:g}"
        )
    return "full-resolution radius " + ", ".join(texts)


def _window_wider_than_fovea(protocol, geometry, *, token_rules: str) -> list[str]:
    """``name (window W deg; from LEVEL)`` for each condition whose full-resolution region, at
    some level it can show, reaches less far than the fixation window from the generation on
    (``FixationSettings.interval_window_deg``): its explicit ``levels``, else its range, where
    the region shrinks as the level grows (the first such level found by bisection)."""
    found = []
    for c in protocol.conditions:
        window = protocol.fixation.interval_window_deg(c.padding_deg)

        def narrower(level: float, c=c, window=window) -> bool:
            return _reach(c, level, geometry, token_rules=token_rules) < window

        if c.levels:
            below = sorted(v for v in c.levels if narrower(v))
            first = below[0] if below else None
        elif not narrower(c.level_max):
            first = None
        elif narrower(c.level_min):
            first = c.level_min
        else:  # narrower at level_max, not at level_min: the first level where it is
            low, high = c.level_min, c.level_max
            for _ in range(30):
                middle = math.sqrt(low * high)
                low, high = (low, middle) if narrower(middle) else (middle, high)
            first = high
        if first is not None:
            where = (
                "at every level"
                if first == min(c.levels or [c.level_min])
                else (f"from {c.level_variable} {first:.3g}")
            )
            found.append(f"{c.name} ({where}, window {_deg(window)} deg)")
    return found


def _photograph_count(scenes: str) -> int:
    """How many photographs a scene source picks from (``pool``: the shipped held-out split)."""
    from generator.scene_sources import PoolSource, SceneFolder, scene_source

    source = scene_source(scenes)
    if isinstance(source, PoolSource):
        from generator.data.images import DEFAULT_PACK, pack_manifest

        entries = pack_manifest(DEFAULT_PACK)["images"]
        return sum(entry["split"] == source.split for entry in entries)
    if isinstance(source, SceneFolder):
        return len(source.files)
    return 1


def _stimuli_line(protocol, *, scenes: str | None, total: int) -> str:
    """How often a session's main trials come back to a seed and, for scene models, to a
    photograph: a participant who sees one photograph many times can learn where it shows the
    foveation."""
    seeds = len(set(protocol.stimulus.seed_pool()))
    text = f"stimuli: {seeds} seeds"
    if total > seeds:
        text += f" (a session's {total} main trials repeat {total - seeds})"
    if scenes is not None:
        photos = _photograph_count(scenes)
        where = "the shipped pool's held-out photographs" if scenes == "pool" else scenes
        text += (
            f"; {photos} photograph{'s' if photos != 1 else ''} ({where}): each in about "
            f"{total / photos:.0f} of a session's main trials, cropped, zoomed and flipped by "
            "the seed"
        )
    return text


def _fixation_line(protocol) -> str:
    """How the gaze is held: before the images and from their generation on."""
    fixation = protocol.fixation
    windows = {c.name: fixation.interval_window_deg(c.padding_deg) for c in protocol.conditions}
    if len(set(windows.values())) == 1:
        window = f"{_deg(next(iter(windows.values())))} deg"
    else:
        window = ", ".join(f"{_deg(w)} deg ({name})" for name, w in windows.items())
    return (
        f"fixation: held {protocol.timing.fixation_hold_s:g} s within {_deg(fixation.tolerance_deg)} "
        f"deg of the target, then from the images' generation to the end of interval 2 within {window} "
        f"of the measured gaze (a break: {fixation.break_min_s:g} s outside; a trial with one "
        "is re-queued)"
    )


def _frames(seconds: float, refresh_hz: float) -> int:
    """Whole frames showing ``seconds``, as the session counts them (``frames_for``)."""
    return frames_for(seconds, flip_s=1.0 / refresh_hz)


def _timing_line(protocol) -> str:
    """The trial's displays in frames of ``refresh_hz``, with the time they show."""
    timing, hz = protocol.timing, protocol.display.refresh_hz

    def shown(seconds: float) -> str:
        frames = _frames(seconds, hz)
        return f"{frames} frames ({frames / hz:.3f} s)"

    mask = _frames(timing.mask_duration_s, hz)
    isi = max(_frames(timing.isi_s, hz), mask)
    after = f"noise mask {mask} frames, then blank" if mask else "blank"
    response = f"within {timing.response_window_s:g} s" if timing.response_window_s else "unlimited"
    main, practice = (protocol.shows_feedback(practice=p) for p in (False, True))
    feedback = shown(timing.feedback_duration_s) if main else "off"
    if protocol.practice.trials and practice != main:
        feedback += f" ({'on' if practice else 'off'} in practice)"
    return (
        f"timing at {hz:g} Hz: each interval {shown(timing.stimulus_duration_s)}; between them "
        f"{isi} frames ({isi / hz:.3f} s: {after}); response {response}; feedback {feedback}; "
        f"between trials {shown(timing.iti_s)}"
    )


def _token_shares(condition, geometry, *, token_rules: str) -> str:
    """The share of the full grid's tokens at the condition's lowest and highest levels, with
    the gaze on its fixation target (preset-sized tokens), counted by the token rules the study
    generates with (``protocol.levels.protocol_token_rules``)."""
    from protocol.levels import condition_layout

    levels = condition.levels or (condition.level_min, condition.level_max)
    low, high = min(levels), max(levels)
    low_share, high_share = (
        100
        * condition_layout(
            condition, level, geometry, token_px=PRESET_TOKEN_PX, token_rules=token_rules
        ).token_ratio
        for level in (low, high)
    )
    if low == high:  # one level
        return f"tokens {low_share:.1f} % of full at {low:g}"
    return f"tokens {low_share:.1f} % of full at {low:g}, {high_share:.1f} % at {high:g}"


def _trials(protocol, condition) -> int:
    """Main trials of one condition (responded trials; aborted ones come back on top)."""
    procedure = protocol.procedure
    if procedure.method == "constant":
        n_levels = len(condition.levels) or procedure.constant.n_levels
        return n_levels * procedure.constant.repeats
    if procedure.method == "staircase":
        n = procedure.staircase.n_staircases
        return n * math.ceil(procedure.trials_per_condition / n)
    return procedure.trials_per_condition
