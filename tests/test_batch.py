"""tune_configs.batch.pipeline: the pipelined batch writes what the sequential one writes, keeps every safety
guarantee, and holds a bounded number of photos in memory whatever the folder size."""

from __future__ import annotations

import hashlib
import threading
import time
import weakref
from pathlib import Path

import numpy as np
import pytest
import tifffile

from exposure_env import io as image_io
from policies.export import export_policy
from policies.retoucher import Retoucher
from tune_configs.batch import pipeline as batch
from tune_configs.batch import stages as R
from tune_configs.batch.jobs import RetouchError
from tune_configs.batch.retouch import retouch_paths

from .policy_fixtures import tiny_module


@pytest.fixture(scope="module")
def retoucher(tmp_path_factory):
    module = tiny_module(seed=5, vivid=True)
    return Retoucher(export_policy(module, tmp_path_factory.mktemp("policy") / "policy.exposure"), backend="numpy")


def _photo(h, w, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([0.4 * x / w + 0.05, 0.3 * y / h + 0.1, 0.2 * (1 - x / w) + 0.02], axis=-1)
    return np.clip(base + rng.normal(0, 0.02, base.shape), 0, 1).astype(np.float32)


def _digest(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def folder(tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for i in range(5):
        image_io.write_image(src / f"p{i}.tif", _photo(60 + 7 * i, 80, i), bits=16, space="linear")
    image_io.write_image(src / "sub" / "q.png", _photo(50, 70, 9) ** 0.45, bits=8)
    (src / "broken.tif").write_bytes(b"II*\x00garbage")
    (src / "empty.jpg").write_bytes(b"")
    return src


def _without_timings(folder: Path) -> dict:
    """File digests, sidecars compared without their (run-dependent) timings."""
    import json

    out = {}
    for rel, digest in _digest(folder).items():
        if rel.endswith(".json"):
            data = json.loads((folder / rel).read_text())
            data.pop("timings")
            out[rel] = data
        else:
            out[rel] = digest
    return out


@pytest.mark.parametrize("kwargs", [
    dict(format="tiff16", strip=True),
    dict(format="jpeg", quality=85, samples=2, seed=4),
    dict(format="tiff16", compression="deflate"),
])
def test_pipelined_writes_the_same_files_as_sequential(retoucher, folder, tmp_path, kwargs):
    before = _digest(folder)
    seq = retouch_paths(retoucher, [folder], tmp_path / "seq", pipeline=False, progress=False, **kwargs)
    pipe = retouch_paths(retoucher, [folder], tmp_path / "pipe", progress=False, **kwargs)
    assert (seq.done, pipe.done) == (6, 6)
    assert [(r.input, r.status, r.reason) for r in seq.results] == [(r.input, r.status, r.reason) for r in pipe.results]
    assert {Path(r.input).name for r in pipe.failed} == {"broken.tif", "empty.jpg"}
    assert all("\n" not in r.reason and Path(r.input).name in r.reason for r in pipe.failed)
    assert _without_timings(tmp_path / "seq") == _without_timings(tmp_path / "pipe")
    assert not any(p.name.endswith(".part") for p in (tmp_path / "pipe").rglob("*"))
    assert _digest(folder) == before  # inputs untouched


def test_sequential_tiff_is_rendered_straight_into_the_file(retoucher, folder, tmp_path, monkeypatch):
    """Uncompressed TIFF: the fused pass fills the (mapped) output file, no encoder runs; with the
    fused kernel off the encoder runs instead. Both write the bytes the pipeline writes."""
    assert R.renders_into_file(retoucher, R.Options(format="tiff16"))
    assert not R.renders_into_file(retoucher, R.Options(format="tiff16", compression="lzw"))
    assert not R.renders_into_file(retoucher, R.Options(format="jpeg"))
    pipe = retouch_paths(retoucher, [folder], tmp_path / "pipe", progress=False)

    def no_encoder(*args, **kwargs):
        raise AssertionError("the encoder ran")

    with monkeypatch.context() as m:
        m.setattr(R.image_io, "write_image", no_encoder)
        direct = retouch_paths(retoucher, [folder], tmp_path / "direct", pipeline=False, progress=False)
    with monkeypatch.context() as m:
        m.setattr(type(retoucher), "fills_samples", lambda self: False)
        assert not R.renders_into_file(retoucher, R.Options(format="tiff16"))
        encoded = retouch_paths(retoucher, [folder], tmp_path / "encoded", pipeline=False, progress=False)
    assert pipe.done == direct.done == encoded.done == 6
    assert _without_timings(tmp_path / "direct") == _without_timings(tmp_path / "pipe") == _without_timings(tmp_path / "encoded")


def test_a_failed_render_into_the_file_leaves_nothing(retoucher, folder, tmp_path, monkeypatch):
    real = R.render_sample

    def render(retoucher, image, decision, k, opts, out=None):
        if image.shape[0] == 60 + 7 * 3:  # p3: fails after filling part of the file
            out[: len(out) // 2] = 1
            raise ValueError("image contains NaN or Inf values (3 samples)")
        return real(retoucher, image, decision, k, opts, out)

    monkeypatch.setattr(R, "render_sample", render)
    summary = retouch_paths(retoucher, [folder], tmp_path / "out", pipeline=False, progress=False)
    reasons = {Path(r.input).name: r.reason for r in summary.failed}
    assert summary.done == 5 and "NaN" in reasons["p3.tif"] and "\n" not in reasons["p3.tif"]
    assert not any(p.name.startswith("p3") or p.name.endswith(".part") for p in (tmp_path / "out").rglob("*"))


def test_compression_is_applied_and_checked(retoucher, folder, tmp_path):
    retouch_paths(retoucher, [folder / "p1.tif"], tmp_path / "z", compression="zstd", progress=False)
    retouch_paths(retoucher, [folder / "p1.tif"], tmp_path / "n", progress=False)
    with tifffile.TiffFile(tmp_path / "z" / "p1.tif") as tif:
        assert tif.pages.first.compression.name == "ZSTD"
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "z" / "p1.tif"), tifffile.imread(tmp_path / "n" / "p1.tif"))
    with pytest.raises(RetouchError, match="compression"):
        retouch_paths(retoucher, [folder], tmp_path / "bad", format="jpeg", compression="lzw", progress=False)
    assert not (tmp_path / "bad").exists()


def test_overwrite_and_skip_existing_in_the_pipeline(retoucher, folder, tmp_path):
    out = tmp_path / "out"
    good = [folder / "p0.tif", folder / "p1.tif", folder / "sub"]
    assert retouch_paths(retoucher, good, out, progress=False).done == 3
    stamp = (out / "p0.tif").stat().st_mtime_ns
    with pytest.raises(RetouchError, match="already exist"):
        retouch_paths(retoucher, good, out, progress=False)
    (out / "p1.json").unlink()  # interrupted: p1 never finished
    again = retouch_paths(retoucher, good, out, skip_existing=True, progress=False)
    assert (again.done, again.skipped) == (1, 2) and (out / "p0.tif").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("direct", [True, False], ids=["into-file", "encoder"])
def test_a_failing_stage_fails_only_its_photo(retoucher, folder, tmp_path, monkeypatch, direct):
    """Uncompressed TIFF is rendered into the (mapped) output file and published by the encoding
    stage; with the fused kernel off, the encoder writes it. A failure in either stage fails
    only its photo and leaves no partial file."""
    if not direct:
        monkeypatch.setattr(type(retoucher), "fills_samples", lambda self: False)
    saver = "save_target" if direct else "save_sample"
    real_save, real_render = getattr(batch, saver), R.render_sample

    def save(retoucher, job, *args):
        if job.input.endswith("p2.tif"):
            raise OSError("disk full")
        return real_save(retoucher, job, *args)

    def render(retoucher, image, decision, k, opts, out=None):
        if image.shape[0] == 60 + 7 * 3:  # p3
            raise MemoryError
        return real_render(retoucher, image, decision, k, opts, out)

    monkeypatch.setattr(batch, saver, save)
    monkeypatch.setattr(R, "render_sample", render)
    monkeypatch.setattr(batch, "render_sample", render)
    summary = retouch_paths(retoucher, [folder], tmp_path / "out", progress=False)
    reasons = {Path(r.input).name: r.reason for r in summary.failed}
    assert summary.done == 4 and set(reasons) == {"p2.tif", "p3.tif", "broken.tif", "empty.jpg"}
    assert "OSError: disk full" in reasons["p2.tif"] and "out of memory" in reasons["p3.tif"]
    assert not (tmp_path / "out" / "p2.json").exists() and not (tmp_path / "out" / "p3.tif").exists()
    assert not (tmp_path / "out" / "p2.tif").exists()  # never published
    assert not any(p.name.endswith(".part") for p in (tmp_path / "out").rglob("*"))


@pytest.mark.parametrize("direct", [True, False], ids=["into-file", "encoder"])
def test_memory_is_bounded_by_slots_not_by_the_folder(retoucher, tmp_path, monkeypatch, direct):
    if not direct:
        monkeypatch.setattr(type(retoucher), "fills_samples", lambda self: False)
    src = tmp_path / "many"
    src.mkdir()
    for i in range(14):
        image_io.write_image(src / f"m{i:02d}.tif", _photo(64, 96, i), bits=16, space="linear")
    lock = threading.Lock()
    live = {"float": 0, "samples": 0}
    peak = dict(live)

    alive: dict[int, weakref.finalize] = {}

    def track(kind, arr):  # counts distinct arrays alive (a reused buffer counts once)
        def gone():
            with lock:
                live[kind] -= 1

        with lock:
            if id(arr) in alive and alive[id(arr)].alive:
                return arr
            live[kind] += 1
            peak[kind] = max(peak[kind], live[kind])
            alive[id(arr)] = weakref.finalize(arr, gone)
        return arr

    real_read, real_render = R._read, R.render_sample
    monkeypatch.setattr(batch, "_read", lambda job, opts: track("float", real_read(job, opts)))
    for module in (batch, R):  # the encoder path renders in the pipeline, the file path in FileTarget
        monkeypatch.setattr(module, "render_sample", lambda *a, **kw: track("samples", real_render(*a, **kw)))

    def slow(real):
        def save(*args):
            time.sleep(0.03)  # a slow disk: the encoder is the bottleneck, so upstream stages must wait
            return real(*args)

        return save

    for name in ("save_sample", "save_target"):
        monkeypatch.setattr(batch, name, slow(getattr(batch, name)))
    summary = retouch_paths(retoucher, [src], tmp_path / "out", progress=False)
    assert summary.done == 14 and 0 < peak["samples"]
    assert peak["float"] <= batch.FLOAT_SLOTS and peak["samples"] <= batch.SAMPLE_SLOTS, peak
