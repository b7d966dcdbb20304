"""The training objective and the weights' moving average.

Objective (JiT, "Back to Basics", 2025): the network predicts the clean tokens ``x``; the loss is
the velocity MSE with ``v_hat = (z_t - x_hat) / max(t, t_min)``, ``z_t = (1 - t) x + t noise``,
``t`` logit-normal, plus the refiner's image loss (:func:`training_loss`).
"""

from __future__ import annotations

from generator.training.config import TrainConfig


def sample_times(n: int, *, generator, mean: float, std: float, device):
    """Logit-normal t in (0, 1), 1 = noise (JiT's P_mean = -0.8 in its t=1-is-clean convention)."""
    import torch

    z = torch.randn(n, generator=generator, device=generator.device)
    return torch.sigmoid(mean + std * z).to(device)


def training_loss(model, x, layout, *, generator, cfg: TrainConfig, noise=None):
    """JiT v-loss of one micro-batch on one layout, plus the refiner's image loss.

    Args:
        model: DefaultModel (possibly wrapped by accelerate).
        x: (B, 3, H, W) clean crops in [-1, 1]; their scenes are made here.
        layout: token layout of an H x W image.
        noise: (B, 3, H, W) noise coupled to ``x``; None draws fresh noise.

    Returns:
        (total loss, velocity loss, refiner loss) as tensors.
    """
    import torch

    from generator.denoiser import layout_ids
    from generator.models.default import scene_inputs
    from generator.scene import downsample_to_scene
    from generator.tokens import pack, unpack

    net = model.module if hasattr(model, "module") else model
    mcfg = net.config_
    p = mcfg.patch_px
    device = x.device
    # Noise from a generator on x's device: drawing 50 M normals per step on the CPU would
    # dominate a GPU step.
    if noise is None:
        noise = torch.randn(x.shape, generator=generator, device=generator.device).to(device)
    scene = scene_inputs(downsample_to_scene(x, mcfg.scene_factor), layout, mcfg)
    x_tok = pack(x, layout, p=p)
    n_tok = pack(noise, layout, p=p, noise=True)
    t = sample_times(x.shape[0], generator=generator, mean=cfg.t_mean, std=cfg.t_std, device=device)
    tb = t[:, None, None]
    z = (1 - tb) * x_tok + tb * n_tok
    img_ids = torch.as_tensor(layout_ids(layout), dtype=torch.float32, device=device)
    ref_ids = None if scene.reference_ids is None else scene.reference_ids.to(device)
    x_hat = model(
        z,
        scene_tokens=scene.scene_tokens,
        img_ids=img_ids,
        t=t,
        reference=scene.reference,
        reference_ids=ref_ids,
    ).float()
    denom = tb.clamp_min(cfg.t_min)
    v_hat = (z - x_hat) / denom
    v = (z - x_tok) / denom  # = noise - x where t >= t_min (the same clamp keeps targets finite)
    v_loss = torch.mean((v_hat - v) ** 2)
    if net.refiner is None:
        return v_loss, v_loss.detach(), torch.zeros((), device=device)
    # The refiner sees the unpacked prediction and learns the layout's own target (the clean
    # image where tokens are fine, its unpacked coarse tokens elsewhere), weighted to low t,
    # where the sampler's last step hands it its input.
    image_hat = unpack(x_hat, layout, p=p)
    target = unpack(x_tok, layout, p=p)
    refined = net.refine(image_hat, scene.scene_up)
    weight = (1 - t)[:, None, None, None] ** 2
    r_loss = torch.mean(weight * (refined - target) ** 2) * cfg.refiner_weight
    return v_loss + r_loss, v_loss.detach(), r_loss.detach()


class Ema:
    """Exponential moving average of a set of parameters (with a 1/(step+10) warm-up)."""

    def __init__(self, params, decay: float):
        self.params = list(params)
        self.shadow = [p.detach().clone().float() for p in self.params]
        self.decay = decay

    def update(self, step: int) -> None:
        import torch

        d = min(self.decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for s, p in zip(self.shadow, self.params, strict=True):
                s.mul_(d).add_(p.detach().float(), alpha=1 - d)

    def swap(self) -> None:
        """Exchange live and EMA values (call twice to restore)."""
        import torch

        with torch.no_grad():
            for s, p in zip(self.shadow, self.params, strict=True):
                tmp = p.detach().clone()
                p.copy_(s.to(p.dtype))
                s.copy_(tmp.float())
