"""``fovea bench quality``'s records -> its summary: medians, the JOD 9.5 crossing, the targets.

The targets (issue "natural images out of the box") are judged on the shipped model
(``default-foveated``) and on medians over scenes x seeds (x gazes for JOD):

- ``no_seams_full`` / ``no_seams_foveated``: seam ratio <= 1.10 (full-resolution generations;
  foveated generations at every acuity strength);
- ``real_detail``: generated / original luma power in [0.5, 2] in every octave above the scene's
  Nyquist frequency (full-resolution generations; bicubic upsampling reported beside);
- ``faithful_to_scene``: full-resolution generation area-downsampled to the scene >= 30 dB;
- ``jod_s0.5`` >= 9.5 and ``jod_s1`` >= 9.0 (foveated vs full-resolution, FovVideoVDP);
- ``beats_naive``: post-trained median JOD above the naive baseline's at every strength.
"""

from __future__ import annotations

import math
import statistics

SEAM_MAX = 1.10
POWER_RANGE = (0.5, 2.0)
SCENE_PSNR_MIN_DB = 30.0
JOD_TARGETS = {0.5: 9.5, 1.0: 9.0}
JOD_CROSSING = 9.5
SHIPPED = "default-foveated"
NAIVE = "default-naive"


def _median(values) -> float | None:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(values) if values else None


def _band_medians(dicts: list[dict | None]) -> dict[str, float | None] | None:
    dicts = [d for d in dicts if d]
    if not dicts:
        return None
    return {band: _median(d.get(band) for d in dicts) for band in dicts[0]}


def _detail_stats(rows: list[dict], *, suffix: str = "") -> dict:
    """Median (and worst) seam ratio, scene PSNR and octave power ratio of ``rows``' fields
    ``seam_ratio{suffix}`` etc."""
    seams = [r.get(f"seam_ratio{suffix}") for r in rows]
    psnrs = [r.get(f"scene_psnr_db{suffix}") for r in rows]
    seams_ok = [s for s in seams if s is not None]
    psnrs_ok = [p for p in psnrs if p is not None]
    return {
        "seam_ratio_median": _median(seams),
        "seam_ratio_max": max(seams_ok) if seams_ok else None,
        "scene_psnr_db_median": _median(psnrs),
        "scene_psnr_db_min": min(psnrs_ok) if psnrs_ok else None,
        "octave_power_ratio_median": _band_medians(
            [r.get(f"octave_power_ratio{suffix}") for r in rows]
        ),
    }


def _crossing(points: list[tuple[float, float, float]]) -> dict | None:
    """Where a (strength, median JOD, token ratio) curve first falls below 9.5."""
    pts = sorted(points)
    for (s0, j0, r0), (s1, j1, r1) in zip(pts, pts[1:], strict=False):
        if j0 >= JOD_CROSSING > j1:
            f = (j0 - JOD_CROSSING) / (j0 - j1)
            return {"strength": s0 + f * (s1 - s0), "token_ratio": r0 + f * (r1 - r0)}
    if not pts:
        return None
    if pts[-1][1] >= JOD_CROSSING:
        return {"strength": f">{pts[-1][0]}", "token_ratio": f"<{pts[-1][2]:.3f}"}
    return {"strength": f"<{pts[0][0]}", "token_ratio": None}


def medians_table(records: list[dict]) -> dict[str, dict[str, dict]]:
    """Per variant and strength (``"None"`` for circle layouts): median JOD, foveal PSNR/SSIM,
    token ratio and, for generations, the foveated outputs' seam ratio, scene PSNR and octave
    power ratio."""
    table: dict[str, dict[str, dict]] = {}
    for variant in sorted({r["model_variant"] for r in records}):
        rows = [r for r in records if r["model_variant"] == variant]
        keys = sorted({r["strength"] for r in rows}, key=lambda s: -1 if s is None else s)
        table[variant] = {}
        for s in keys:
            sel = [r for r in rows if r["strength"] == s]
            row = {
                "jod_median": statistics.median(r["jod"] for r in sel),
                "fovea_psnr_db_median": statistics.median(r["fovea_psnr_db"] for r in sel),
                "fovea_ssim_median": statistics.median(r["fovea_ssim"] for r in sel),
                "token_ratio_median": statistics.median(r["token_ratio"] for r in sel),
                "n": len(sel),
            }
            if any("seam_ratio_foveated" in r for r in sel):
                row.update(_detail_stats(sel, suffix="_foveated"))
            table[variant][str(s)] = row
    return table


def full_resolution_table(rows: list[dict]) -> dict[str, dict]:
    """Per ``model_variant`` of the full-resolution rows (generations, ``original``,
    ``bicubic``): detail statistics over all scenes and over the scenes whose original was not
    upsampled from a smaller photograph (``native``)."""
    out = {}
    for variant in dict.fromkeys(r["model_variant"] for r in rows):
        sel = [r for r in rows if r["model_variant"] == variant]
        native = [r for r in sel if not r["original_upsampled"]]
        stats = _detail_stats(sel)
        stats["n"] = len(sel)
        stats["octave_power_ratio_median_native"] = _band_medians(
            [r["octave_power_ratio"] for r in native]
        )
        stats["n_native"] = len(native)
        out[variant] = stats
    return out


def _target(description: str, measured, passed: bool | None, **extra) -> dict:
    return {"target": description, "measured": measured, "pass": passed, **extra}


def targets(summary: dict, *, strengths: list[float]) -> dict:
    """Pass / fail per target with the measured values (``pass`` None: not measured)."""
    full = summary["full_resolution"].get(SHIPPED, {})
    bicubic = summary["full_resolution"].get("bicubic", {})
    med = summary["medians"].get(SHIPPED, {})
    out = {}
    seam = full.get("seam_ratio_median")
    out["no_seams_full"] = _target(
        f"median seam ratio <= {SEAM_MAX} (full-resolution generations)",
        seam,
        None if seam is None else seam <= SEAM_MAX,
        worst=full.get("seam_ratio_max"),
        original=summary["full_resolution"].get("original", {}).get("seam_ratio_median"),
        bicubic=bicubic.get("seam_ratio_median"),
    )
    fov_seams = {
        s: med[str(float(s))].get("seam_ratio_median") for s in strengths if str(float(s)) in med
    }
    known = [v for v in fov_seams.values() if v is not None]
    out["no_seams_foveated"] = _target(
        f"median seam ratio <= {SEAM_MAX} at every strength (foveated generations)",
        {str(s): v for s, v in fov_seams.items()},
        all(v <= SEAM_MAX for v in known) if known else None,
    )
    power = full.get("octave_power_ratio_median")
    out["real_detail"] = _target(
        f"median generated/original luma power in [{POWER_RANGE[0]}, {POWER_RANGE[1]}] in every "
        "octave above the scene's Nyquist (full-resolution generations)",
        power,
        None
        if not power or any(v is None for v in power.values())
        else all(POWER_RANGE[0] <= v <= POWER_RANGE[1] for v in power.values()),
        bicubic=bicubic.get("octave_power_ratio_median"),
        native_scenes_only=full.get("octave_power_ratio_median_native"),
    )
    psnr = full.get("scene_psnr_db_median")
    out["faithful_to_scene"] = _target(
        f"median scene PSNR >= {SCENE_PSNR_MIN_DB} dB (full-resolution generation "
        "area-downsampled to the scene)",
        psnr,
        None if psnr is None else psnr >= SCENE_PSNR_MIN_DB,
        worst=full.get("scene_psnr_db_min"),
        bicubic=bicubic.get("scene_psnr_db_median"),
    )
    for s, floor in JOD_TARGETS.items():
        row = med.get(str(float(s)))
        jod = row["jod_median"] if row else None
        out[f"jod_s{s:g}"] = _target(
            f"median JOD >= {floor} at s = {s:g} (post-trained, foveated vs full resolution)",
            jod,
            None if jod is None else jod >= floor,
        )
    beats = summary["post_training_beats_naive"]
    out["beats_naive"] = _target(
        "post-trained median JOD above the naive baseline's at every strength",
        beats,
        all(beats.values()) if beats else None,
    )
    verdicts = [t["pass"] for t in out.values()]
    out["all_pass"] = all(v is True for v in verdicts)
    return out


def summarize(
    records: list[dict], full_rows: list[dict], *, resolution: int, seeds, strengths
) -> dict:
    """The summary: ``medians`` (variant x strength), ``full_resolution`` (detail of the
    full-resolution generations and the references), JOD 9.5 crossings, post-trained vs naive
    and ``targets``."""
    table = medians_table(records)
    crossings = {
        variant: _crossing(
            [
                (float(s), v["jod_median"], v["token_ratio_median"])
                for s, v in rows.items()
                if s != "None"
            ]
        )
        for variant, rows in table.items()
        if variant in (SHIPPED, NAIVE, "oracle", "ceiling")
    }
    post, naive = table.get(SHIPPED, {}), table.get(NAIVE, {})
    beats = {s: post[s]["jod_median"] > naive[s]["jod_median"] for s in post if s in naive}
    summary = {
        "medians": table,
        "full_resolution": full_resolution_table(full_rows),
        "jod_9_5_crossing": crossings.get(SHIPPED),
        "jod_9_5_crossing_by_variant": crossings,
        "post_training_beats_naive": beats,
        "resolution": resolution,
        "seeds": list(seeds),
    }
    summary["targets"] = targets(summary, strengths=strengths)
    return summary
