"""Numbers to words for ``fovea bench latent``: the verdict computed from a run's measurements and
the model card's section made from the saved JSON. Pure Python (no torch): the model card export
imports it."""

from __future__ import annotations

import json
from pathlib import Path

# Where the committed result lives; the model card (generator.training.export) reads it.
DEFAULT_PACK = str(Path(__file__).resolve().parents[1] / "data" / "photos-1024.npz")
KINDS = {"kl": "AutoencoderKL", "tiny": "AutoencoderTiny"}
RESULTS_JSON = (
    Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "latent_vs_pixel.json"
)


def train_command(config: dict) -> str:
    """The ``python -m generator.training.autoencoder`` command of a run, from its logged config."""
    words = ["python", "-m", "generator.training.autoencoder"]
    flat = {**config.get("ae", {}), **{k: v for k, v in config.items() if k != "ae"}}
    for key, value in flat.items():
        if key == "progress" or value is None or (key == "data" and value == DEFAULT_PACK):
            continue
        words += [f"--{key.replace('_', '-')}", str(value)]
    return " ".join(words)


def train_summary(path) -> dict:
    """Steps, time, settings and commands of the run(s) that wrote an autoencoder: its
    ``log.json`` and, for a continued run, the log of the run it started from."""
    if not path:
        return {"trained": False}
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    if not (folder / "log.json").is_file():
        return {"trained": True}
    log = json.loads((folder / "log.json").read_text())
    keys = ("steps", "steps_total", "train_seconds", "train_seconds_total", "torch_threads")
    keys += ("loss_first20", "loss_last20")
    cfg = log.get("config", {})
    commands = [train_command(cfg)]
    init_log = Path(cfg["init"]) / "log.json" if cfg.get("init") else None
    if init_log is not None and init_log.is_file():
        commands.insert(0, train_command(json.loads(init_log.read_text()).get("config", {})))
    return {
        "trained": True,
        **{k: log.get(k) for k in keys},
        **{k: cfg.get(k) for k in ("crop_px", "batch_size", "lr", "seed", "init")},
        "train_commands": commands,
    }


def verdict(speed: dict, recon: list[dict], max_fraction: float, *, steps: int) -> dict:
    """Pixel or latent, from the numbers: the latent space must decode within ``max_fraction`` of
    the budget at every size and be faster than pixels somewhere; its quality bound is the
    autoencoder's fidelity (pixel space: lossless), so an autoencoder that reconstructs the
    held-out photographs worse than plain resampling (an untrained or training-limited one) keeps
    pixel space, however fast it is. Two load-free ratios go beside: decode time
    over the pixel model's whole foveated generation (timed in the same minutes) and decoder
    FLOPs over the foveated sampling loop's (``steps`` transformer steps)."""
    decode_fraction, slower, within, parts = {}, [], {"pixel": {}, "latent": {}}, []
    decode_over_pixel, flop_ratio = {}, {}
    for row in speed["sizes"]:
        size, budget = row["resolution_px"], row["budget_s"]
        t0 = row["foveated"][0]
        decode_over_pixel[str(size)] = row["latent_decode_s"] / t0["pixel_s"]
        sampling_gflops = steps * t0["latent_step_gflops"]
        flop_ratio[str(size)] = row["latent_decoder"]["decode_gflops"] / sampling_gflops
        if budget:
            decode_fraction[size] = row["latent_decode_s"] / budget
            parts.append(
                f"{size} px: decoding alone {row['latent_decode_s']:.2f} s = "
                f"{decode_fraction[size]:.0%} of the {budget:g} s budget; foveated (s={t0['strength']}) "
                f"pixel {t0['pixel_s']:.2f} s vs latent {t0['latent_s']:.2f} s (decoding = "
                f"{decode_over_pixel[str(size)]:.1f}x the pixel model's whole generation; decoder "
                f"FLOPs = {flop_ratio[str(size)]:.1f}x the {steps}-step foveated sampling loop's)"
            )
        for t in row["foveated"]:
            slower.append(t["latent_s"] > t["pixel_s"])
            for name in within:
                if budget:
                    within[name][f"{size}px_s{t['strength']}"] = t[f"{name}_s"] <= budget
    too_slow = [s for s, f in decode_fraction.items() if f > max_fraction]
    best = max(recon, key=lambda r: r["crop_px"]) if recon else {}
    beats = None
    if best:
        beats = best["psnr_db_median"] > best["resample_baseline_psnr_db_median"]
        jod = f", JOD {best['jod_median']:.2f}" if best.get("jod_median") is not None else ""
        parts.append(
            f"held-out reconstruction at {best['crop_px']} px: PSNR {best['psnr_db_median']:.1f} dB, "
            f"SSIM {best['ssim_median']:.3f}{jod} (pixel space: lossless; plain resampling at "
            f"the same factor {best['resample_baseline_psnr_db_median']:.1f} dB"
            + ("" if beats else ": this autoencoder is training-limited")
            + ")"
        )
    return {
        "choice": "pixel" if too_slow or all(slower) or beats is False else "latent",
        "decode_fraction_of_budget": {str(s): f for s, f in decode_fraction.items()},
        "decode_exceeds_budget_fraction": {str(s): s in too_slow for s in decode_fraction},
        "max_decode_fraction": max_fraction,
        "latent_decode_over_pixel_foveated": decode_over_pixel,
        "decoder_over_foveated_sampling_flops": flop_ratio,
        "latent_slower_everywhere": all(slower),
        "ae_beats_resampling": beats,
        "within_budget": within,
        "reason": "; ".join(parts),
    }


def card_lines(path: Path = RESULTS_JSON) -> list[str]:
    """Markdown lines for the model card from a ``fovea bench latent`` JSON ([] if absent)."""
    if not Path(path).is_file():
        return []
    r = json.loads(Path(path).read_text())
    ae, p, v = r["autoencoder"], r["params"], r["verdict"]
    lines = [
        "",
        "## Pixel vs latent space (measured)",
        f"`{r.get('command', 'fovea bench latent')}` ({r['machine']['torch_threads']} torch threads, "
        f"load average {r['machine']['load_avg_1_5_15'][0]:.2f} at the start), against a diffusers "
        f"`{KINDS.get(ae['config']['kind'])}` {ae['architecture']} trained here for {ae.get('steps_total') or ae.get('steps')} steps "
        f"x {ae.get('batch_size')} crops of {ae.get('crop_px')} px "
        f"({(ae.get('train_seconds_total') or ae.get('train_seconds') or 0):.0f} s on this CPU: "
        + ", then ".join(f"`{c}`" for c in ae.get("train_commands", []))
        + "). "
        f"Same 16 px tokens and layouts, same transformer config ({r['steps']} steps; the latent "
        "one has random weights: timing only), foveated at the gaze centre; medians, wall clock.",
        "",
        "| side px | budget s | strength | pixel fov s | latent fov s | pixel decode s "
        "| latent decode s | decoder GFLOP | step GFLOP full / fov |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in r["sizes"]:
        for t in row["foveated"]:
            lines.append(
                f"| {row['resolution_px']} | {row['budget_s'] or '-'} | {t['strength']} "
                f"| {t['pixel_s']:.2f} | {t['latent_s']:.2f} | {row['pixel_decode_s']:.3f} "
                f"| {row['latent_decode_s']:.2f} | {row['latent_decoder']['decode_gflops']:.0f} "
                f"| {row['pixel_step_gflops_full']:.0f} / {t['pixel_step_gflops']:.1f} |"
            )
    refs = [
        f"{name} {d['decode_s']:.2f} s" for name, d in r["sizes"][-1]["reference_decoders"].items()
    ]
    if refs:
        lines.append("")
        lines.append(
            f"Untrained reference decoders at {r['sizes'][-1]['resolution_px']} px: {', '.join(refs)}."
        )
    for rec in r["reconstruction"]:
        jod = f", JOD {rec['jod_median']:.2f}" if rec.get("jod_median") is not None else ""
        lines.append(
            f"- AE reconstruction, {rec['images']} held-out photos, {rec['crop_px']} px centre crops: "
            f"median PSNR {rec['psnr_db_median']:.1f} dB, SSIM {rec['ssim_median']:.3f}{jod} "
            f"(pixel space: lossless; area-down/bilinear-up at the same factor: "
            f"{rec['resample_baseline_psnr_db_median']:.1f} dB, SSIM {rec['resample_baseline_ssim_median']:.3f})."
        )
    lines.append(
        f"- Parameters: pixel transformer {p['pixel_transformer'] / 1e6:.2f} M, latent transformer "
        f"{p['latent_transformer'] / 1e6:.2f} M, AE decoder {p['ae_decoder'] / 1e6:.2f} M."
    )
    lines.append(f"- Verdict: **{v['choice']}** space; {v['reason']}.")
    return lines
