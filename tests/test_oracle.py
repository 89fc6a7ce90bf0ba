"""policies.oracle: the per-photo edit list fitted to the paired truth (the white box's ceiling)."""

from __future__ import annotations

import numpy as np
import pytest

from exposure_env.colourspace import srgb_to_linear
from exposure_env.edits import Edit, apply_edits
from policies.oracle import OracleSettings, fit_oracle, oracle_output, oracle_retouch
from rewards.metrics import psnr


@pytest.fixture(scope="module")
def astronaut():
    """skimage's astronaut, linearised (exact sRGB decode) and darkened like a RAW file."""
    import skimage.data

    return srgb_to_linear(skimage.data.astronaut() / 255.0) * np.float32(0.35)


def _styled(image, edits):
    return np.clip(apply_edits(image, edits), 0.0, 1.0)


# The demo expert's order with other values, and a list in an order none of the canonical
# orders has (Contrast before Gamma), which only the search can match.
KNOWN_LISTS = {
    "expert-order": [Edit("E", (1.2,)), Edit("W", (0.9, 1.02, 1.25)), Edit("G", (1 / 2.2,)), Edit("Ct", (0.3,)), Edit("S+", (0.5,))],
    "searched-order": [Edit("W", (1.1, 1.0, 0.8)), Edit("E", (0.8,)), Edit("Ct", (-0.4,)), Edit("G", (1 / 2.0,)), Edit("S+", (0.3,))],
}


@pytest.mark.slow  # 8-25 s each on a shared 2-CPU machine
@pytest.mark.parametrize("name", list(KNOWN_LISTS))
def test_oracle_reaches_40_db_on_a_photo_styled_with_known_filters(astronaut, name):
    truth = _styled(astronaut, KNOWN_LISTS[name])
    out, result = oracle_retouch(astronaut, truth)
    assert len(result.edits) == 5 and len(set(result.order)) == 5  # each filter at most once
    assert out.shape == astronaut.shape and out.min() >= 0.0 and out.max() <= 1.0
    full = psnr(out, truth)  # full resolution, display values, clipped: as evaluated
    assert full >= 40.0, (name, full, result.order, result.history)
    assert result.psnr == pytest.approx(full, abs=3.0)  # the sample's error predicts the photo's
    # far above doing nothing with a display gamma
    assert full > psnr(np.clip(astronaut, 0, 1) ** (1 / 2.2), truth) + 15.0


def test_single_filter_is_recovered_exactly(astronaut):
    small = astronaut[::4, ::4]
    truth = _styled(small, [Edit("E", (1.5,))])
    s = OracleSettings(steps=1, filters=("E", "G", "S+"), orders=(), beam=1)
    result = fit_oracle(small, truth, s)
    assert result.order == ("E",)
    assert result.edits[0].params[0] == pytest.approx(1.5, abs=1e-3)
    assert result.fits == 3 + 2  # one greedy candidate per filter, then the refit of the best two
    assert [o for o, _ in result.history] == [("E",), ("G",)]


def test_blend_filters_are_fitted_from_inside_their_range(astronaut):
    # Saturation+ is off for every action <= 0; the fit must still find a 60 % blend
    small = np.clip(astronaut[::4, ::4] * 2.5, 0, 1) ** (1 / 2.2)
    truth = _styled(small, [Edit("S+", (0.6,))])
    result = fit_oracle(small, truth, OracleSettings(steps=1, filters=("S+",), orders=()))
    assert result.edits[0].params[0] == pytest.approx(0.6, abs=0.01)


def test_truth_of_another_size_and_oracle_output(astronaut):
    small = astronaut[::4, ::4]
    truth = _styled(small, [Edit("E", (1.0,)), Edit("G", (0.5,))])
    half = truth[::2, ::2]  # same framing, half the size
    s = OracleSettings(steps=2, filters=("E", "G", "W"), orders=(("E", "G"),))
    result = fit_oracle(small, half, s)
    out = oracle_output(small, result)
    assert out.shape == small.shape and psnr(out, truth) > 30.0


def test_bad_input_is_refused(astronaut):
    with pytest.raises(ValueError, match="fit_oracle"):
        fit_oracle(astronaut[..., :2], astronaut)
    with pytest.raises(ValueError, match="steps"):
        fit_oracle(astronaut, astronaut, OracleSettings(steps=9))
    with pytest.raises(ValueError, match="nothing to search"):
        fit_oracle(astronaut, astronaut, OracleSettings(orders=(), beam=0))
