"""tune_configs.validation: paired metrics of the policy next to the reference rows on the same crops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from exposure_env import filters
from exposure_env.image_statistics import STATISTICS
from policies import baselines
from rewards import metrics
from tune_configs.validation import PAIRED_SCORE_KEYS, Validator

NAMES = [f.short_name for f in filters.DEFAULT_FILTERS]
#: Action of Gamma 1/2.2 (``g = exp(a ln 3)``).
GAMMA_ACTION = math.log(1 / 2.2) / math.log(3.0)


def scripted_gamma(image, state):
    """A policy callable: Gamma 1/2.2 first, then identity edits (E, W, Ct, S+ at action 0)."""
    n, step = image.shape[0], int(state[0, 2])
    plan = ["G", "E", "W", "Ct", "S+"]
    logits = torch.full((n, len(NAMES)), -10.0)
    logits[:, NAMES.index(plan[step])] = 10.0
    params = torch.zeros((n, filters.max_params()))
    if plan[step] == "G":
        params[:, 0] = GAMMA_ACTION
    return logits, params


@pytest.fixture
def crops():
    rng = np.random.default_rng(5)
    return (rng.uniform(0.01, 0.5, (6, 80, 80, 3)) * rng.uniform(0.5, 1.5, (6, 1, 1, 3))).astype(np.float32)


def test_policy_scores_sit_next_to_the_references(crops):
    truth = np.stack([baselines.auto_correct(x) for x in crops])  # the auto-correction *is* the truth
    v = Validator(crops, truth, paired=truth, strips=1)
    res = v.evaluate(scripted_gamma)
    sc = res["scores"]
    for key in ("hi", "psnr", "delta_e", "delta_e2000", "a_bias", "b_bias", "neutral_chroma_shift"):
        assert key in sc and f"{key}_gamma" in sc and f"{key}_auto" in sc
    # the references are what policies.baselines computes on the same crops
    assert sc["psnr_auto"] == math.inf and sc["delta_e_auto"] == 0.0 and sc["delta_e2000_auto"] == 0.0
    assert sc["hi_auto"] == 100.0
    gamma = np.stack([baselines.gamma_only(x) for x in crops])
    assert sc["psnr_gamma"] == pytest.approx(metrics.psnr(gamma, truth))
    assert sc["delta_e2000_gamma"] == pytest.approx(metrics.delta_e2000(gamma, truth))
    assert sc["hi_gamma"] == pytest.approx(metrics.histogram_intersection(gamma, truth)["average"])  # cached target stats
    # the scripted policy applies exactly the display gamma: its scores equal that reference row
    assert sc["psnr"] == pytest.approx(sc["psnr_gamma"], abs=1e-3)
    assert sc["delta_e"] == pytest.approx(sc["delta_e_gamma"], abs=1e-3)
    assert sc["b_bias"] == pytest.approx(sc["b_bias_gamma"], abs=1e-3)
    assert set(res["baselines"]) == {"inputs", "gamma", "auto"}
    assert res["baselines"]["inputs"] == v.baseline()
    assert [e.filter for e in res["edits"][0]] == ["G", "E", "W", "Ct", "S+"]


def test_references_are_computed_once(crops, monkeypatch):
    calls = []
    real = baselines.auto_correct
    monkeypatch.setattr(baselines, "auto_correct", lambda x: calls.append(1) or real(x))
    v = Validator(crops, crops, paired=np.clip(crops, 0, 1))
    v.evaluate(scripted_gamma)
    v.evaluate(scripted_gamma)
    assert len(calls) == len(crops)


def test_unpaired_validation_has_histogram_scores_only(crops):
    v = Validator(crops, np.clip(crops * 3, 0, 1))
    sc = v.evaluate(scripted_gamma)["scores"]
    assert "psnr" not in sc and "psnr_auto" not in sc
    assert {"hi", "hi_gamma", "hi_auto", "hi_luminance"} <= set(sc)
    assert set(PAIRED_SCORE_KEYS) & set(sc) == set()


# --------------------------------------------------------------------------- issue 8: "HI exactly 0.000 %"
def _cool_faded_folder(root):
    """24 RAW-like 16-bit *linear* TIFF inputs and 8 cool faded 8-bit PNG targets (lifted blacks,
    half the contrast, blue-ish), from scikit-image's photographs at quarter size."""
    import skimage.data

    from exposure_env.colourspace import srgb_to_linear
    from exposure_env.io import write_image

    rng = np.random.default_rng(0)
    photos = [srgb_to_linear(getattr(skimage.data, n)()[::4, ::4] / 255.0) for n in ("astronaut", "coffee", "chelsea", "rocket")]
    inputs, targets = root / "inputs", root / "targets"
    for k in range(24):
        p = photos[k % 4]
        h, w = p.shape[:2]
        y, x = rng.integers(0, h // 4), rng.integers(0, w // 4)
        raw = p[y : y + 3 * h // 4, x : x + 3 * w // 4] * np.exp(rng.uniform(-0.25, 0.25, 3)) * 2.0 ** rng.uniform(-3.0, 0.0)
        write_image(inputs / f"raw{k:02d}.tif", np.clip(raw, 0, 1), bits=16, space="linear")
    for k in range(8):
        p = photos[k % 4][:, (k // 4) * 10 :]
        display = np.clip(p * (0.18 / p.mean()), 0, 1) ** (1 / 2.2)
        write_image(targets / f"style{k}.png", np.clip((0.25 + 0.5 * display) * [0.9, 0.98, 1.12], 0, 1), bits=8)
    return inputs, targets


def _faded_look(x):
    """The targets' own recipe applied to a linear crop: what a policy that learned the style outputs."""
    display = np.clip(x * (0.18 / max(float(x.mean()), 1e-4)), 0, 1) ** (1 / 2.2)
    return np.clip((0.25 + 0.5 * display) * np.array([0.9, 0.98, 1.12]), 0, 1).astype(np.float32)


@pytest.mark.slow  # packs two folders: 10-30 s on a shared 2-CPU machine
def test_cool_faded_folder_validation_can_see_the_style(tmp_path, monkeypatch):
    """The reported run: HI 0.000 % for the untouched inputs and the policy against a cool faded
    style. The arithmetic is right -- linear, dark, saturated images share no luminance or
    saturation bin with lifted-black, muted targets -- but the run measured on 10 validation
    crops (10 % of 96, about 3 photos) and showed no display-referred reference on the same crops,
    so a 0 could not be told from a broken measurement. Now: enough held-out crops, and the
    scores carry input + display gamma and the auto-correction next to the policy."""
    from exposure_env.datasets.pack import ImagePack
    from tune_configs.data import DataSpec, prepare_data, validation_targets

    monkeypatch.setenv("EXPOSURE_RL_CACHE", str(tmp_path / "cache"))
    inputs, targets = _cool_faded_folder(tmp_path)
    data = prepare_data(DataSpec.folders(inputs, targets), tmp_path / "run" / "data")
    val = data.val_pack
    v = Validator(val.images, validation_targets(val, ImagePack.load(data.targets)), strips=0)  # as the run loop builds it
    assert len(val) >= 32  # the reported run had 10 crops: every crop one spike in 32 bins
    linear = v.baseline()
    assert linear["hi_luminance"] == 0.0  # the reported zero: linear inputs are darker than any lifted black
    refs = v.references()
    for name in ("gamma", "auto"):  # display-referred outputs of the same crops do overlap the style
        assert all(refs[name][f"hi_{k}"] > 0.0 for k in STATISTICS), (name, refs[name])
        assert refs[name]["hi"] > linear["hi"] + 10.0
    styled = metrics.histogram_intersection(np.stack([_faded_look(x) for x in val.images]), v.targets)
    assert styled["average"] > 50.0  # the measure rewards the look itself
    sc = v.evaluate(scripted_gamma)["scores"]
    assert sc["hi_gamma"] == pytest.approx(refs["gamma"]["hi"]) and sc["hi_auto"] == pytest.approx(refs["auto"]["hi"])
