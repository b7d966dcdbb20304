"""Pictures of token layouts: blocks coloured by level over an image, fixation marked."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from generator.layout import TokenLayout

# One colour per level (1x .. 16x), colour-blind safe (Okabe-Ito).
LEVEL_COLOURS = {
    1: (0, 114, 178),
    2: (0, 158, 115),
    4: (230, 159, 0),
    8: (213, 94, 0),
    16: (204, 121, 167),
}


def draw_layout(
    layout: TokenLayout,
    *,
    image: np.ndarray | None = None,
    alpha: float = 0.35,
    legend: bool = True,
) -> Image.Image:
    """Overlay the layout on ``image`` ((H, W, 3) uint8; mid-grey if None).

    Block interiors are tinted by level, outlines drawn, the gaze marked with a cross and (with
    ``legend``) a legend gives tokens per level and the ratio to the full grid.
    """
    p = layout.token_px
    h, w = layout.grid_h * p, layout.grid_w * p
    base = (
        Image.fromarray(image) if image is not None else Image.new("RGB", (w, h), (128, 128, 128))
    )
    base = base.convert("RGBA")
    tint = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(tint)
    for r, c, k in zip(layout.rows, layout.cols, layout.levels, strict=True):
        x0, y0, side = int(c) * p, int(r) * p, int(k) * p
        colour = LEVEL_COLOURS[int(k)]
        draw.rectangle(
            [x0, y0, x0 + side - 1, y0 + side - 1],
            fill=(*colour, int(255 * alpha)),
            outline=(*colour, 255),
        )
    out = Image.alpha_composite(base, tint)
    draw = ImageDraw.Draw(out)
    if layout.gaze_px is not None:
        gx, gy = layout.gaze_px
        arm = max(6, w // 64)
        for width, colour in ((5, (0, 0, 0, 255)), (2, (255, 255, 255, 255))):
            draw.line([gx - arm, gy, gx + arm, gy], fill=colour, width=width)
            draw.line([gx, gy - arm, gx, gy + arm], fill=colour, width=width)
    if legend:
        _legend(draw, layout, size_px=max(11, w // 48), width_px=w)
    return out.convert("RGB")


def _legend(draw: ImageDraw.ImageDraw, layout: TokenLayout, *, size_px: int, width_px: int) -> None:
    """Tokens per level and the ratio to the full grid, top left, in text ``size_px`` high
    (scaled with the image, so it stays legible where the picture is shown smaller), smaller
    where its widest line would run past the image's ``width_px`` (a 64 px image's lines were
    cut at the edge: 'total 196/25')."""
    from PIL import ImageFont

    lines = [f"{k}x: {n} tokens" for k, n in sorted(layout.level_counts().items())]
    lines.append(f"total {layout.num_tokens}/{layout.num_tokens_full} = {layout.token_ratio:.3f}")
    while True:
        font = ImageFont.load_default(size=size_px)
        pad = max(1, size_px // 4)
        widest = max(draw.textlength(line, font=font) for line in lines)
        if 3 * pad + widest < width_px or size_px <= 4:
            break
        size_px -= 1
    y = pad
    for line in lines:
        left, top, right, bottom = draw.textbbox((2 * pad, y), line, font=font)
        draw.rectangle([pad, top - pad // 2, right + pad, bottom + pad // 2], fill=(0, 0, 0, 160))
        draw.text((2 * pad, y), line, fill=(255, 255, 255, 255), font=font)
        y = bottom + pad


def mark_fixation(image: np.ndarray, gaze_px) -> Image.Image:
    """``image`` ((H, W, 3) uint8) with the fixation point ``gaze_px`` (x, y image pixels)
    marked: a red ring with crosshair arms, outlined in black so it shows on any content."""
    out = Image.fromarray(image).convert("RGB")
    draw = ImageDraw.Draw(out)
    gx, gy = gaze_px
    r = max(6, image.shape[1] // 40)
    for width, colour in ((5, (0, 0, 0)), (2, (255, 64, 64))):
        draw.ellipse([gx - r, gy - r, gx + r, gy + r], outline=colour, width=width)
        draw.line([gx - 2 * r, gy, gx - r, gy], fill=colour, width=width)
        draw.line([gx + r, gy, gx + 2 * r, gy], fill=colour, width=width)
        draw.line([gx, gy - 2 * r, gx, gy - r], fill=colour, width=width)
        draw.line([gx, gy + r, gx, gy + 2 * r], fill=colour, width=width)
    return out
