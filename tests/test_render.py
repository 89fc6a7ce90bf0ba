"""Step strips: layout, PNG output, label wrapping, episode strips from environments."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from exposure_env.datasets import ImagePack
from exposure_env.env import ExposureEnv
from exposure_env.render import _font, display_uint8, episode_strip, step_strip, wrap_text
from exposure_env.scorers import PairedTargetScorer


def frames(n, size=64):
    return [np.full((size, size, 3), k / max(n - 1, 1), np.float32) for k in range(n)]


def test_display_is_clipped_without_gamma():
    out = display_uint8(np.array([[-0.5, 0.5, 2.0]], np.float32))
    assert out.dtype == np.uint8 and out.tolist() == [[0, 128, 255]]


def test_strip_png_has_the_right_size(tmp_path):
    gap, scale = 6, 2
    path = tmp_path / "sub" / "strip.png"
    out = step_strip(frames(4), ["input", "Exposure +1.00 EV", "Gamma 1/2.20", "Contrast +30%"], path, scale=scale, gap=gap)
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
    assert out.shape[1] == 4 * 64 * scale + 5 * gap
    assert out.shape[0] > 64 * scale + 2 * gap  # room for the labels
    assert path.exists()
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (out.shape[1], out.shape[0])
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), out)
    # the thumbnails are the images, enlarged, at their places
    tile = out[gap : gap + 128, gap + 3 * (128 + gap) : gap + 3 * (128 + gap) + 128]
    assert (tile == 255).all()
    assert (out[gap : gap + 128, gap : gap + 128] == 0).all()


def test_long_labels_wrap_and_fit():
    curves = "Colour curves " + " ".join(f"{c}[0.12 0.25 0.37 0.49 0.62 0.74 0.87]" for c in "RGB")
    short = step_strip(frames(2), ["input", "Exposure"], scale=1)
    long = step_strip(frames(2), ["input", curves], scale=1)
    assert long.shape[1] == short.shape[1] and long.shape[0] > short.shape[0]
    font = _font(11)
    lines = wrap_text(curves, font, 128)
    assert len(lines) > 1 and all(font.getlength(line) <= 128 for line in lines)
    assert " ".join(lines) == curves
    # a label that cannot fit even at the smallest font is cut, not overflowing
    huge = step_strip(frames(1), ["x" * 2000], scale=1, max_lines=3)
    assert huge.shape[0] < 64 + 3 * 20 + 40


def test_strip_errors():
    with pytest.raises(ValueError, match="one label per image"):
        step_strip(frames(2), ["only one"])
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        step_strip([np.zeros((4, 4), np.float32)], ["grey"])


def test_episode_strip_from_env(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.uniform(0.05, 0.6, (3, 80, 80, 3)).astype(np.float32)
    env = ExposureEnv(source=ImagePack(img, paired=img), scorer=PairedTargetScorer())
    env.reset(seed=0)
    for f in (0, 1, 7):
        env.step({"filter": f, "params": np.full(24, 0.3, np.float32)})
    out = episode_strip(env, path=tmp_path / "episode.png", scale=1, gap=4)
    assert out.shape[1] == 4 * 64 + 5 * 4
    assert (tmp_path / "episode.png").exists()
    with pytest.raises(ValueError, match="not an Exposure environment"):
        episode_strip(object())
