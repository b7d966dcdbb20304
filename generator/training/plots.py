"""Loss-curve figures: the training loop's running plot and the export's per-part curves."""

from __future__ import annotations

from pathlib import Path


def plot_losses(losses: list[float], path: Path, *, title: str) -> None:
    """Raw per-step loss (faint) and a running mean over 2% of the run (log y)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    if not losses:
        return
    y = np.asarray(losses, dtype=float)
    k = max(1, len(y) // 50)
    smooth = np.convolve(y, np.ones(k) / k, mode="valid")
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(np.arange(len(y)), y, alpha=0.25, lw=0.8, label="per step")
    ax.plot(np.arange(k - 1, len(y)), smooth, lw=1.5, label=f"mean of {k}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("v-loss (MSE)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_loss_parts(
    total: list[float], parts: list[list[float]], path: Path, *, title: str
) -> None:
    """Running means of the total, velocity and refiner losses per step (log y).

    Args:
        total: the training loss per step.
        parts: per step [velocity loss, refiner loss] (``losses.json``'s ``parts``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    if not total:
        return
    curves = {"total": np.asarray(total, dtype=float)}
    if parts:
        p = np.asarray(parts, dtype=float).reshape(len(parts), -1)
        curves["velocity"] = p[:, 0]
        if p.shape[1] > 1 and np.any(p[:, 1] > 0):
            curves["refiner"] = p[:, 1]
    k = max(1, len(curves["total"]) // 50)
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
    fig.savefig(path)
    plt.close(fig)
