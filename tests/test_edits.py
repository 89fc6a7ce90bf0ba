"""Edit lists: parsing, JSON, and the tiled / fused full-resolution paths against the reference."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from exposure_env import edits as E
from exposure_env.backend import to_numpy
from exposure_env.edits import Edit, apply_edits, edits_from_json, edits_to_json

FIVE = [
    Edit.parse("E:+0.7"),
    Edit.parse("G:0.45"),
    Edit.parse("W:1.1,1.0,0.8"),
    Edit("S+", (0.6,)),
    Edit("T", tuple(np.linspace(0.6, 1.9, 8))),
]
OTHERS = [Edit("Ct", (0.4,)), Edit("BW", (0.3,)), Edit("C", tuple(np.linspace(0.9, 1.1, 24))), Edit("L", (0.05, 1.2))]


def test_parse_and_validate():
    e = Edit.parse("E:+1.25")
    assert e.filter == "E" and e.params == (1.25,) and e.describe() == "Exposure +1.25 EV"
    assert Edit.parse("s+:0.5").filter == "S+"
    for bad, msg in [("E", "expected FILTER:VALUE"), ("E:abc", "must be numbers"), ("W:1,2", "takes 3"), ("Q:1", "unknown filter")]:
        with pytest.raises((ValueError, KeyError), match=msg):
            Edit.parse(bad)
    with pytest.raises(ValueError, match="finite"):
        Edit("E", (float("nan"),))


def test_json_round_trip():
    data = json.loads(json.dumps(edits_to_json(FIVE + OTHERS)))
    assert data[0]["units"] == {"ev": 0.7} and data[0]["text"] == "Exposure +0.70 EV"
    back = edits_from_json(data)
    assert [b.filter for b in back] == [e.filter for e in FIVE + OTHERS]
    for a, b in zip(back, FIVE + OTHERS):
        np.testing.assert_allclose(a.params, b.params, atol=1e-6)
    assert edits_from_json({"edits": data[:1]})[0].filter == "E"
    with pytest.raises(ValueError, match="lacks the field"):
        edits_from_json([{"filter": "E"}])


def test_from_action_matches_filter_mapping():
    e = Edit.from_action(0, [0.5] + [0.0] * 23)
    assert e.filter == "E" and e.params[0] == pytest.approx(1.75)


@pytest.mark.parametrize("edits", [FIVE, OTHERS, FIVE[:1], []])
def test_tiled_equals_sequential(edits, rng):
    img = rng.uniform(0, 1.2, (600, 500, 3)).astype(np.float32)  # > 2 tiles
    ref = E._apply_sequential(img[None], edits)[0] if edits else img
    got = apply_edits(img, edits, fused=False)  # the NumPy tiled path (the fallback of the fused one)
    assert got.shape == img.shape and got.dtype == np.float32
    np.testing.assert_array_equal(got, ref)
    got_t = apply_edits(torch.from_numpy(img), edits)
    np.testing.assert_allclose(got_t.numpy(), ref, atol=2e-5)
    np.testing.assert_array_equal(apply_edits(img, edits, workers=1, fused=False), ref)
    np.testing.assert_allclose(apply_edits(img, edits), ref, rtol=1e-5, atol=1e-5)  # default: fused if available


def test_batch_and_input_untouched(rng):
    imgs = rng.uniform(0, 1, (2, 40, 30, 3)).astype(np.float32)
    before = imgs.copy()
    out = apply_edits(imgs, FIVE)
    np.testing.assert_array_equal(imgs, before)
    np.testing.assert_allclose(out[1], apply_edits(imgs[1], FIVE), atol=1e-6)
    with pytest.raises(ValueError, match="expected an"):
        apply_edits(imgs[..., :2], FIVE)


def test_torch_gradients_flow_through_edits():
    img = torch.rand(1, 8, 8, 3, requires_grad=True)
    apply_edits(img, FIVE + OTHERS).sum().backward()
    assert img.grad is not None and torch.isfinite(img.grad).all() and img.grad.abs().sum() > 0


@pytest.mark.gpu
@pytest.mark.cupy
@pytest.mark.parametrize("edits", [FIVE, OTHERS])
def test_cupy_fused_edit_list(edits, rng):
    cp = pytest.importorskip("cupy")
    img = rng.uniform(0, 1.2, (300, 200, 3)).astype(np.float32)
    ref = E._apply_sequential(img[None], edits)[0]
    got = apply_edits(cp.asarray(img), edits)
    np.testing.assert_allclose(to_numpy(got), ref, atol=1e-5)
