"""tune_configs.validation: paired metrics of the policy next to the reference rows on the same crops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from exposure_env import filters
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
