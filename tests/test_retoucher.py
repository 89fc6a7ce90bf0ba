"""policies.retoucher (decisions on thumbnails, full-size apply) and the safe batch driver (tune_configs.batch)."""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from typer.testing import CliRunner

from exposure_env import io as image_io
from exposure_env import resample
from exposure_env.edits import apply_edits, edits_from_json
from policies.export import export_policy
from policies.retoucher import Retoucher
from tune_configs.batch.jobs import RetouchError
from tune_configs.batch.retouch import retouch_paths
from tune_configs.cli import app

from .policy_fixtures import tiny_module


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory):
    module = tiny_module(seed=5, vivid=True)  # random init with visible, image-dependent edits
    return export_policy(module, tmp_path_factory.mktemp("policy") / "policy.exposure")


@pytest.fixture(scope="module")
def retoucher(policy_file):
    return Retoucher(policy_file, backend="numpy")


def _photo(h, w, seed=0):
    """A smooth linear 'photo': colour gradients plus a blob, values in [0.01, 0.6]."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    y, x = y / h, x / w
    rng = np.random.default_rng(seed)
    base = np.stack([0.3 * x + 0.05, 0.25 * y + 0.1, 0.2 * (1 - x) * y + 0.02], axis=-1)
    blob = np.exp(-((x - rng.uniform(0.3, 0.7)) ** 2 + (y - 0.5) ** 2) / 0.05)[..., None] * rng.uniform(0.1, 0.3, 3)
    return (base + blob).astype(np.float32)


def _tree_digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_resolution_independent(retoucher):
    photo = _photo(256, 384)
    half = resample.resize_area(photo, 128, 192)  # an exact 2x box downscale
    out, edits = retoucher.retouch(photo)
    out_half, edits_half = retoucher.retouch(half)
    assert [e.filter for e in edits] == [e.filter for e in edits_half]
    for a, b in zip(edits, edits_half):
        np.testing.assert_allclose(a.params, b.params, atol=1e-4)
    assert len(edits) == 5 and len({e.filter for e in edits}) == 5  # used filters are masked
    t_full, t_half = resample.thumbnail(out, 64), resample.thumbnail(out_half, 64)
    assert np.abs(t_full - t_half).max() < 2e-3
    assert not np.allclose(out, photo, atol=1e-3)  # something was edited


def test_decision_is_the_thumbnail_rollout(retoucher):
    photo = _photo(96, 128, seed=1)
    d1, d2 = retoucher.decide(photo), retoucher.decide(photo)
    assert d1.edits == d2.edits and len(d1.frames) == 6 and d1.frames[0].shape == (1, 64, 64, 3)
    # the last frame is the edit list applied to the thumbnail
    np.testing.assert_allclose(d1.frames[-1][0], apply_edits(resample.thumbnail(photo, 64), d1.edits[0], tiled=False), atol=1e-5)
    # the full-size result is the edit list applied once
    out, edits = retoucher.retouch(photo)
    np.testing.assert_array_equal(out, apply_edits(photo, edits))


def _mean_policy(image, state):
    """A hand-made policy for the pooling tests: every output is a fixed function of the view's
    mean level, so views that differ disagree. ``(N, 8)`` logits, ``(N, 8, 24)`` actions."""
    import torch

    x = image.float().mean(dim=(1, 2, 3)) - 0.25  # (N,): > 0 bright (prefers E), < 0 dark (prefers G)
    logits = torch.stack([10.0 * x, -6.0 * x, *[torch.full_like(x, -1.0 - k) for k in range(6)]], -1)
    logits = logits + state[:, :1]  # the step counter: a state-dependent term
    actions = torch.tanh(4.0 * x).reshape(-1, 1, 1).expand(-1, 8, 24)
    return logits, actions.contiguous()


def test_rollout_pools_the_views_into_one_decision():
    """``views=V``: one decision per photo from all V thumbnails (mean log-softmax, mean parameters),
    applied to every view; V equal views decide as one."""
    import torch

    from exposure_env import filters as filter_registry
    from policies.rollout import rollout

    flist = filter_registry.resolve(None)
    dark, bright = np.full((1, 8, 8, 3), 0.05, np.float32), np.full((1, 8, 8, 3), 0.6, np.float32)
    bright[..., 2] = 0.1
    pair = np.concatenate([dark, bright])
    final, edits, frames = rollout(_mean_policy, pair, flist, 1, mask_used=True, views=2)
    assert len(edits) == 1 and len(frames[1]) == 2  # one photo; every view kept
    logits, acts = _mean_policy(torch.from_numpy(pair), torch.zeros(2, 11))
    log_p = torch.log_softmax(logits, -1).mean(0)  # the reference pooling, by hand
    f = int(log_p.argmax())
    alone = [rollout(_mean_policy, v, flist, 1)[1][0][0].filter for v in (dark, bright)]
    assert alone[0] != alone[1]  # the views alone disagree ...
    assert edits[0][0].filter == flist[f].short_name  # ... and the pooled choice is the mean's
    params = flist[f].params_from_action(acts[:, f, : flist[f].num_params].mean(0, keepdim=True).numpy())
    np.testing.assert_allclose(edits[0][0].params, params[0], atol=1e-6)
    for j in range(2):  # the same edit on each view
        np.testing.assert_allclose(final[j], apply_edits(pair[j], edits[0], tiled=False), atol=1e-6)
    # V equal views decide exactly as one view
    single = rollout(_mean_policy, bright, flist, 5, mask_used=True)[1]
    triple = rollout(_mean_policy, np.repeat(bright, 3, axis=0), flist, 5, mask_used=True, views=3)[1]
    assert [e.filter for e in triple[0]] == [e.filter for e in single[0]]
    for a, b in zip(triple[0], single[0]):
        np.testing.assert_allclose(a.params, b.params, atol=1e-6)
    with pytest.raises(ValueError, match="whole number of photos"):
        rollout(_mean_policy, pair, flist, 1, views=3)


def test_a_wide_photo_is_decided_on_all_its_views(retoucher):
    """The retoucher decides on :func:`resample.decision_views` (3 squares of a 3:2 photo), so the
    ends outside the centre square change the edits; the Ray stage's views give the same decision."""
    photo = _photo(96, 144, seed=4)
    photo[:, :24] *= 3.0  # bright left end, dark right end: outside the centre square
    photo[:, -24:] *= 0.2
    views = retoucher.views(photo)
    assert views.shape == (3, 64, 64, 3)
    d = retoucher.decide(photo)
    assert d.edits == retoucher.decide(views).edits  # what the Ray decide stage receives
    centre = retoucher.decide(views[:1])  # the centre square alone (the decision before views)
    flat = [p for e in d.edits[0] for p in e.params]
    flat_centre = [p for e in centre.edits[0] for p in e.params]
    # (this random-init policy barely reacts to its input: its parameters move by ~1e-4)
    assert len(flat) != len(flat_centre) or np.abs(np.subtract(flat, flat_centre)).max() > 2e-5
    np.testing.assert_allclose(d.frames[0][0], resample.thumbnail(photo, 64), atol=1e-6)  # frames: the centre square
    samples = retoucher.decide(photo, samples=3, seed=5)
    assert len(samples.edits) == 3 and samples.frames[-1].shape == (3, 64, 64, 3)
    assert samples.edits == retoucher.decide(views, samples=3, seed=5).edits


def test_samples_are_seeded(retoucher):
    photo = _photo(64, 96, seed=2)
    a, ea = retoucher.retouch(photo, samples=4, seed=11)
    b, eb = retoucher.retouch(photo, samples=4, seed=11)
    c, ec = retoucher.retouch(photo, samples=4, seed=12)
    assert ea == eb and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert len({tuple(e.filter for e in s) for s in ea}) > 1  # K different retouches
    assert ea != ec
    for s in ea:
        assert len({e.filter for e in s}) == len(s)


def test_backends_agree(policy_file, retoucher):
    photo = _photo(64, 80, seed=3)
    ref, edits = retoucher.retouch(photo)
    out_torch, edits_torch = Retoucher(policy_file, backend="torch").retouch(photo)
    assert edits_torch == edits
    np.testing.assert_allclose(out_torch, ref, atol=1e-5)
    with pytest.raises(ValueError, match="unknown backend"):
        Retoucher(policy_file, backend="opencl")


# ------------------------------------------------------------------------ batch driver
def _png_header_only(path: Path, width: int, height: int):
    """A PNG whose header claims ``width`` x ``height`` RGB (no real pixel data)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


@pytest.fixture
def photo_folder(tmp_path):
    """Good photos (16-bit TIFF, 8-bit PNG, JPEG in a subfolder) and one of each bad kind."""
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    image_io.write_image(src / "good1.tif", _photo(48, 64, 1), bits=16, space="linear")
    image_io.write_image(src / "good2.png", _photo(40, 56, 2) ** 0.45, bits=8)
    image_io.write_image(src / "sub" / "good3.jpg", _photo(50, 50, 3) ** 0.45)
    (src / "empty.tif").write_bytes(b"")
    full = (src / "good1.tif").read_bytes()
    (src / "truncated.tif").write_bytes(full[: len(full) // 3])
    (src / "text.png").write_text("this is not an image\n")
    Image.fromarray(np.full((20, 20), 128, np.uint8), "L").save(src / "gray.png")
    rgba = np.full((20, 20, 4), 200, np.uint8)
    rgba[:5, :, 3] = 0
    Image.fromarray(rgba, "RGBA").save(src / "rgba.png")
    nan = _photo(16, 16)
    nan[3, 4, 1] = np.nan
    tifffile.imwrite(src / "nan.tif", nan, photometric="rgb")
    _png_header_only(src / "huge.png", 100_000, 100_000)
    (src / "notes.txt").write_text("not a photo type: ignored")
    return src


BAD = ["empty.tif", "truncated.tif", "text.png", "gray.png", "rgba.png", "nan.tif", "huge.png"]


def test_batch_reports_bad_files_and_writes_good_ones(retoucher, photo_folder, tmp_path):
    before = _tree_digest(photo_folder)
    out = tmp_path / "out"
    missing = tmp_path / "missing.tif"
    summary = retouch_paths(retoucher, [photo_folder, missing], out, strip=True, progress=False)
    assert summary.done == 3 and summary.skipped == 0 and summary.exit_code == 1
    failed = {Path(r.input).name: r.reason for r in summary.failed}
    assert set(failed) == set(BAD) | {"missing.tif"}
    for name, reason in failed.items():
        assert "\n" not in reason and name in reason
    assert "no such file" in failed["missing.tif"]
    assert "empty" in failed["empty.tif"] and "grayscale" in failed["gray.png"]
    assert "NaN" in failed["nan.tif"] and "too large" in failed["huge.png"]
    assert "transparen" in failed["rgba.png"]
    assert {p.relative_to(out).as_posix() for p in out.rglob("*")} >= {
        "good1.tif", "good1.json", "good1_steps.png", "good2.tif", "good2.json", "sub/good3.tif", "sub/good3.json",
    }
    assert not any(p.name.endswith(".part") for p in out.rglob("*"))
    assert _tree_digest(photo_folder) == before  # inputs untouched

    # the sidecar holds everything needed to reproduce the photo
    side = json.loads((out / "good1.json").read_text())
    assert side["input"] == str((photo_folder / "good1.tif").resolve()) and side["output"] == "good1.tif"
    assert len(side["edits"]) == 5 and all({"filter", "params", "units", "text"} <= set(e) for e in side["edits"])
    assert side["description"] == [e["text"] for e in side["edits"]]
    assert side["policy"]["filters"] == ["E", "G", "W", "S+", "T", "Ct", "BW", "C"]
    assert set(side["timings"]) == {"read_s", "decide_s", "apply_s", "write_s"}
    replay = np.clip(apply_edits(image_io.read_image(photo_folder / "good1.tif"), edits_from_json(side)), 0, 1)
    written = tifffile.imread(out / "good1.tif").astype(np.float32) / 65535.0
    assert np.abs(written - replay).max() <= 1.0 / 65535.0 + 1e-6


def test_refuses_unsafe_output_folders(retoucher, photo_folder, tmp_path):
    before = _tree_digest(photo_folder)
    good1 = (photo_folder / "good1.tif").read_bytes()
    with pytest.raises(RetouchError, match="input folder"):
        retouch_paths(retoucher, [photo_folder], photo_folder, progress=False)
    with pytest.raises(RetouchError, match="input folder"):
        retouch_paths(retoucher, [photo_folder], photo_folder / "sub" / "out", progress=False)
    with pytest.raises(RetouchError, match="holds input photos"):  # out = folder of an input file
        retouch_paths(retoucher, [photo_folder / "good1.tif"], photo_folder, progress=False)
    with pytest.raises(RetouchError, match="holds input photos"):
        retouch_paths(retoucher, [str(photo_folder / "good*.*")], photo_folder, progress=False)
    with pytest.raises(RetouchError, match="exclude each other"):
        retouch_paths(retoucher, [photo_folder], tmp_path / "o", overwrite=True, skip_existing=True, progress=False)
    assert not (photo_folder / "sub" / "out").exists()
    assert _tree_digest(photo_folder) == before
    # single files may be written to a subfolder of their folder
    done = retouch_paths(retoucher, [photo_folder / "good1.tif"], photo_folder / "retouched", progress=False)
    assert done.done == 1 and (photo_folder / "retouched" / "good1.tif").exists()
    assert (photo_folder / "good1.tif").read_bytes() == good1


def test_overwrite_and_skip_existing(retoucher, photo_folder, tmp_path):
    out = tmp_path / "out"
    good = [photo_folder / "good1.tif", photo_folder / "good2.png", photo_folder / "sub"]
    first = retouch_paths(retoucher, good, out, progress=False)
    assert first.done == 3 and first.exit_code == 0
    stamp = (out / "good1.tif").stat().st_mtime_ns
    with pytest.raises(RetouchError, match="already exist"):
        retouch_paths(retoucher, good, out, progress=False)
    # an interrupted run: good2 never finished (no sidecar), good3 never started
    (out / "good2.json").unlink()
    for p in (out / "good3.tif", out / "good3.json"):
        p.unlink()
    again = retouch_paths(retoucher, good, out, skip_existing=True, progress=False)
    assert (again.done, again.skipped) == (2, 1)
    assert (out / "good1.tif").stat().st_mtime_ns == stamp and (out / "good2.json").exists()
    forced = retouch_paths(retoucher, good, out, overwrite=True, progress=False)
    assert forced.done == 3


def test_samples_formats_and_globs(retoucher, photo_folder, tmp_path):
    out = tmp_path / "out"
    summary = retouch_paths(
        retoucher, [str(photo_folder / "good*.*")], out, format="jpeg", quality=80, samples=2, seed=3, progress=False
    )
    assert summary.done == 2 and summary.exit_code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["good1_s1.jpg", "good1_s1.json", "good1_s2.jpg", "good1_s2.json",
                     "good2_s1.jpg", "good2_s1.json", "good2_s2.jpg", "good2_s2.json"]
    s1 = json.loads((out / "good1_s1.json").read_text())
    assert s1["sample"] == 1 and isinstance(s1["seed"], int)
    # same run seed -> same per-photo results
    out2 = tmp_path / "out2"
    retouch_paths(retoucher, [str(photo_folder / "good*.*")], out2, format="png", samples=2, seed=3, progress=False)
    assert json.loads((out2 / "good1_s2.json").read_text())["edits"] == json.loads((out / "good1_s2.json").read_text())["edits"]
    with Image.open(out2 / "good1_s1.png") as im:
        assert im.mode == "RGB" and im.size == (64, 48)
    none = retouch_paths(retoucher, [str(tmp_path / "nothing*.tif")], tmp_path / "o3", progress=False)
    assert none.exit_code == 1 and "no files match" in none.failed[0].reason


def test_cli_exit_codes(policy_file, photo_folder, tmp_path):
    runner = CliRunner()
    good = [str(photo_folder / "good1.tif"), str(photo_folder / "sub")]
    res = runner.invoke(app, ["retouch", str(policy_file), *good, "-o", str(tmp_path / "a"), "-q"])
    assert res.exit_code == 0, res.output
    assert "done 2, skipped 0, failed 0" in res.output
    res = runner.invoke(app, ["retouch", str(policy_file), str(photo_folder), "-o", str(tmp_path / "b"), "-q", "--format", "png"])
    assert res.exit_code == 1 and "failed 7" in res.output and "gray.png" in res.output
    res = runner.invoke(app, ["retouch", str(policy_file), *good, "-o", str(tmp_path / "a"), "-q"])
    assert res.exit_code == 2 and "--overwrite" in res.output
    res = runner.invoke(app, ["retouch", str(tmp_path / "none.exposure"), *good, "-o", str(tmp_path / "c")])
    assert res.exit_code == 2 and "policy file not found" in res.output
    res = runner.invoke(app, ["retouch", str(policy_file), *good, "-o", str(tmp_path / "d"), "--format", "gif"])
    assert res.exit_code == 2


@pytest.mark.slow
def test_ray_gives_the_same_outputs(ray_session, retoucher, photo_folder, tmp_path):
    good = [photo_folder / "good1.tif", photo_folder / "good2.png", photo_folder / "sub", photo_folder / "gray.png"]
    local = retouch_paths(retoucher, good, tmp_path / "local", samples=2, seed=5, progress=False)
    remote = retouch_paths(retoucher, good, tmp_path / "ray", samples=2, seed=5, use_ray=True, progress=False)
    assert (local.done, len(local.failed)) == (remote.done, len(remote.failed)) == (3, 1)
    assert [r.reason for r in local.failed] == [r.reason for r in remote.failed]
    a, b = tmp_path / "local", tmp_path / "ray"
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files:
        if rel.suffix == ".json":
            ja, jb = json.loads((a / rel).read_text()), json.loads((b / rel).read_text())
            assert ja["edits"] == jb["edits"] and ja["seed"] == jb["seed"]
        else:
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_benchmark_report_section_helper(tmp_path):
    from benchmarks._report import replace_section, write_section

    text = "# Benchmarks\n\nintro\n\n## Filters\n\nfilter numbers\n\n## Retouch\n\nold\n\n## Training\n\nrl numbers\n"
    new = replace_section(text, "Retouch", "| a |\n|---|\n| 1 |")
    assert new == text.replace("old", "| a |\n|---|\n| 1 |")
    assert replace_section(new, "Serving", "x").endswith("rl numbers\n\n## Serving\n\nx\n")
    path = write_section("Retouch", "first", tmp_path / "b.md")
    write_section("Other", "keep", path)
    write_section("Retouch", "second", path)
    body = path.read_text()
    assert "second" in body and "first" not in body and "## Other\n\nkeep" in body


@pytest.mark.gpu
@pytest.mark.cupy
def test_cupy_backend_agrees(policy_file, retoucher):
    photo = _photo(300, 400, seed=4)
    ref, edits = retoucher.retouch(photo)
    gpu = Retoucher(policy_file, backend="cupy")
    assert gpu.backend == "cupy"
    out, gpu_edits = gpu.retouch(photo)
    assert gpu_edits == edits
    np.testing.assert_allclose(out, ref, atol=1e-4)


def test_python_api_is_exposed_at_package_level():
    import policies
    from policies.export import export_policy
    from policies.policy_file import load_policy
    from policies.retoucher import Retoucher

    assert policies.Retoucher is Retoucher and policies.load_policy is load_policy and policies.export_policy is export_policy
    with pytest.raises(AttributeError):
        policies.NoSuchThing  # noqa: B018
