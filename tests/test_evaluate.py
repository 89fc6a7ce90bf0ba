"""policies.baselines and `exposure evaluate`: baselines, table numbers, contact sheet."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from exposure_env import io as image_io
from policies import baselines
from policies.export import export_policy
from policies.retoucher import Retoucher
from tune_configs.cli import app

from .policy_fixtures import tiny_module


def _srgb(v: float) -> float:
    return 12.92 * v if v <= 0.0031308 else 1.055 * v ** (1 / 2.4) - 0.055


def _lstar_of_srgb_grey(v: float) -> float:
    """CIE L* of an sRGB-encoded grey (D65 white: Y_n = 1)."""
    y = v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4
    return 116 * y ** (1 / 3) - 16 if y > (6 / 29) ** 3 else y * (29 / 3) ** 3


def _const(v, h=40, w=60):
    return np.full((h, w, 3), v, np.float32)


def test_baselines_hand_values():
    np.testing.assert_allclose(baselines.gamma_only(_const(0.25)), 0.25 ** (1 / 2.2), rtol=1e-6)
    assert baselines.gamma_only(_const(3.0)).max() == 1.0
    # channel means (0.1, 0.2, 0.05): grey world -> all 0.11667; exposure -> 0.18; sRGB -> 0.4613
    img = np.broadcast_to(np.array([0.1, 0.2, 0.05], np.float32), (8, 8, 3))
    np.testing.assert_allclose(baselines.auto_correct(img), _srgb(0.18), atol=1e-5)
    # grey world equalises channel means, expose_to sets the mean luminance
    rng = np.random.default_rng(0)
    x = rng.random((16, 16, 3)).astype(np.float32) * [0.2, 0.5, 0.1]
    gw = baselines.grey_world(x)
    means = gw.reshape(-1, 3).mean(0)
    np.testing.assert_allclose(means, means.mean(), rtol=1e-5)
    e = baselines.expose_to(gw)
    assert (0.27 * e[..., 0] + 0.67 * e[..., 1] + 0.06 * e[..., 2]).mean() == pytest.approx(0.18, rel=1e-5)


def test_evaluate_table_numbers():
    # linear grey 0.05 inputs; display targets at the auto result's grey, paired truth at 0.5
    inputs = [_const(0.05), _const(0.05, 50, 50)]
    target = _srgb(0.18)
    targets = [_const(target, 30, 30)] * 3
    paired = [_const(0.5), _const(0.5, 50, 50)]
    result = baselines.evaluate(inputs, targets, dict(baselines.BASELINES), paired=paired, names=["a", "b"])
    gamma, auto = result.scores
    g = 0.05 ** (1 / 2.2)  # bin 8 of 32; the target is in bin 14: disjoint luminance
    assert gamma.histogram == {"luminance": 0.0, "contrast": 100.0, "saturation": 100.0, "average": pytest.approx(200 / 3)}
    assert auto.histogram == {"luminance": 100.0, "contrast": 100.0, "saturation": 100.0, "average": 100.0}
    assert gamma.psnr == pytest.approx(-20 * math.log10(0.5 - g), rel=1e-5)
    assert auto.psnr == pytest.approx(-20 * math.log10(0.5 - target), rel=1e-4)
    assert gamma.delta_e == pytest.approx(_lstar_of_srgb_grey(0.5) - _lstar_of_srgb_grey(g), abs=1e-3)
    assert auto.delta_e == pytest.approx(_lstar_of_srgb_grey(0.5) - _lstar_of_srgb_grey(target), abs=1e-3)
    table = baselines.markdown_table(result).splitlines()
    assert table[0].startswith("| method | luminance % | contrast % | saturation % | average % | PSNR dB | ΔE76 |")
    assert table[2].startswith("| input + gamma 1/2.2 | 0.0 | 100.0 | 100.0 | 66.7 |")
    assert table[3].startswith("| auto (grey world, 0.18, sRGB) | 100.0 | 100.0 | 100.0 | 100.0 |")
    # without paired truth: no PSNR / Delta E columns
    unpaired = baselines.evaluate(inputs, targets, {"gamma": baselines.gamma_only})
    assert unpaired.scores[0].psnr is None and "PSNR" not in baselines.markdown_table(unpaired)


def test_evaluate_colour_columns_match_the_metrics():
    from rewards import metrics

    rng = np.random.default_rng(3)
    inputs = [rng.uniform(0.02, 0.3, (24, 32, 3)).astype(np.float32) for _ in range(2)]
    paired = [np.clip(baselines.auto_correct(x) * [0.95, 1.0, 1.1], 0, 1).astype(np.float32) for x in inputs]
    result = baselines.evaluate(inputs, paired, dict(baselines.BASELINES), paired=paired)
    gamma, auto = result.scores
    outs = result.outputs[auto.method]
    assert auto.delta_e2000 == pytest.approx(np.mean([metrics.delta_e2000(o, g) for o, g in zip(outs, paired)]))
    cast = [metrics.colour_cast(o, g) for o, g in zip(outs, paired)]
    assert auto.b_bias == pytest.approx(np.mean([c["b_bias"] for c in cast]))
    assert auto.b_bias > 0  # the truth is bluer than the auto-correction: the output is yellower
    head, _, row_gamma, row_auto = baselines.markdown_table(result).splitlines()
    assert head.endswith("| PSNR dB | ΔE76 | ΔE00 | a* bias | b* bias | neutral ΔC |")
    assert f"| {auto.delta_e2000:.2f} | {auto.a_bias:+.2f} | {auto.b_bias:+.2f} |" in row_auto
    assert json.loads(json.dumps(auto.to_dict()))["delta_e2000"] == pytest.approx(auto.delta_e2000)


def test_oracle_row_beats_the_baselines_on_truth_styled_with_filters():
    from exposure_env.edits import Edit, apply_edits
    from policies.oracle import OracleSettings

    rng = np.random.default_rng(4)
    ramp = np.linspace(0.01, 0.4, 40, dtype=np.float32)[None, :, None]
    inputs = [(ramp * rng.uniform(0.5, 1.5, (30, 40, 3))).astype(np.float32) for _ in range(2)]
    style = [Edit("E", (1.0,)), Edit("W", (0.9, 1.02, 1.3)), Edit("G", (0.45,))]
    paired = [np.clip(apply_edits(x, style), 0, 1) for x in inputs]
    oracle = baselines.OracleMethod(OracleSettings(steps=3, orders=(("E", "W", "G"),), beam=0))
    methods = {**baselines.BASELINES, baselines.ORACLE: oracle}
    result = baselines.evaluate(inputs, paired, methods, paired=paired)
    rows = {s.method: s for s in result.scores}
    best = rows[baselines.ORACLE]
    assert best.psnr > 40 and best.delta_e2000 < 0.5 and abs(best.b_bias) < 0.5
    assert all(best.psnr > r.psnr + 10 for name, r in rows.items() if name != baselines.ORACLE)
    assert len(oracle.edits) == 2 and [e.filter for e in oracle.edits[0]] == ["E", "W", "G"]
    with pytest.raises(ValueError, match="needs the paired ground truth"):
        baselines.evaluate(inputs, paired, {baselines.ORACLE: oracle})


def test_match_pairs_resizes_and_checks(tmp_path):
    ins = baselines.PhotoSet(["a", "b"], [_const(0.1, 40, 60), _const(0.1, 20, 20)])
    pairs = baselines.PhotoSet(["b", "a"], [_const(0.3, 20, 20), _const(0.2, 80, 120)])
    got = baselines.match_pairs(ins, pairs)
    assert got[0].shape == (40, 60, 3) and np.allclose(got[0], 0.2) and np.allclose(got[1], 0.3)
    with pytest.raises(ValueError, match="c: no paired"):
        baselines.match_pairs(baselines.PhotoSet(["c"], [_const(0.1)]), pairs)
    with pytest.raises(ValueError, match="aspect ratio"):
        baselines.match_pairs(baselines.PhotoSet(["b"], [_const(0.1, 20, 40)]), pairs)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(1)
    for i in range(3):
        img = (_const(0.05, 48, 64) * rng.uniform(0.5, 2.0, 3)).astype(np.float32)
        image_io.write_image(root / "inputs" / f"p{i}.tif", img, bits=32)
        image_io.write_image(root / "expert" / f"p{i}.tif", baselines.auto_correct(img), bits=16)
        image_io.write_image(root / "targets" / f"t{i}.tif", baselines.auto_correct(img * 1.5), bits=16)
    (root / "inputs" / "broken.tif").write_bytes(b"II*\x00garbage")
    policy = export_policy(tiny_module(seed=2, vivid=True), root / "policy.exposure")
    return root, policy


def test_policy_method_and_contact_sheet(folders, tmp_path):
    root, policy = folders
    ins = baselines.load_photos(root / "inputs", "auto")
    assert ins.names == ["p0", "p1", "p2"] and len(ins.skipped) == 1 and "broken.tif" in ins.skipped[0]
    methods = {"policy": baselines.policy_method(Retoucher(policy, backend="numpy"))}
    result = baselines.evaluate(ins.images, ins.images, methods)
    out = result.outputs["policy"]
    assert len(out) == 3 and all(o.shape == (48, 64, 3) and 0 <= o.min() and o.max() <= 1 for o in out)
    sheet = baselines.contact_sheet([("input", ins.images, ins.names), ("policy", out, ins.names)], tmp_path / "s.png", tile=64)
    with Image.open(tmp_path / "s.png") as im:
        assert im.size == (sheet.shape[1], sheet.shape[0]) and sheet.shape[0] > 2 * 64


def test_evaluate_cli(folders, tmp_path):
    root, policy = folders
    out = tmp_path / "report"
    args = ["evaluate", "--policy", str(policy), "--inputs", str(root / "inputs"), "--targets", str(root / "targets"),
            "--paired", str(root / "expert"), "--out", str(out), "--max-side", "0"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "broken.tif" in res.output  # skipped and reported
    md = (out / "evaluation.md").read_text()
    assert "| policy |" in md and "| auto (grey world, 0.18, sRGB) |" in md and md.count("\n|") == 5
    metrics = json.loads((out / "metrics.json").read_text())
    auto = next(s for s in metrics["scores"] if s["method"].startswith("auto"))
    assert auto["psnr"] > 40 and auto["delta_e76"] < 0.1  # the expert *is* the auto baseline here
    assert metrics["photos"] == ["p0", "p1", "p2"]
    with Image.open(out / "contact_sheet.png") as im:
        assert im.size[1] > 5 * 100  # input, 2 baselines, policy, ground truth
    bad = CliRunner().invoke(app, ["evaluate", "--inputs", str(root / "inputs"), "--targets", str(root / "targets"),
                                   "--paired", str(root / "targets"), "--out", str(tmp_path / "r2")])
    assert bad.exit_code == 2 and "p0: no paired ground-truth photo" in bad.output
    no_truth = CliRunner().invoke(app, ["evaluate", "--inputs", str(root / "inputs"), "--targets", str(root / "targets"),
                                        "--oracle", "--out", str(tmp_path / "r3")])
    assert no_truth.exit_code == 2 and "--oracle needs --paired" in no_truth.output


@pytest.mark.slow  # the default oracle on three photos: 10-30 s on a shared 2-CPU machine
def test_evaluate_cli_oracle_and_colour_metrics(folders, tmp_path):
    root, _ = folders
    out = tmp_path / "report"
    args = ["evaluate", "--inputs", str(root / "inputs"), "--targets", str(root / "targets"),
            "--paired", str(root / "expert"), "--out", str(out), "--oracle"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    md = (out / "evaluation.md").read_text()
    assert f"| {baselines.ORACLE} |" in md and "ΔE00" in md and "b* bias" in md and "CIEDE2000" in md
    scores = {s["method"]: s for s in json.loads((out / "metrics.json").read_text())["scores"]}
    oracle, gamma = scores[baselines.ORACLE], scores["input + gamma 1/2.2"]
    for key in ("psnr", "delta_e76", "delta_e2000", "a_bias", "b_bias", "neutral_chroma_shift"):
        assert key in oracle
    # the expert is grey-world + exposure + sRGB of uniform photos: reachable by the filters
    assert oracle["psnr"] > 35 and oracle["psnr"] > gamma["psnr"] + 10 and oracle["delta_e2000"] < gamma["delta_e2000"]
