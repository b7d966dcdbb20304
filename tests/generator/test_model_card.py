"""Model card wording: the JOD 9.5 crossing, losses and precision read as sentences."""

from __future__ import annotations

from generator.training.export import _crossing_text, _loss, _precision


def test_the_crossing_is_said_in_words():
    assert _crossing_text({"strength": 0.4192, "token_ratio": 0.1987}) == (
        "s = 0.42, token ratio 0.199"
    )
    assert _crossing_text({"strength": "<0.25", "token_ratio": None}).startswith("below s = 0.25")
    assert _crossing_text({"strength": ">2.0", "token_ratio": "<0.034"}).startswith("above s = 2.0")
    assert _crossing_text(None) == "not measured"


def test_losses_and_precision():
    assert _loss(0.047091076970100405) == "0.04709" and _loss(None) == "n/a"
    assert _precision({"mixed_precision": "no", "tf32": True}) == "fp32, TF32 matmuls"
    assert _precision({"mixed_precision": "no"}) == "fp32"
    assert _precision({"mixed_precision": "bf16"}) == "bf16 mixed precision"
    assert _precision({}) == "precision n/a"
