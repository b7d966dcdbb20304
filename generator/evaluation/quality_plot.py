"""The quality benchmark as a figure: median JOD and foveal PSNR against the token ratio, one curve
per variant (acuity strengths), circle layouts as points, the JOD 9.5 target as a line.

    python -m generator.evaluation.quality_plot SUMMARY.json [more *_summary.json] --out PNG

draws from ``fovea bench quality``'s ``*_summary.json`` files (several: their variants together,
e.g. a run and its ``--ceiling`` run; where two have the same variant and strength, the first
wins); the benchmark draws it itself into its sheets folder."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

JOD_TARGET = 9.5
_STYLE = {
    "default-foveated": ("post-trained (foveated LoRA, periphery stage)", "C0", "o"),
    "default-naive": ("naive (base on mixed tokens)", "C3", "s"),
    "ceiling": ("ceiling of this base", "C2", "^"),
    "oracle": ("oracle (reference reduced)", "0.5", "v"),
    "lora": ("foveated LoRA", "C0", "o"),  # fovea bench lora (release token rules)
    "base": ("base, no LoRA", "C3", "s"),
}
_ANNOTATED = ("default-foveated", "lora")  # curves whose points get their strength written


def merge_medians(summaries: list[dict]) -> dict[str, dict]:
    """The summaries' ``medians`` tables together; the first that has a variant's strength wins."""
    medians: dict[str, dict] = {}
    for summary in summaries:
        for variant, rows in summary["medians"].items():
            for strength, row in rows.items():
                medians.setdefault(variant, {}).setdefault(strength, row)
    return medians


def _finite(value: float | None) -> float:
    """A PSNR to draw: identical pixels (inf in memory, null in JSON) leave a gap."""
    return value if value is not None and math.isfinite(value) else float("nan")


def plot_quality(summaries: list[dict], path: Path) -> str:
    """Write the two-panel figure to ``path``; returns the path as a string."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    medians = merge_medians(summaries)
    resolution = summaries[0].get("resolution")
    fig, (ax_jod, ax_psnr) = plt.subplots(1, 2, figsize=(10, 4.8), dpi=100)
    for variant, rows in sorted(medians.items()):
        base = variant.split("-circle")[0]
        label, color, marker = _STYLE.get(base, (variant, "k", "x"))
        curve = sorted(
            (float(s), r["token_ratio_median"], r["jod_median"], r["fovea_psnr_db_median"])
            for s, r in rows.items()
            if s != "None"
        )
        points = [
            (r["token_ratio_median"], r["jod_median"], r["fovea_psnr_db_median"])
            for s, r in rows.items()
            if s == "None"
        ]
        if curve:
            ratios = [c[1] for c in curve]
            ax_jod.plot(ratios, [c[2] for c in curve], marker=marker, color=color, label=label)
            ax_psnr.plot(ratios, [_finite(c[3]) for c in curve], marker=marker, color=color)
            if base in _ANNOTATED:
                for s, ratio, jod, _ in curve:
                    ax_jod.annotate(
                        f"s={s:g}", (ratio, jod), textcoords="offset points", xytext=(4, 4)
                    )
        for ratio, jod, psnr in points:
            layout = variant.split("-circle-")[-1]  # p2, p4: periphery factor
            name = f"{label}, circle layout {layout}"
            star = "*" if layout == "p2" else "P"
            ax_jod.plot([ratio], [jod], marker=star, markersize=10, color=color, ls="", label=name)
            ax_psnr.plot([ratio], [_finite(psnr)], marker=star, markersize=10, color=color, ls="")
    ax_jod.axhline(JOD_TARGET, color="k", ls="--", lw=1, label=f"JOD {JOD_TARGET} target")
    ax_jod.set_ylabel("median JOD vs full resolution (10 = identical)")
    ax_psnr.set_ylabel("median foveal PSNR (dB)")
    from matplotlib.ticker import FuncFormatter, NullFormatter

    for ax in (ax_jod, ax_psnr):
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks([0.02, 0.05, 0.1, 0.2, 0.5, 1.0])
        ax.set_xlabel("token ratio (foveated / full-resolution tokens)")
        ax.grid(True, which="both", alpha=0.3)
    fig.legend(*ax_jod.get_legend_handles_labels(), fontsize=8, loc="lower center", ncol=4)
    scenes, prompts = summaries[0].get("scenes"), summaries[0].get("prompts")
    scenes_text = f"{len(scenes)} held-out scenes x " if isinstance(scenes, list) else ""
    if isinstance(prompts, list):
        scenes_text += f"{len(prompts)} prompt{'' if len(prompts) == 1 else 's'} x "
    title = summaries[0].get("title", "fovea bench quality")
    fig.suptitle(f"{title}, {resolution} px, {scenes_text}seeds {summaries[0].get('seeds')}")
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m generator.evaluation.quality_plot")
    parser.add_argument("summaries", nargs="+", help="fovea bench quality *_summary.json files")
    parser.add_argument("--out", required=True, help="PNG to write")
    args = parser.parse_args(argv)
    try:
        summaries = [json.loads(Path(p).read_text()) for p in args.summaries]
    except (OSError, ValueError) as error:
        print(f"error: cannot read a summary: {error}", file=sys.stderr)
        return 2
    print(plot_quality(summaries, Path(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
