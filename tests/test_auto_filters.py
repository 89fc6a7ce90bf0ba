"""The auto-anchored filters AE, AW and AWs: action 0 is the automatic correction of the image being
edited, the action an offset from it; edits, the env, the rollout and a retoucher record them as
plain E / W edits that re-render the same image at full size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from exposure_env import filters as F
from exposure_env.edits import Edit, apply_edits
from exposure_env.env import ExposureEnv
from exposure_env.filters.exposure import MAX_EV
from exposure_env.filters.white_balance import LOG_RANGE

from .policy_fixtures import tiny_module

AUTO = [f.short_name for f in F.AUTO_FILTERS]


def _images(seed, n=6, size=8):
    """Photos with an exposure error and a colour cast each (linear RGB)."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.05, 1.0, (n, size, size, 3))
    gain = np.exp(rng.uniform(-0.3, 0.3, (n, 1, 1, 3))) * 2.0 ** rng.uniform(-3, 1, (n, 1, 1, 1))
    return (base * gain).astype(np.float32)


def _ref_ev(images):
    """An independent reference: float64 mean luminance (0.27, 0.67, 0.06) -> stops to 0.18."""
    lum = (np.asarray(images, np.float64) @ [0.27, 0.67, 0.06]).mean(axis=(1, 2))
    return np.log2(0.18 / lum)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), a=st.floats(-1.5, 1.5))
def test_auto_exposure_is_mid_grey_plus_the_action_in_stops(seed, a):
    images = _images(seed)
    action = np.full((len(images), 1), a, np.float32)
    ev = F.get("AE").params_for(action, images)[:, 0]
    want = np.clip(_ref_ev(images) + MAX_EV * np.clip(a, -1, 1), -MAX_EV, MAX_EV)
    np.testing.assert_allclose(ev, want, atol=1e-5)
    # torch (the update's path) computes the same parameters
    np.testing.assert_allclose(F.get("AE").params_for(torch.from_numpy(action), torch.from_numpy(images)).numpy()[:, 0], want, atol=1e-5)


def test_auto_exposure_action_zero_lands_on_mid_grey():
    images = _images(1)
    out = F.get("AE").apply(images, F.get("AE").params_for(np.zeros((len(images), 1), np.float32), images))
    lum = (out.astype(np.float64) @ [0.27, 0.67, 0.06]).mean(axis=(1, 2))
    np.testing.assert_allclose(lum, 0.18, rtol=1e-4)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), tint=st.floats(-0.5, 0.5))
def test_auto_white_balance_is_grey_world_plus_the_action(seed, tint):
    images = _images(seed)
    means = np.asarray(images, np.float64).mean(axis=(1, 2))
    grey_world = np.log(means[:, :1] / means) / LOG_RANGE  # red 0: the filter fixes red
    action = np.zeros((len(images), 3), np.float32)
    action[:, 2] = tint
    want = F.get("W").params_from_action(np.clip(grey_world + action, -1, 1).astype(np.float32))
    got = F.get("AW").params_for(action, images)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(F.get("AW").params_for(torch.from_numpy(action), torch.from_numpy(images)).numpy(), want, rtol=1e-5)
    if tint == 0 and np.all(np.abs(grey_world) <= 1):  # inside the filter's range: channel means made equal
        out = F.get("AW").apply(images, got).astype(np.float64).mean(axis=(1, 2))
        np.testing.assert_allclose(out / out[:, :1], 1.0, rtol=1e-4)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), red=st.floats(-1.5, 1.5), tint=st.floats(-0.5, 0.5))
def test_partial_white_balance_takes_a_share_of_grey_world_from_the_red_action(seed, red, tint):
    images = _images(seed)
    means = np.asarray(images, np.float64).mean(axis=(1, 2))
    grey_world = np.log(means[:, :1] / means) / LOG_RANGE
    action = np.zeros((len(images), 3), np.float32)
    action[:, 0], action[:, 2] = red, tint
    share = (1.0 + np.clip(red, -1, 1)) / 2.0
    want = F.get("W").params_from_action(np.clip(share * grey_world + action, -1, 1).astype(np.float32))
    got = F.get("AWs").params_for(action, images)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(F.get("AWs").params_for(torch.from_numpy(action), torch.from_numpy(images)).numpy(), want, rtol=1e-5)
    # its ends are the plain and the fully anchored filter (red's action is unused by both)
    plain, full = action.copy(), action.copy()
    plain[:, 0], full[:, 0] = -1.0, 1.0
    np.testing.assert_allclose(F.get("AWs").params_for(plain, images), F.get("W").params_from_action(plain), rtol=1e-5)
    np.testing.assert_allclose(F.get("AWs").params_for(full, images), F.get("AW").params_for(full, images), rtol=1e-5)


def test_partial_white_balance_strength_has_a_gradient():
    images = torch.from_numpy(_images(7))
    action = torch.zeros(len(images), 3, requires_grad=True)
    params = F.get("AWs").params_for(action, images)
    (params[:, 2] / params[:, 0]).log().sum().backward()  # blue against red: moves with the share of grey world
    assert torch.all(action.grad[:, 0].abs() > 1e-4)


def test_anchored_edits_are_plain_edits():
    img = _images(2, n=1)[0]
    assert Edit("AE", (1.0,)).filter == "E" and Edit("AW", (1.1, 0.9, 1.2)).filter == "W"
    with pytest.raises(ValueError, match="image"):
        Edit.from_action(0, [0.0] * 24, AUTO)
    e = Edit.from_action(0, [0.25] + [0.0] * 23, AUTO, image=img)
    assert e.filter == "E" and e.params[0] == pytest.approx(_ref_ev(img[None])[0] + 0.25 * MAX_EV, abs=1e-5)
    assert F.get("AE").identity_action() is None and not F.get("E").anchored and F.get("AW").anchored and F.get("AWs").anchored
    assert Edit("AWs", (1.1, 0.9, 1.2)).filter == "W"
    assert "AE" not in [f.short_name for f in F.ALL_FILTERS]  # no kernel branch of their own


def test_env_records_plain_edits_that_re_render_its_image():
    env = ExposureEnv(filters=AUTO, max_steps=3, seed=3)
    obs, _ = env.reset()
    start = env.image
    chosen = []
    for f, a in ((0, -0.1), (2, 0.2), (1, 0.3)):  # AE, AW, G
        action = {"filter": f, "params": np.full(24, a, np.float32)}
        _, _, done, _, info = env.step(action)
        chosen.append(info["edit"])
    assert done and [e.filter for e in chosen] == ["E", "W", "G"]
    # clipped to the filter's range (a hubble crop can need more than +3.5 EV)
    assert chosen[0].params[0] == pytest.approx(np.clip(_ref_ev(start[None])[0] - 0.1 * MAX_EV, -MAX_EV, MAX_EV), abs=1e-4)
    np.testing.assert_allclose(apply_edits(start, chosen), env.image, rtol=1e-5, atol=1e-6)


def test_retoucher_with_anchored_filters_exports_and_applies_plain_edits(tmp_path):
    from policies.export import export_policy
    from policies.retoucher import Retoucher

    module = tiny_module(seed=4, vivid=True, filters=AUTO)
    ret = Retoucher(export_policy(module, tmp_path / "auto.exposure"), backend="numpy")
    assert [f.short_name for f in ret.policy.filters] == AUTO
    photo = _images(5, n=1, size=96)[0]
    decision = ret.decide(photo)
    edits = decision.edits[0]
    assert {e.filter for e in edits} <= {"E", "G", "W", "S+", "T", "Ct", "BW", "C"}
    # the edits re-render the thumbnail the policy saw, step for step
    np.testing.assert_allclose(apply_edits(decision.frames[0][0], edits), decision.frames[-1][0], rtol=1e-4, atol=1e-5)
