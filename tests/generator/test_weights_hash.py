"""generator.weights_hash: every weight the generator samples with is in its hash."""

import pytest
import torch

from generator.loading import load_generator
from generator.weights_hash import weights_sha256


@pytest.mark.parametrize("stage", ["detail", "periphery", "model"])
def test_each_stage_of_the_default_model_is_in_its_hash(stage):
    """A retrained detail or periphery stage (exported alone) changes the images: before, the
    hash covered only the transformer, so stimulus sets kept their stale images."""
    generator = load_generator("default")
    before = weights_sha256(generator)
    module = getattr(generator.encoder, stage)
    name, tensor = next((n, t) for n, t in module.state_dict().items() if t.is_floating_point())
    with torch.no_grad():
        tensor.add_(1.0)  # state_dict tensors share storage with the module's parameters
    print(f"changed encoder.{stage}.{name}")
    assert weights_sha256(generator) != before


def test_the_hash_is_the_same_for_the_same_weights():
    assert weights_sha256(load_generator("tiny")) == weights_sha256(load_generator("tiny"))
