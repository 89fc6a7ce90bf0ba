"""``exposure retouch --sidecar`` and ``exposure export-edits``: files, records, refusals, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from PIL import Image
from typer.testing import CliRunner

from exposure_env.sidecars import InputDecoding
from exposure_env.sidecars import darktable as DT
from exposure_env.sidecars import lightroom as LR
from exposure_env.sidecars import rawtherapee as RT
from policies.export import export_policy
from tune_configs.cli import app

from .policy_fixtures import tiny_module

EDITORS = "darktable,rawtherapee,lightroom"
SUFFIXES = (".darktable.xmp", ".rawtherapee.pp3", ".lightroom.xmp")


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory):
    return export_policy(tiny_module(seed=5, vivid=True), tmp_path_factory.mktemp("policy") / "policy.exposure")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    y, x = np.mgrid[0:40, 0:56] / np.array([39.0, 55.0])[:, None, None]
    img = np.stack([0.2 + 0.6 * x, 0.3 + 0.5 * y, 0.6 - 0.4 * x * y], -1)
    tifffile.imwrite(d / "t16.tif", (img * 65535).round().astype(np.uint16), photometric="rgb")
    Image.fromarray((img * 255).round().astype(np.uint8)).save(d / "p8.png")
    Image.fromarray((img * 255).round().astype(np.uint8)).save(d / "j8.jpg", quality=95)
    return d


@pytest.fixture(scope="module")
def retouched(policy_file, inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("retouched") / "out"
    res = CliRunner().invoke(app, ["retouch", str(policy_file), str(inputs), "-o", str(out), "-q", "--sidecar", EDITORS])
    assert res.exit_code == 0, res.output
    return out


def test_retouch_writes_the_editor_files_and_records_the_decoding(retouched, inputs):
    for stem, space in (("t16", "prophoto"), ("p8", "srgb"), ("j8", "srgb")):
        record = json.loads((retouched / f"{stem}.json").read_text())
        assert record["record_version"] == 2
        dec = InputDecoding.from_dict(record["decoding"])
        original = next(inputs.glob(f"{stem}.*"))
        assert dec == InputDecoding.from_dict(InputDecoding.for_file(original).to_dict()) and dec.space == space
        xmp = (retouched / f"{stem}.darktable.xmp").read_bytes()
        hist = DT.read_history(xmp)
        assert hist[0]["operation"] == "colorin" and len(hist) >= 3 + len(record["edits"])
        assert [h["multi_name"].split(":")[0] for h in hist if h["multi_name"][:1].isdigit()][-1] == str(len(record["edits"]))
        assert b'xmpMM:DerivedFrom="' + original.name.encode() in xmp
        assert "RGB Curves" in RT.read_profile((retouched / f"{stem}.rawtherapee.pp3").read_bytes())
        assert LR.validate((retouched / f"{stem}.lightroom.xmp").read_bytes()) == []


def test_retouch_sidecars_are_outputs_for_overwrite_and_resume(policy_file, inputs, retouched):
    runner = CliRunner()
    (retouched / "t16.json").unlink()  # an interrupted photo: resumes, editor files rewritten
    res = runner.invoke(app, ["retouch", str(policy_file), str(inputs), "-o", str(retouched), "-q", "--sidecar", EDITORS])
    assert res.exit_code == 2 and "--overwrite" in res.output
    res = runner.invoke(app, ["retouch", str(policy_file), str(inputs), "-o", str(retouched), "-q", "--sidecar", EDITORS, "--skip-existing"])
    assert res.exit_code == 0 and "done 1, skipped 2" in res.output, res.output
    (retouched / "p8.lightroom.xmp").unlink()  # a missing editor file makes the photo incomplete
    res = runner.invoke(app, ["retouch", str(policy_file), str(inputs), "-o", str(retouched), "-q", "--sidecar", "lightroom", "--skip-existing"])
    assert res.exit_code == 0 and "done 1, skipped 2" in res.output
    res = runner.invoke(app, ["retouch", str(policy_file), str(inputs), "-o", str(retouched), "-q", "--sidecar", "capture-one"])
    assert res.exit_code == 2 and "unknown editor 'capture-one'" in res.output


def test_export_edits_matches_retouch_and_reads_old_records(retouched, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["export-edits", str(retouched / "t16.json"), "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    for suffix in SUFFIXES:
        assert (tmp_path / f"t16{suffix}").read_bytes() == (retouched / f"t16{suffix}").read_bytes()
    old = json.loads((retouched / "p8.json").read_text())
    del old["record_version"], old["decoding"]  # as exposure-rl wrote it before editor sidecars
    (tmp_path / "p8.json").write_text(json.dumps(old))
    res = runner.invoke(app, ["export-edits", str(tmp_path / "p8.json"), "--to", "darktable"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "p8.darktable.xmp").read_bytes() == (retouched / "p8.darktable.xmp").read_bytes()


def test_export_edits_bad_records_fail_alone(retouched, tmp_path):
    good = tmp_path / "good.json"
    good.write_text((retouched / "j8.json").read_text())
    bad = tmp_path / "bad.json"
    record = json.loads(good.read_text())
    record["edits"][0]["filter"] = "Vignette"
    bad.write_text(json.dumps(record))
    res = CliRunner().invoke(app, ["export-edits", str(bad), str(good), "--to", "rawtherapee"])
    assert res.exit_code == 1
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "bad.json: step 1: unknown filter 'Vignette'" in errors[0]
    assert (tmp_path / "good.rawtherapee.pp3").exists() and not (tmp_path / "bad.rawtherapee.pp3").exists()
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    res = CliRunner().invoke(app, ["export-edits", str(good), "-o", str(blocker / "sub"), "--to", "lightroom"])
    assert res.exit_code == 1 and "good.lightroom.xmp: cannot be written" in res.output
    res = CliRunner().invoke(app, ["export-edits", str(good), "--to", "lightroom,nope"])
    assert res.exit_code == 2 and "unknown editor 'nope'" in res.output
