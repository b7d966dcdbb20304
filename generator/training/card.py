"""The default model's card (``MODEL_CARD.md``) from its export record (``default.json``).

The record (written by :mod:`generator.training.export`) holds the model config, the training
runs of each stage (``lineage``), the data summary, and optionally a ``fovea bench quality``
summary (``quality``) and the scene-conditioning comparison (``conditioning_comparison``). The
card says what the model is, what it was trained on, how long on what, its losses and the
measured figures. Summaries whose fields this module does not know are still shown: every
record found is printed in a table.
"""

from __future__ import annotations

import json

from generator.training.card_figures import (
    format_value,
    is_number,
    markdown_table,
    measured_section,
)
from generator.training.config import CONV_STAGES, STAGES
from generator.training.lineage import lineage


def model_card(record: dict, quality: dict | None = None) -> str:
    """The model card (markdown). ``quality``: a ``fovea bench quality`` summary that replaces
    the one in the record (``record["quality"]["summary"]``)."""
    from generator.evaluation.latent_report import card_lines
    from generator.models.default import ModelConfig

    cfg = ModelConfig.from_dict(record.get("config") or {})
    if quality is not None:
        record = dict(record, quality={"summary": quality})
    lines = [
        "# Default model: scene-conditioned pixel-space foveated detail transformer",
        "",
        "Embedded default of the foveated generation kit (`load_generator('default')`, "
        "no network). It generates the *detail* of a natural image from a low-resolution "
        f"**scene**: the image area-downsampled {cfg.scene_factor}x ({1024 // cfg.scene_factor} px "
        "for a 1024 px image). The scene carries the composition; everything the eye resolves "
        "in the fovea is generated on the gaze-dependent token layout. Without a scene the "
        "generator takes one from the held-out photo pool, picked by the seed.",
        "",
        "## Architecture",
        *_architecture(cfg, record),
        "",
        "## Data",
        *_data(record, cfg),
        "",
        "## Training",
        *_training(record),
        "",
        "## Scene conditioning: channels vs reference",
        *_conditioning(record.get("conditioning_comparison"), cfg.scene_conditioning),
    ]
    if record.get("notes"):
        lines += ["", "## Notes", *[f"- {note}" for note in record["notes"]]]
    lines += ["", "## Measured figures", *measured_section(record.get("quality"))]
    lines += card_lines()  # benchmarks/results/latent_vs_pixel.json (`fovea bench latent`), if any
    return "\n".join(lines) + "\n"


def _architecture(cfg, record: dict) -> list[str]:
    params = record.get("parameters")
    refiner_params = record.get("refiner_parameters")
    size = f", {params / 1e6:.2f} M parameters" if params else ""
    if params and refiner_params:
        size += f" ({refiner_params / 1e3:.1f} k of them in the refiner)"
    p, f = cfg.patch_px, cfg.scene_factor
    if cfg.scene_conditioning == "reference":
        conditioning = (
            "Scene conditioning `reference`: the bicubic-upsampled scene's tokens at level "
            f"{f} (one per {p * f} px block) join the joint attention as reference tokens, as "
            "FLUX.2 and Kontext take reference images; the noisy tokens carry no scene."
        )
    else:
        conditioning = (
            "Scene conditioning `channels`: each token's input is its noisy patch concatenated "
            "with the same patch of the bicubic-upsampled scene, packed on the same layout, so "
            "the token count stays that of the layout."
        )
    if cfg.refiner_channels:
        refiner = (
            f"Refiner: a residual 3x3 convolutional net ({cfg.refiner_channels} channels) over "
            "the unpacked image, given the upsampled scene and each pixel's phase inside its "
            "token; it removes token-border seams once, after sampling, at full resolution "
            "(identity at initialisation)."
        )
    else:
        refiner = "No refiner: the unpacked tokens are the image."
    return [
        f"- diffusers `FluxTransformer2DModel`, {cfg.double_blocks} double + {cfg.single_blocks} "
        f"single blocks, {cfg.heads} heads x {cfg.head_dim}{size}.",
        f"- Pixel space: a fine token is a {p} px RGB patch ({cfg.token_dim} values); a level-k "
        "token is the k-times downsampled patch of a k x k block (the foveated token layout).",
        f"- {conditioning}",
        "- Residual x-prediction (JiT, Li & He 2025): the network predicts the clean patch as the "
        "upsampled scene plus its output, whose layer starts at zero, so an untrained model "
        "returns the bicubic scene; "
        + (
            "sampled by re-noising each step's clean estimate with the seed's fresh noise "
            "(`renoise`, generator.sampler: Euler steps grew the start noise that the "
            "x-prediction passes through into speckled tokens), "
            if cfg.sampler == "renoise"
            else "converted to velocity for the Euler sampler, "
        )
        + f"{cfg.steps} steps (shift {cfg.shift:g}) by default.",
        f"- {refiner}",
        *_detail_architecture(record),
        *_periphery_architecture(record),
        "- Per-token rotary ids: (log2 level, row, col) of each block centre in fine-token units "
        f"(dims {', '.join(map(str, cfg.rope_axes))}).",
        "- Files: `default-base.safetensors` (fp16), `default-foveated-lora.safetensors` (fp16 "
        "LoRA from foveated post-training, merged at load; without it and the periphery stage: "
        "the naive baseline)"
        + (", `default-detail.safetensors` (fp16 detail stage)" if record.get("detail") else "")
        + (", `default-periphery.safetensors` (fp16)" if record.get("periphery") else "")
        + ".",
    ]


def _stage(record: dict, name: str) -> tuple[dict | None, str]:
    """A conv stage's config in the weights' record (None: no such stage) and its size as
    ", N k parameters" ("" when unknown)."""
    params = record.get(f"{name}_parameters")
    return record.get(f"{name}_config"), f", {params / 1e3:.0f} k parameters" if params else ""


def _detail_architecture(record: dict) -> list[str]:
    """The detail stage's line (none when the weights have no detail stage)."""
    d, size = _stage(record, "detail")
    if not d:
        return []
    phase = ", each pixel's phase in its token" if d.get("token_phase") else ""
    return [
        "- Detail stage (`generator.models.detail`): the transformer cannot pass the finest "
        "octave of a photograph through its 256-wide tokens, so a second, convolutional model "
        "samples it. After the transformer's steps and the refiner, over the pixels of the "
        "layout's fine (level-1) tokens, a conditional flow model samples the image's detail "
        f"given the transformer's image ({d.get('steps')} Euler steps, shift {d.get('shift'):g}, "
        "from the seed's own detail noise); coarse tokens get the periphery stage (below) or, "
        "without it, keep the transformer's image. A residual conv net at half resolution "
        f"({d.get('channels')} channels, {d.get('blocks')} blocks, FiLM of log t{size}) sees the "
        f"noisy detail, the image{phase}; it was trained alone, on photographs degraded as the "
        f"transformer degrades them (Gaussian blur {d['blur_px'][0]:g}-{d['blur_px'][1]:g} px, "
        "per-token offsets and ramps, speckled tokens), to give their detail back.",
    ]


def _periphery_architecture(record: dict) -> list[str]:
    """The periphery stage's line (none when the weights have none)."""
    p, size = _stage(record, "periphery")
    if not p:
        return []
    pairs = (record.get("periphery") or {}).get("pairs") or {}
    made = (
        f" ({pairs.get('count')} twins x {pairs.get('per_twin')} foveated images at "
        f"{pairs.get('resolution')} px, acuity strengths {pairs['strength_range'][0]:g}-"
        f"{pairs['strength_range'][1]:g}, random gaze)"
        if pairs.get("strength_range")
        else ""
    )
    return [
        "- Periphery stage (`generator.models.periphery`): the pixels of coarse (level >= 2) "
        "tokens get, in one pass, the detail that the full-resolution twin has there: a "
        f"residual conv net at 1/{p.get('factor')} resolution ({p.get('channels')} channels, "
        f"{p.get('blocks')} blocks{size}) and a small ({p.get('head_channels')} channels) "
        "full-resolution head see the seed's detail noise, the refined transformer image and "
        "each pixel's token level, and predict the twin. It "
        "was trained by regression on pairs the shipped pipeline made from training photographs"
        f"{made}, plus a penalty (weight {p.get('seam_weight', 0):g}) on steps at the "
        "transformer's token borders in its output (the twin has some; without it the net drew "
        "them into the periphery): foveated post-training of the detail stage, at a small part "
        "of its cost. The naive baseline has no periphery stage.",
    ]


def _data(record: dict, cfg) -> list[str]:
    data = record.get("data") or {}
    runs = [log for stage in STAGES for log in lineage(record.get(stage) or {})]
    configs = [log.get("config") or {} for log in runs]
    crops = sorted({px for c in configs for px in c.get("crop_px") or []})
    zoom = max((c.get("max_zoom_out") or 0 for c in configs), default=0)
    lines = []
    if data.get("images"):
        split = data.get("splits") or {}
        sources = ", ".join(f"{name} {n}" for name, n in (data.get("sources") or {}).items())
        lines.append(
            f"- Photographs: {data['images']} in `{data.get('path')}` ({split.get('train', 0)} "
            f"for training, {split.get('heldout', 0)} held out by a fixed hash of the image id); "
            f"from {sources}. Licences: {', '.join(data.get('licences') or ['n/a'])}."
        )
    else:
        path = data.get("path") or (configs[0].get("data") if configs else None)
        lines.append(
            f"- Photographs: `{path or 'n/a'}` (its manifest could not be read when this card was written)."
        )
    lines += [
        "- Sources: photographic wallpapers of Debian packages (`fovea data images` fetches them "
        "with apt-get; the manifest records package, version, file, licence and sha256) and "
        "scikit-image's bundled photographs.",
        "- Training pairs: random square crops of the training photographs"
        + (f" at {', '.join(map(str, crops))} px" if crops else "")
        + (f", each covering 1-{zoom:g}x its side of the source (zoom)" if zoom else "")
        + ", flipped half the time; the scene of a crop is its area mean over "
        f"{cfg.scene_factor} x {cfg.scene_factor} pixel blocks, quantised to 8 bits "
        "(`generator.scene`). The held-out photographs are never trained on; the benchmarks' "
        "and the demo's scenes come from them.",
    ]
    return lines


def _training(record: dict) -> list[str]:
    lines, commands = [], []
    total_steps, total_s = 0, 0.0
    for stage in STAGES:
        chain = lineage(record.get(stage) or {})
        if not chain and stage not in CONV_STAGES:
            lines.append(f"- {stage}: not run")
        for i, log in enumerate(chain):
            lines.append(_run_line(stage, log, continued=i > 0))
            if stage != "periphery":
                commands += _command(stage, log, index=i, base_dir=_last_run_dir(record, "base"))
            total_steps += log.get("steps") or 0
            total_s += log.get("train_seconds_total") or 0.0
    lines += [
        "",
        f"In all {total_steps} steps and {_duration(total_s)} of training (the loops' time; "
        "start-up and checkpoints add a little). Loss curves: `default-base-loss.png`"
        + (", `default-foveated-loss.png`" if record.get("foveated") else "")
        + " (total, velocity and refiner losses)"
        + (
            ", `default-detail-loss.png` (the detail flow's velocity loss)"
            if record.get("detail")
            else ""
        )
        + (
            ", `default-periphery-loss.png` (the periphery stage's regression loss and seam "
            "penalty)"
            if record.get("periphery")
            else ""
        )
        + ".",
        "",
        "Reproduce (one command per run above, oldest first; `accelerate launch -m "
        "generator.training.train STAGE ...` takes the same flags on GPUs; "
        "`OUT=dir bash generator/training/gpu_job.sh BUDGET_S` runs base, foveated and the "
        "export within one time budget):",
        "",
        "```",
        *commands,
        f"fovea train export --base {_last_run_dir(record, 'base')}"
        + (f" --foveated {_last_run_dir(record, 'foveated')}" if record.get("foveated") else "")
        + _base_export_flags(record)
        + (_detail_export_flags(record) if record.get("detail") else ""),
        *_periphery_commands(record),
        "```",
    ]
    return lines


def _periphery_commands(record: dict) -> list[str]:
    """The pairs (made with the weights exported above), the periphery run, its export."""
    chain = lineage(record.get("periphery") or {})
    if not chain:
        return []
    pairs = chain[0].get("pairs") or {}
    flags = "".join(
        f" --{flag} {pairs[key]}"
        for flag, key in (("count", "count"), ("per-twin", "per_twin"), ("seed", "seed"))
        if pairs.get(key) is not None
    )
    commands = [f"fovea train pairs --out runs/pairs{flags}"]
    for i, log in enumerate(chain):
        commands += _command("periphery", log, index=i, base_dir=_last_run_dir(record, "base"))
    return [*commands, f"fovea train export --periphery {_last_run_dir(record, 'periphery')}"]


def _base_export_flags(record: dict) -> str:
    """`` --sampler renoise --steps 6 --shift 0.5``: the default sampler settings the shipped base
    carries (the record's ``config``). A base trained from scratch has ``ModelConfig``'s defaults;
    only these flags give the export the settings chosen after training."""
    c = record.get("config") or {}
    flags = ""
    if c.get("sampler") is not None:
        flags += f" --sampler {c['sampler']}"
    if c.get("steps") is not None:
        flags += f" --steps {c['steps']}"
    if c.get("shift") is not None:
        flags += f" --shift {c['shift']:g}"
    return flags


def _detail_export_flags(record: dict) -> str:
    """`` --detail runs/detail`` and the detail sampler settings the shipped file carries."""
    d = record.get("detail_config") or {}
    flags = f" --detail {_last_run_dir(record, 'detail')}"
    if d.get("steps") is not None:
        flags += f" --detail-steps {d['steps']}"
    if d.get("shift") is not None:
        flags += f" --detail-shift {d['shift']:g}"
    return flags


def _run_line(stage: str, log: dict, *, continued: bool) -> str:
    c = log.get("config") or {}
    kind = c.get("stage", stage)
    text = (
        f"- {kind}{' (continued from the run above)' if continued else ''}: {log.get('steps')} "
        f"steps x batch {c.get('batch_size')} at crops {c.get('crop_px')} px, lr {c.get('lr')}, "
        f"{_duration(log.get('train_seconds_total') or 0.0)} on {log.get('device_name')} "
        f"x{log.get('num_processes')} ({_precision(log)}); loss {_loss(log.get('loss_first50'))}"
        f" -> {_loss(log.get('loss_last50'))}"
    )
    first, last = log.get("loss_parts_first50"), log.get("loss_parts_last50")
    if first and last and stage not in CONV_STAGES:
        text += (
            f" (velocity {_loss(first[0])} -> {_loss(last[0])}, refiner {_loss(first[1])} -> "
            f"{_loss(last[1])})"
        )
    if stage == "foveated":
        text += f"; LoRA rank {c.get('lora_rank')}, random acuity/circle/full layouts"
        if c.get("layout_mix"):
            text += " (" + ", ".join(f"{m} {w:g}" for m, w in c["layout_mix"].items()) + ")"
        if c.get("groups"):
            text += f", {c['groups']} per step"
    return text


def _run_dir(stage: str, index: int) -> str:
    """Where the reproduce block's ``index``-th run of ``stage`` writes (0: ``runs/STAGE``, then
    ``runs/STAGE-2``, ...): a continued run keeps the run it continues from."""
    return f"runs/{stage}" if index == 0 else f"runs/{stage}-{index + 1}"


def _last_run_dir(record: dict, stage: str) -> str:
    """The reproduce block's folder of ``stage``'s last run (the one exported)."""
    return _run_dir(stage, max(len(lineage(record.get(stage) or {})) - 1, 0))


def _command(stage: str, log: dict, *, index: int, base_dir: str) -> list[str]:
    """The ``fovea train`` command that repeats the ``index``-th run of ``stage`` (its step
    count, its settings). A continued run (``index`` > 0) started from the weights its
    predecessor exported: the export comes first, and the run writes to a folder of its own.
    ``base_dir``: the base run post-training starts from."""
    c = log.get("config") or {}
    if c.get("stage", stage) not in STAGES:
        return []  # a retired stage
    words = [f"fovea train {stage} --out {_run_dir(stage, index)}"]
    if stage == "periphery":
        words.append("--data runs/pairs")  # the folder the pairs command above writes
    elif c.get("data"):
        words.append(f"--data {c['data']}")
    if stage == "foveated":
        words.append(f"--init {base_dir}/model.safetensors")
        if c.get("init_lora"):
            words.append("--init-lora generator/models/weights/default-foveated-lora.safetensors")
    elif c.get("init"):
        shipped = f"default-{stage}" if stage in CONV_STAGES else "default-base"
        words.append(f"--init generator/models/weights/{shipped}.safetensors")
    if c.get("model") and not c.get("init"):
        words.append(f"--model-json '{json.dumps(c['model'], separators=(',', ':'))}'")
    words.append("--crop-px " + " ".join(str(px) for px in c.get("crop_px") or []))
    for flag, key in (
        ("--batch-size", "batch_size"),
        ("--groups", "groups"),
        ("--lr", "lr"),
        ("--warmup-steps", "warmup_steps"),
        ("--ema-decay", "ema_decay"),
        ("--lora-rank", "lora_rank"),
        ("--max-zoom-out", "max_zoom_out"),
        ("--t-mean", "t_mean"),
        ("--t-std", "t_std"),
        ("--seed", "seed"),
    ):
        if key == "max_zoom_out" and stage == "periphery":
            continue  # the pairs are whole images, not zoomed crops
        if key in ("t_mean", "t_std") and stage in CONV_STAGES:
            continue  # the transformer's time distribution; the conv stages draw their own
        if c.get(key) is not None and (stage == "foveated" or key not in ("groups", "lora_rank")):
            words.append(f"{flag} {c[key]:g}" if isinstance(c[key], float) else f"{flag} {c[key]}")
    if c.get("mixed_precision") not in (None, "auto", "no"):  # auto and no: float32
        words.append(f"--mixed-precision {c['mixed_precision']}")
    if c.get("layout_mix"):
        words.append("--layout-mix " + " ".join(f"{m}={w:g}" for m, w in c["layout_mix"].items()))
    words.append(f"--steps {log.get('steps')} --time-budget-s 1e9")
    if index == 0:
        return [" ".join(words)]
    previous = _run_dir(stage, index - 1)
    exported = {"foveated": f"--base {base_dir} --foveated {previous}"}.get(
        stage, f"--{stage} {previous}"
    )
    return [
        "# continued from the weights the run above exported:",
        f"fovea train export {exported}",
        " ".join(words),
    ]


def _conditioning(records: list[dict] | None, chosen: str) -> list[str]:
    if not records:
        return [
            f"This model uses `{chosen}`. Not yet compared here: `fovea train export "
            "--conditioning-comparison PATH` (a JSON list of records {variant, steps, wall_s, "
            "heldout_loss, step_s}) puts the measurement in this section."
        ]
    lines = [
        "The two ways of giving the model its scene, each trained for the steps and wall time "
        "shown and scored by its loss on held-out crops:",
        "",
        *markdown_table(
            [dict(r) for r in records],
            first=["variant", "steps", "wall_s", "step_s", "heldout_loss"],
        ),
        "",
    ]
    last = {str(r.get("variant")): r for r in records}
    mine = last.get(chosen)
    if mine is None:
        return [*lines, f"This model uses `{chosen}`, which is not among the variants compared."]
    reasons = []
    for name, other in last.items():
        if name == chosen:
            continue
        loss = _ratio_words(mine.get("heldout_loss"), other.get("heldout_loss"), "held-out loss")
        speed = _ratio_words(mine.get("step_s"), other.get("step_s"), "time per step")
        reasons.append(f"against `{name}`: {' and '.join(w for w in (loss, speed) if w)}")
    return [*lines, f"Chosen: `{chosen}` ({'; '.join(reasons) or 'the only variant measured'})."]


def _ratio_words(mine, other, what: str) -> str:
    """'12 % lower held-out loss (0.011 vs 0.0125)', from two positive numbers."""
    if not (is_number(mine) and is_number(other)) or other <= 0:
        return ""
    change = mine / other - 1
    word = "lower" if change < 0 else "higher"
    if abs(change) < 0.005:
        return f"the same {what} ({format_value(mine)} vs {format_value(other)})"
    return (
        f"{abs(change) * 100:.0f} % {word} {what} ({format_value(mine)} vs {format_value(other)})"
    )


def _duration(seconds: float) -> str:
    """'5666 s (94 min)'."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds:.0f} s ({seconds / 60:.0f} min)"


def _loss(value: float | None) -> str:
    """A mean training loss for the card (first or last 50 steps), 4 significant digits."""
    return "n/a" if value is None else f"{value:.4g}"


def _precision(log: dict) -> str:
    """accelerate's mixed-precision setting as the card says it (``no``: float32; TF32 matmuls
    where the log says training turned them on)."""
    mp = log.get("mixed_precision")
    if mp is None:
        return "precision n/a"
    if mp != "no":
        return f"{mp} mixed precision"
    return "fp32, TF32 matmuls" if log.get("tf32") else "fp32"
