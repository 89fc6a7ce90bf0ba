"""tune_configs.batch.ray_data: a Ray Data retouch over a multi-node cluster writes what the local run
writes, with the same safety; its stages work from the photo's bytes, never from its path."""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image
from typer.testing import CliRunner

from exposure_env import io as image_io
from policies.export import export_policy
from policies.retoucher import Retoucher
from tune_configs.batch import ray_stages
from tune_configs.batch.jobs import Job, RetouchError
from tune_configs.batch.options import Options
from tune_configs.batch.ray_data import RayDataOptions, _write
from tune_configs.batch.retouch import retouch_paths
from tune_configs.cli import app

from .policy_fixtures import tiny_module
from .test_retoucher import _photo


def _digest(folder: Path) -> dict:
    """Every file's bytes (hash); JSON records without their run-dependent timings."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            rel = p.relative_to(folder).as_posix()
            if p.suffix == ".json":
                record = json.loads(p.read_text())
                assert set(record.pop("timings")) == {"read_s", "decide_s", "apply_s", "write_s"}
                out[rel] = record
            else:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory):
    return export_policy(tiny_module(seed=5, vivid=True), tmp_path_factory.mktemp("policy") / "policy.exposure")


@pytest.fixture
def photos(tmp_path):
    """A few small photos (16-bit TIFF, 8-bit PNG, JPEG in a subfolder), a corrupt one, a grayscale one."""
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    image_io.write_image(src / "a.tif", _photo(48, 64, 1), bits=16, space="linear")
    image_io.write_image(src / "b.png", _photo(40, 56, 2) ** 0.45, bits=8)
    image_io.write_image(src / "sub" / "c.jpg", _photo(50, 50, 3) ** 0.45)
    full = (src / "a.tif").read_bytes()
    (src / "corrupt.tif").write_bytes(full[: len(full) // 3])
    Image.fromarray(np.full((20, 20), 128, np.uint8), "L").save(src / "gray.png")
    return src


# ------------------------------------------------------------------ stages, without Ray
def _row_table(job: Job, data: bytes) -> pa.Table:
    return pa.table({"input": [job.input], "base": [job.base], "key": [job.key],
                     "data": pa.array([data], pa.large_binary()), "error": [""], "seconds": [0.0]})


def test_stages_work_from_the_bytes_not_the_path(policy_file, photos, tmp_path, monkeypatch):
    """Stages 2-4 given a photo's bytes under a path that does not exist on this 'node' produce
    the local run's files (suffixes after the output stem) and never write the output folder."""
    import ray

    retoucher = Retoucher(policy_file, backend="numpy")
    opts = Options(strip=True, policy_file=str(policy_file), backend="numpy")
    local = retouch_paths(retoucher, [photos / "a.tif"], tmp_path / "local", strip=True, progress=False)
    assert local.done == 1
    job = Job("/nowhere/in/a.tif", str(tmp_path / "remote" / "a"), "a")  # the driver's paths
    monkeypatch.setattr(ray, "get", lambda ref: policy_file.read_bytes())  # the object store, stubbed
    monkeypatch.setattr(ray_stages, "_POLICIES", {})

    class Ref:
        def hex(self):
            return "policy-ref"

    box = (Ref(),)
    table = ray_stages.thumbnails(_row_table(job, (photos / "a.tif").read_bytes()), opts, 64)
    assert table["error"].to_pylist() == [""] and len(table["thumb"][0].as_py()) == 3 * 64 * 64 * 3 * 4  # 3 views of 4:3
    table = ray_stages.PolicyActor(box, opts)(table)
    assert "thumb" not in table.column_names and pickle.loads(table["decision"][0].as_py()).edits
    table = ray_stages.render_encode(table, opts, box, 1)
    assert table.column_names == list(ray_stages.RESULT_COLUMNS) and table["error"].to_pylist() == [""]
    files = dict(pickle.loads(table["files"][0].as_py()))
    assert list(files) == [".tif", "_steps.png", ".json"]  # the record last
    assert not (tmp_path / "remote").exists()
    assert files[".tif"] == (tmp_path / "local" / "a.tif").read_bytes()
    assert files["_steps.png"] == (tmp_path / "local" / "a_steps.png").read_bytes()
    assert json.loads(files[".json"])["input"] == "/nowhere/in/a.tif"

    # a bad photo fails with the local reason, naming the input path, not the staged copy
    bad = ray_stages.thumbnails(_row_table(job, (photos / "gray.png").read_bytes()), opts, 64)
    assert bad["error"][0].as_py().startswith("/nowhere/in/a.tif: ") and "staging" not in bad["error"][0].as_py()
    passed = ray_stages.render_encode(ray_stages.PolicyActor(box, opts)(bad), opts, box, 1)
    assert passed["error"].to_pylist() == bad["error"].to_pylist() and passed["files"].to_pylist() == [b""]


def test_driver_writes_only_planned_outputs(tmp_path):
    opts = Options(format="png")
    job = Job(str(tmp_path / "in.png"), str(tmp_path / "out" / "p"), "p")
    assert _write(job, opts, pickle.dumps([(".png", b"x"), (".json", b"{}")])) == [job.base + ".png", job.base + ".json"]
    with pytest.raises(RetouchError, match="not an output this run planned"):
        _write(job, opts, pickle.dumps([("/../../escape.png", b"x")]))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p.json", "p.png"]


def test_ray_options_are_checked():
    with pytest.raises(RetouchError, match="at least 1"):
        RayDataOptions(actors=0).check()
    with pytest.raises(RetouchError, match="render_cpus"):
        RayDataOptions(render_cpus=0).check()
    with pytest.raises(RetouchError, match="must not be negative"):
        RayDataOptions(actor_gpus=-1).check()
    RayDataOptions().check()


# ------------------------------------------------------------------ on a multi-node cluster
@pytest.fixture(scope="module")
def cluster():
    """A head and 2 worker nodes (separate raylets), 1 CPU each, loopback only, token
    authentication on, no dashboard (:func:`tune_configs.ray_session.local_cluster`). A Ray this
    test session had started is shut down first and started again (as tests/conftest.py does) afterwards."""
    ray = pytest.importorskip("ray")
    from tune_configs.ray_session import local_cluster

    was_running = ray.is_initialized()
    if was_running:
        ray.shutdown()
    c = local_cluster(head={"object_store_memory": 1 << 29}, workers=[{"object_store_memory": 1 << 29}] * 2)
    c.wait_for_nodes()
    yield c
    if ray.is_initialized():
        ray.shutdown()
    c.shutdown()
    if was_running:
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=1 << 30, logging_level=logging.ERROR, log_to_driver=False)


def _spy(stage: str, fn, folder: Path):
    """``fn`` that first notes the node it runs on in ``folder`` (shipped by value to the workers)."""

    def noted(*args, **kwargs):
        import uuid

        import ray

        (folder / f"{stage}-{uuid.uuid4().hex}").write_text(ray.get_runtime_context().get_node_id())
        return fn(*args, **kwargs)

    return noted


@pytest.mark.slow
def test_ray_data_on_a_cluster_writes_the_local_files(cluster, policy_file, photos, tmp_path, monkeypatch):
    import ray

    nodes = tmp_path / "nodes"
    nodes.mkdir()
    for stage in ("read_bytes", "render_encode"):
        monkeypatch.setattr(ray_stages, stage, _spy(stage, getattr(ray_stages, stage), nodes))
    before = _digest(photos)
    retoucher = Retoucher(policy_file, backend="numpy")
    moved = tmp_path / "gone.exposure"  # the policy reaches the cluster as bytes: its file may go
    policy_file.rename(moved)
    try:
        kw = dict(samples=2, seed=7, strip=True, sidecars="darktable", progress=False)
        local = retouch_paths(retoucher, [photos], tmp_path / "local", **kw)
        remote = retouch_paths(retoucher, [photos], tmp_path / "ray", address=cluster.address, **kw)
    finally:
        moved.rename(policy_file)
    assert not ray.is_initialized()  # the run joined the cluster and left it
    ran = {}
    for note in nodes.iterdir():
        ran.setdefault(note.name.split("-")[0], []).append(note.read_text())
    head = cluster.head_node.node_id
    assert len(ran["read_bytes"]) == 5 and set(ran["read_bytes"]) == {head}  # files are read on the driver's node
    assert len(ran["render_encode"]) == 5 and set(ran["render_encode"]) - {head}  # photos rendered elsewhere
    assert (local.done, remote.done) == (3, 3)
    assert [(r.input, r.status, r.reason) for r in local.results] == [(r.input, r.status, r.reason) for r in remote.results]
    reasons = {Path(r.input).name: r.reason for r in remote.failed}
    assert set(reasons) == {"corrupt.tif", "gray.png"} and "grayscale" in reasons["gray.png"]
    assert all("\n" not in r and r.startswith(str(photos)) for r in reasons.values())
    a, b = _digest(tmp_path / "local"), _digest(tmp_path / "ray")
    assert len(a) == 3 * 2 * 4 and a == b  # 3 photos x 2 samples x (photo, strip, .xmp, record)
    assert not any(".part" in p.name for p in (tmp_path / "ray").rglob("*"))
    assert _digest(photos) == before  # inputs never written

    # existing outputs: refused without --overwrite (nothing touched), skipped with --skip-existing
    stamp = {p: p.stat().st_mtime_ns for p in (tmp_path / "ray").rglob("*")}
    with pytest.raises(RetouchError, match="already exist"):
        retouch_paths(retoucher, [photos], tmp_path / "ray", address=cluster.address, **kw)
    (tmp_path / "ray" / "b_s2.json").unlink()  # an interrupted run: b never finished
    again = retouch_paths(retoucher, [photos], tmp_path / "ray", address=cluster.address, skip_existing=True, **kw)
    assert (again.done, again.skipped, len(again.failed)) == (1, 2, 2)
    assert _digest(tmp_path / "ray") == a and _digest(photos) == before
    assert all(p.stat().st_mtime_ns == t for p, t in stamp.items() if p.exists() and not p.name.startswith("b_"))


@pytest.mark.slow
def test_cli_ray_joins_the_cluster_in_ray_address(cluster, policy_file, photos, tmp_path, monkeypatch):
    nodes = tmp_path / "nodes"
    nodes.mkdir()
    monkeypatch.setattr(ray_stages, "render_encode", _spy("render_encode", ray_stages.render_encode, nodes))
    monkeypatch.setenv("RAY_ADDRESS", cluster.address)
    out = tmp_path / "out"
    args = ["retouch", str(policy_file), str(photos / "a.tif"), str(photos / "gray.png"), "-o", str(out), "-q"]
    res = CliRunner().invoke(app, [*args, "--ray"])
    assert res.exit_code == 1, res.output
    assert "done 1, skipped 0, failed 1" in res.output and "gray.png" in res.output
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "a.tif"]
    cluster_nodes = {n.node_id for n in cluster.list_all_nodes()}
    assert {p.read_text() for p in nodes.iterdir()} <= cluster_nodes  # ran on the cluster, not on a private Ray
    res = CliRunner().invoke(app, [*args, "--address", cluster.address])
    assert res.exit_code == 2 and "--overwrite" in res.output
