"""``exposure apply``: a given edit list applied to one photo through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from exposure_env.edits import Edit, apply_edits, edits_to_json
from exposure_env.io import read_image, write_image
from tune_configs.cli import app

WIDE = {"COLUMNS": "300", "TERMINAL_WIDTH": "300"}


def run(*args):
    return CliRunner().invoke(app, ["apply", *map(str, args)], env=WIDE)


def flat(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


@pytest.fixture
def linear_photo(tmp_path):
    rng = np.random.default_rng(3)
    img = rng.uniform(0.02, 0.45, size=(40, 60, 3)).astype(np.float32)
    path = write_image(tmp_path / "in.tif", img, space="linear")
    return path, read_image(path)


def test_apply_edits_in_order(linear_photo, tmp_path):
    photo, img = linear_photo
    out = tmp_path / "out.tif"
    res = run(photo, "-o", out, "--edit", "E:+1", "--edit", "G:0.4545", "-e", "W:1.1,1.0,0.9")
    assert res.exit_code == 0, res.output
    assert "Exposure +1.00 EV; Gamma 1/2.20" in flat(res.output)
    got = read_image(out)  # written 16-bit, read back as is
    edits = [Edit("E", (1.0,)), Edit("G", (0.4545,)), Edit("W", (1.1, 1.0, 0.9))]
    expected = np.clip(apply_edits(img, edits), 0, 1)
    np.testing.assert_allclose(got, expected, atol=1.0 / 65535)
    assert not np.allclose(got, np.clip(apply_edits(img, edits[::-1]), 0, 1), atol=1e-3)  # order matters
    # exposure alone: twice the linear values, clipped at 1
    res = run(photo, "-o", tmp_path / "e.png", "--edit", "E:1.0", "--bits", "16")
    assert res.exit_code == 0, res.output
    np.testing.assert_allclose(read_image(tmp_path / "e.png", "display"), np.clip(2 * img, 0, 1), atol=1.0 / 65535)


def test_apply_edits_json_matches_edit_flags(linear_photo, tmp_path):
    photo, _ = linear_photo
    edits = [Edit("E", (0.5,)), Edit("Ct", (0.3,)), Edit("S+", (0.6,))]
    spec = tmp_path / "edits.json"
    spec.write_text(json.dumps({"edits": edits_to_json(edits)}))
    assert run(photo, "-o", tmp_path / "a.tif", "--edits", spec).exit_code == 0
    assert run(photo, "-o", tmp_path / "b.tif", "-e", "E:0.5", "-e", "Ct:0.3", "-e", "S+:0.6").exit_code == 0
    np.testing.assert_array_equal(read_image(tmp_path / "a.tif"), read_image(tmp_path / "b.tif"))


def test_apply_never_overwrites_without_flag_nor_the_input(linear_photo, tmp_path):
    photo, img = linear_photo
    out = tmp_path / "out.tif"
    assert run(photo, "-o", out, "-e", "E:1").exit_code == 0
    before = out.read_bytes()
    res = run(photo, "-o", out, "-e", "E:-1")
    assert res.exit_code == 2 and "already exists" in flat(res.output)
    assert out.read_bytes() == before
    assert run(photo, "-o", out, "-e", "E:-1", "--overwrite").exit_code == 0
    np.testing.assert_allclose(read_image(out), img / 2, atol=1.0 / 65535)
    photo_bytes = photo.read_bytes()
    res = run(photo, "-o", photo, "-e", "E:1", "--overwrite")
    assert res.exit_code == 2 and "over the input" in flat(res.output)
    assert photo.read_bytes() == photo_bytes


def test_apply_into_folder_and_jpeg(linear_photo, tmp_path):
    photo, _ = linear_photo
    folder = tmp_path / "outs"
    folder.mkdir()
    assert run(photo, "-o", folder, "-e", "G:0.5").exit_code == 0
    assert (folder / "in.tif").exists()
    assert run(photo, "-o", folder, "-e", "G:0.5", "--format", "jpeg").exit_code == 0
    assert read_image(folder / "in.jpg", "display").shape == (40, 60, 3)


@pytest.mark.parametrize(
    "args, message",
    [
        (["-e", "X:1"], "unknown filter"),
        (["-e", "E:1,2"], "takes 1 parameter"),
        (["-e", "E"], "expected FILTER:VALUE"),
        (["-e", "E:abc"], "must be numbers"),
        ([], "no edits"),
        (["-e", "E:1", "--edits", "x.json"], "not both"),
        (["--edits", "missing.json"], "cannot be read"),
        (["-e", "E:1", "--input-space", "adobe"], "unknown colour space"),
        (["-e", "E:1", "--bits", "12"], "choose 16 or 8"),
        (["-e", "E:1", "--format", "gif"], "unknown format"),
    ],
)
def test_apply_bad_options(linear_photo, tmp_path, args, message):
    photo, _ = linear_photo
    res = run(photo, "-o", tmp_path / "o.tif", *args)
    assert res.exit_code == 2 and message in flat(res.output), res.output
    assert not (tmp_path / "o.tif").exists()


def test_apply_bad_edits_file_and_bad_suffix(linear_photo, tmp_path):
    photo, _ = linear_photo
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    res = run(photo, "-o", tmp_path / "o.tif", "--edits", bad)
    assert res.exit_code == 2 and "bad.json: not a valid edit list" in flat(res.output)
    res = run(photo, "-o", tmp_path / "o.gif", "-e", "E:1")
    assert res.exit_code == 2 and "cannot tell the output format" in flat(res.output)


def test_apply_bad_photo(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    res = run(broken, "-o", tmp_path / "o.tif", "-e", "E:1")
    assert res.exit_code == 1
    assert f"{broken}: not an image" in flat(res.output)
    assert not (tmp_path / "o.tif").exists()
