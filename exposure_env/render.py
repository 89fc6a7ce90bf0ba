"""Step strips: every intermediate image of an episode side by side, the edit named under each.

This is the white box made visible (SPEC §8): ``step_strip(frames, labels)`` returns a uint8
RGB array and writes a PNG when given a path. Images are linear RGB shown as they would be
written: clipped to [0, 1] with no gamma (the agent's own Gamma / curves are the display
transform, so the input frame of a linear photo looks dark -- that is the point).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

BACKGROUND = (255, 255, 255)
TEXT = (20, 20, 20)


def display_uint8(image: np.ndarray) -> np.ndarray:
    """Linear image(s) ``(..., 3)`` -> uint8 display values: clipped to [0, 1], no gamma."""
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow < 10.1 or no FreeType: fixed bitmap font
        return ImageFont.load_default()


def wrap_text(text: str, font, width: int) -> list[str]:
    """Greedy word wrap of ``text`` to lines at most ``width`` pixels wide in ``font``.

    Words longer than a line are cut character-wise so nothing overflows a thumbnail.
    """
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if font.getlength(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = ""
        for ch in word:  # a word wider than the tile: break it
            if font.getlength(line + ch) > width and line:
                lines.append(line)
                line = ""
            line += ch
    if line:
        lines.append(line)
    return lines or [""]


def _layout(labels: Sequence[str], width: int, font_size: int, max_lines: int):
    """Largest font (``font_size`` down to 7 px) at which every label fits in ``max_lines``."""
    for size in range(font_size, 6, -1):
        font = _font(size)
        wrapped = [wrap_text(t, font, width) for t in labels]
        if max(len(w) for w in wrapped) <= max_lines:
            return font, size, wrapped
    wrapped = [w[: max_lines - 1] + [w[max_lines - 1] + "..."] if len(w) > max_lines else w for w in wrapped]
    return font, size, wrapped


def step_strip(
    images: Sequence[np.ndarray],
    labels: Sequence[str],
    path: str | Path | None = None,
    scale: int = 2,
    *,
    font_size: int = 11,
    max_lines: int = 6,
    gap: int = 6,
) -> np.ndarray:
    """Thumbnails of ``images`` (linear ``(H, W, 3)``) in a row, ``labels[i]`` wrapped under each.

    Each image is enlarged ``scale`` times (nearest neighbour). Long labels (curve
    descriptions) are word-wrapped to the tile width; if one needs more than ``max_lines``
    lines the font shrinks (to 7 px at least), then the rest is cut with ``...``. Returns the
    strip as uint8 ``(height, width, 3)``; with ``path`` also writes it as PNG (folders made).
    """
    from PIL import Image, ImageDraw

    if len(images) == 0 or len(images) != len(labels):
        raise ValueError(f"step_strip: need one label per image, got {len(images)} images and {len(labels)} labels")
    if scale < 1:
        raise ValueError(f"step_strip: scale must be >= 1, got {scale}")
    tiles = []
    for img in images:
        img = np.asarray(img)
        if img.ndim != 3 or img.shape[-1] != 3:
            raise ValueError(f"step_strip: expected (H, W, 3) images, got shape {img.shape}")
        tiles.append(np.repeat(np.repeat(display_uint8(img), scale, axis=0), scale, axis=1))
    tile_w = max(t.shape[1] for t in tiles)
    tile_h = max(t.shape[0] for t in tiles)
    font, size, wrapped = _layout(labels, tile_w, font_size, max_lines)
    line_h = size + 3
    text_h = line_h * max(len(w) for w in wrapped)
    width = len(tiles) * tile_w + (len(tiles) + 1) * gap
    height = gap + tile_h + gap + text_h + gap
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for k, (tile, lines) in enumerate(zip(tiles, wrapped)):
        x = gap + k * (tile_w + gap)
        canvas.paste(Image.fromarray(tile), (x, gap))
        for j, line in enumerate(lines):
            draw.text((x, gap + tile_h + gap + j * line_h), line, fill=TEXT, font=font)
    out = np.asarray(canvas, dtype=np.uint8).copy()
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        canvas.save(path, format="PNG")
    return out


def episode_strip(env, i: int = 0, path: str | Path | None = None, scale: int = 2, **kwargs) -> np.ndarray:
    """:func:`step_strip` of an environment's current episode (input frame, then each edit).

    ``env``: an ``ExposureEnv`` (made with ``keep_frames=True``, its default) or an
    ``ExposureVectorEnv`` made with ``keep_frames=True`` (``i`` picks the sub-env); wrappers
    are looked through.
    """
    base = getattr(env, "unwrapped", env)
    if not hasattr(base, "engine"):
        raise ValueError(f"episode_strip: {type(base).__name__} is not an Exposure environment")
    frames, labels = base.engine.history(i)
    return step_strip(frames, labels, path, scale, **kwargs)
