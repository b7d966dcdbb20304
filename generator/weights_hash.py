"""What a generator samples with, as one hash: a stimulus set's cache keys on it
(``stimuli.fingerprint``), sessions compare it with a set's, and training data made by a model
(``generator.training.periphery_pairs``) records it."""

from __future__ import annotations

import hashlib


def weights_sha256(generator) -> str:
    """SHA-256 of all weights a ``FoveatedGenerator`` samples with (name, dtype, shape and
    bytes of each tensor, read once): the denoiser's transformer, every module and tensor of
    its condition encoder (the default model's scene encoder, detail and periphery stages; a
    FLUX pipeline's text encoders) and the codec's VAE."""
    import torch

    digest = hashlib.sha256()
    for prefix, tensors in _named_tensors(generator):
        for name, tensor in sorted(tensors.items()):
            t = tensor.detach()
            digest.update(f"{prefix}.{name}|{str(t.dtype)}|{tuple(t.shape)}|".encode())
            flat = t.reshape(-1).contiguous()
            if flat.device.type != "cpu":
                flat = flat.cpu()
            digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _named_tensors(generator):
    """(prefix, name -> tensor) of each part of ``generator`` that holds weights."""
    import torch

    d = generator.denoiser
    module = getattr(d, "transformer", d)
    if isinstance(module, torch.nn.Module):
        yield "transformer", module.state_dict()
    encoder = generator.encoder
    own = {k: v for k, v in vars(encoder).items() if isinstance(v, torch.Tensor)}
    if own:
        yield "encoder", own
    for name, part in sorted(vars(encoder).items()):  # the default model's stages
        if isinstance(part, torch.nn.Module):
            yield f"encoder.{name}", part.state_dict()
    pipe = getattr(encoder, "pipe", None)
    for name in ("text_encoder", "text_encoder_2"):
        part = getattr(pipe, name, None) if pipe is not None else None
        if isinstance(part, torch.nn.Module):
            yield f"encoder.{name}", part.state_dict()
    vae = getattr(generator.codec, "vae", None)
    if isinstance(vae, torch.nn.Module):
        yield "vae", vae.state_dict()
