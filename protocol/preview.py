"""``fovea check PROTOCOL --preview FILE``: a picture of what a protocol shows, before any model
loads: where the image and each condition's fixation target sit on the screen (to scale, in
degrees), and each condition's token layout at its lowest, middle and highest levels, drawn over
one of its scenes (the layout a trial gets when the gaze is on the target)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from protocol.models import PRESET_TOKEN_PX

#: The file types ``write_preview`` writes (matplotlib picks the format by the extension).
PREVIEW_FORMATS = (".png", ".pdf", ".svg")
#: Most level columns per condition (a longer ``levels`` list is thinned, ends kept).
MAX_LEVEL_COLUMNS = 4


def preview_levels(condition, procedure) -> list[float]:
    """The levels to draw for ``condition``: its ``levels`` (at most ``MAX_LEVEL_COLUMNS``, ends
    kept), else ``level_min``, where its staircases start (``protocol.levels.start_level``; the
    range's middle for other procedures) and ``level_max``."""
    from protocol.levels import start_level

    if condition.levels:
        levels = sorted(float(v) for v in condition.levels)
        if len(levels) > MAX_LEVEL_COLUMNS:
            picks = np.linspace(0, len(levels) - 1, MAX_LEVEL_COLUMNS).round().astype(int)
            levels = [levels[i] for i in picks]
        return levels
    low, high = float(condition.level_min), float(condition.level_max)
    return sorted({low, start_level(condition, procedure), high})


def write_preview(loaded, *, scenes: str, out: str | Path) -> Path:
    """Draw the preview of ``loaded`` (``protocol.LoadedProtocol``) to ``out``.

    Args:
        loaded: the protocol.
        scenes: its scene-source spec (``protocol.scenes.scenes_spec``): the backdrop is the
            first scene of it (mid-grey when none can be read).
        out: the file to write, one of ``PREVIEW_FORMATS`` (its folder is made).
    """
    from matplotlib.figure import Figure  # the object API: no pyplot state, no display needed

    from generator.draw import draw_layout
    from protocol.geometry import stimulus_geometry
    from protocol.levels import condition_layout, protocol_token_rules

    protocol = loaded.protocol
    geometry = stimulus_geometry(protocol)
    rules = protocol_token_rules(protocol)
    backdrop, backdrop_name = _backdrop(scenes, geometry)
    columns = max(3, *(len(preview_levels(c, protocol.procedure)) for c in protocol.conditions))
    rows = 1 + len(protocol.conditions)
    panel_in = 3.2
    title_in = 0.6
    height_in = panel_in * (rows - 1) + 3.4 + title_in
    fig = Figure(figsize=(panel_in * columns, height_in))
    grid = fig.add_gridspec(rows, columns, height_ratios=[3.4 / panel_in] + [1.0] * (rows - 1))
    _draw_screen(fig.add_subplot(grid[0, :]), protocol, geometry, backdrop=backdrop)
    for row, condition in enumerate(protocol.conditions, start=1):
        for col, level in enumerate(preview_levels(condition, protocol.procedure)):
            ax = fig.add_subplot(grid[row, col])
            layout = condition_layout(
                condition, level, geometry, token_px=PRESET_TOKEN_PX, token_rules=rules
            )
            # No legend in the picture: shrunk to a panel it cannot be read; the title says it.
            ax.imshow(np.asarray(draw_layout(layout, image=backdrop, legend=False)))
            ax.set_title(
                f"{condition.name}\n{condition.level_variable} {level:.3g}: "
                f"{layout.num_tokens}/{layout.num_tokens_full} tokens ({layout.token_ratio:.3f})",
                fontsize=9,
            )
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(
        f"{protocol.name} ({loaded.path.name}): token layouts with the gaze on each fixation "
        f"target\n{PRESET_TOKEN_PX} px tokens; backdrop: {backdrop_name.split('#')[0]}",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0, 1, 1 - title_in / height_in))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out


def _backdrop(scenes: str, geometry) -> tuple[np.ndarray | None, str]:
    """The first scene of ``scenes`` at the image size, and its name; (None, why) when none can
    be read (the layouts are drawn over mid-grey then)."""
    from generator.errors import FoveaError
    from generator.scene_sources import scene_source

    try:
        scene = scene_source(scenes).scene(
            seed=0,
            width_px=geometry.image_width_px,
            height_px=geometry.image_height_px,
            factor=1,
        )
    except FoveaError as error:
        return None, f"mid-grey ({error})"
    pixels = scene.original if scene.original is not None else scene.pixels
    return np.ascontiguousarray(pixels), scene.source


def _shared(protocol, fx: float, fy: float) -> int:
    """How many conditions have their fixation target at (fx, fy)."""
    return sum(tuple(c.fixation_deg) == (fx, fy) for c in protocol.conditions)


def _draw_screen(ax, protocol, geometry, *, backdrop: np.ndarray | None) -> None:
    """The screen to scale in degrees from its centre: the image (``backdrop``, or its outline)
    and each condition's fixation target."""
    display = geometry.display
    corners = [(0, 0), (display.width_px, display.height_px)]
    (x0, y0), (x1, y1) = (display.screen_px_to_deg(*c) for c in corners)
    ax.add_patch(_rectangle(x0, y0, x1, y1, facecolor="0.15", edgecolor="black"))
    w, h = geometry.image_width_px, geometry.image_height_px
    (ix0, iy0), (ix1, iy1) = (geometry.image_px_to_deg(*c) for c in [(0, 0), (w, h)])
    ax.add_patch(_rectangle(ix0, iy0, ix1, iy1, facecolor="0.55", edgecolor="white"))
    if backdrop is not None:
        extent = (min(ix0, ix1), max(ix0, ix1), min(iy0, iy1), max(iy0, iy1))
        ax.imshow(backdrop, extent=extent, origin="upper", zorder=1.5)
    ax.text(ix0, iy0, f" image {w}x{h} px", color="white", va="top", fontsize=8)
    markers = "o^sDvP*X"
    earlier: dict[tuple[float, float], int] = {}  # conditions already drawn at a fixation
    for i, condition in enumerate(protocol.conditions):
        fx, fy = condition.fixation_deg
        # Conditions sharing a fixation nest: each later marker smaller and drawn on top, so
        # every one stays visible.
        stacked = earlier.get((fx, fy), 0)
        earlier[(fx, fy)] = stacked + 1
        ax.plot(
            fx,
            fy,
            markers[i % len(markers)],
            markersize=max(9 + 6 * (_shared(protocol, fx, fy) - 1) - 6 * stacked, 5),
            markeredgecolor="black",
            label=f"{condition.name} ({fx:g}, {fy:g}) deg",
            zorder=3 + 0.1 * stacked,
        )
    ax.set_xlim(min(x0, x1), max(x0, x1))
    ax.set_ylim(min(y0, y1), max(y0, y1))
    ax.set_aspect("equal")
    ax.set_xlabel("degrees from the screen centre (x right)")
    ax.set_ylabel("degrees (y up)")
    d = protocol.display
    ax.set_title(
        f"screen {d.width_px}x{d.height_px} px, {d.width_cm:g}x{d.height_cm:g} cm at "
        f"{d.distance_cm:g} cm; fixation targets",
        fontsize=9,
    )
    legend = ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    for handle in legend.legend_handles:  # one size in the legend, whatever the nesting
        handle.set_markersize(9)


def _rectangle(x0, y0, x1, y1, **style):
    from matplotlib.patches import Rectangle

    left, bottom = min(x0, x1), min(y0, y1)
    return Rectangle((left, bottom), abs(x1 - x0), abs(y1 - y0), **style)
