"""Loss-curve figures: the training loop's running plot and the export's per-part curves."""

from __future__ import annotations

from pathlib import Path

#: What a run's total loss (``losses.json``'s ``total``, ``loss.png``) is, per stage.
TOTAL_LOSS = {
    "base": "loss (velocity + refiner)",
    "foveated": "loss (velocity + refiner)",
    "detail": "loss (detail velocity)",
    "periphery": "loss (regression + seam penalty)",
}


def plot_losses(losses: list[float], path: Path, *, title: str, stage: str) -> None:
    """Write :func:`loss_figure` to ``path`` (nothing when there are no losses)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not losses:
        return
    fig = loss_figure(losses, title=title, stage=stage)
    fig.savefig(path)
    plt.close(fig)


def loss_figure(losses: list[float], *, title: str, stage: str):
    """Raw per-step loss (faint) and a running mean over 2% of the run (log y), the y axis
    naming what ``stage``'s total loss is; a run of under 100 steps has no running mean (it
    would be the raw curve again)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    y = np.asarray(losses, dtype=float)
    k = max(1, len(y) // 50)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    if k == 1:
        ax.plot(np.arange(len(y)), y, lw=1.5, label="per step")
    else:
        smooth = np.convolve(y, np.ones(k) / k, mode="valid")
        ax.plot(np.arange(len(y)), y, alpha=0.25, lw=0.8, label="per step")
        ax.plot(np.arange(k - 1, len(y)), smooth, lw=1.5, label=f"mean of {k}")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no step 0.25 on a short run
    ax.set_xlabel("step")
    ax.set_ylabel(TOTAL_LOSS[stage])
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_loss_parts(
    total: list[float], parts: list[list[float]], path: Path, *, title: str, stage: str
) -> None:
    """Write :func:`loss_parts_figure` to ``path`` (nothing when there are no losses)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not total:
        return
    fig = loss_parts_figure(total, parts, title=title, stage=stage)
    fig.savefig(path)
    plt.close(fig)


def loss_parts_figure(total: list[float], parts: list[list[float]], *, title: str, stage: str):
    """Running means of the total, velocity and refiner losses per step (log y); a conv stage
    (detail, periphery) has one loss, its total, drawn once under its own name.

    Args:
        total: the training loss per step.
        parts: per step [velocity loss, refiner loss] (``losses.json``'s ``parts``; for the
            conv stages [their loss, 0]).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from generator.training.config import CONV_STAGES

    curves = {"total": np.asarray(total, dtype=float)}
    if stage in CONV_STAGES:
        curves = {TOTAL_LOSS[stage]: curves["total"]}
    elif parts:
        p = np.asarray(parts, dtype=float).reshape(len(parts), -1)
        curves["velocity"] = p[:, 0]
        if p.shape[1] > 1 and np.any(p[:, 1] > 0):
            curves["refiner"] = p[:, 1]
    k = max(1, len(total) // 50)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for name, y in curves.items():
        smooth = np.convolve(y, np.ones(k) / k, mode="valid")
        ax.plot(np.arange(k - 1, len(y)), smooth, lw=1.5, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(f"loss (mean of {k} steps)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig
