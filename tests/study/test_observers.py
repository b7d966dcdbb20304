"""Simulated observers: the parametric one follows its psychometric function; the perceptual one
answers from FovVideoVDP (foveated) on the two images at the fixation."""

from __future__ import annotations

import numpy as np
import pytest

from protocol.schema import DisplaySettings, SimulationSettings
from study.observers import ObserverTrial, ParametricObserver, PerceptualObserver

SEED = 21


def test_parametric_observer_follows_psignifits_parametrisation():
    settings = SimulationSettings(
        threshold=1.0, thresholds={"far": 2.0}, width=0.5, log_scale=True, lapse=0.04
    )
    observer = ParametricObserver(settings=settings)
    assert observer.p_correct(condition="x", level=1.0) == pytest.approx(0.5 + 0.46 / 2)
    assert observer.p_correct(condition="far", level=2.0) == pytest.approx(0.73)
    # width: S goes from 0.05 to 0.95 across 0.5 log10 units around the threshold
    low, high = 10**-0.25, 10**0.25
    assert observer.p_correct(condition="x", level=low) == pytest.approx(0.5 + 0.46 * 0.05)
    assert observer.p_correct(condition="x", level=high) == pytest.approx(0.5 + 0.46 * 0.95)


def test_parametric_answers_are_fixed_by_the_generator_and_match_p():
    observer = ParametricObserver(settings=SimulationSettings(threshold=1.0, width=0.5, lapse=0.0))
    trial = ObserverTrial(
        condition="x", level=1.0, interval_foveated=2, foveated=None, twin=None, gaze_px=None
    )
    first = [
        observer.respond(trial=trial, rng=np.random.default_rng([SEED, i])) for i in range(400)
    ]
    again = [
        observer.respond(trial=trial, rng=np.random.default_rng([SEED, i])) for i in range(400)
    ]
    assert first == again
    correct = np.mean([a.response == 2 for a in first])
    assert correct == pytest.approx(0.75, abs=0.06)
    assert all(0.1 < a.rt_s < 5 for a in first)


@pytest.fixture(scope="module")
def scene():
    from skimage import data, transform

    image = transform.resize(data.astronaut(), (256, 256), anti_aliasing=True)
    return (image * 255).round().astype(np.uint8)


def _blur_outside(image, *, centre, radius_px, block=8):
    """Block-average (block x block) everything farther than radius_px from centre."""
    h, w = image.shape[:2]
    coarse = image.reshape(h // block, block, w // block, block, 3).mean(axis=(1, 3))
    coarse = np.repeat(np.repeat(coarse, block, 0), block, 1).round().astype(np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    far = np.hypot(xx - centre[0], yy - centre[1]) > radius_px
    out = image.copy()
    out[far] = coarse[far]
    return out


@pytest.mark.slow
def test_perceptual_observer_answers_from_the_visible_difference(scene):
    display = DisplaySettings()
    observer = PerceptualObserver(
        display=display, settings=SimulationSettings(perceptual_lapse=0.0)
    )
    assert observer.pixels_per_degree == pytest.approx(
        display.geometry().pixels_per_degree, rel=0.01
    )
    same = observer.jod_difference(foveated=scene, twin=scene, gaze_px=(128, 128))
    assert same == pytest.approx(0.0, abs=0.05)
    assert observer.p_correct_from_jod(same) == pytest.approx(0.5, abs=0.02)
    assert observer.p_correct_from_jod(1.0) == pytest.approx(0.75)
    foveated = _blur_outside(scene, centre=(128, 128), radius_px=60)
    at_fovea = observer.jod_difference(foveated=foveated, twin=scene, gaze_px=(128, 128))
    everywhere = observer.jod_difference(
        foveated=_blur_outside(scene, centre=(0, 0), radius_px=0), twin=scene, gaze_px=(128, 128)
    )
    print("dJOD same / periphery blurred / all blurred", same, at_fovea, everywhere)
    assert 0 < at_fovea < everywhere
    trial = ObserverTrial(
        condition="x",
        level=1.0,
        interval_foveated=1,
        foveated=foveated,
        twin=scene,
        gaze_px=(128, 128),
    )
    answer = observer.respond(trial=trial, rng=np.random.default_rng(SEED))
    assert answer.jod_difference == pytest.approx(at_fovea) and answer.p_correct > 0.5
