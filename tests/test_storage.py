"""``--storage``: a run's files copied to a folder or a pyarrow filesystem URI; resume from there (no Ray)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

pa_fs = pytest.importorskip("pyarrow.fs")

from tune_configs import storage as st  # noqa: E402
from tune_configs.checkpoints import resolve_checkpoint  # noqa: E402
from tune_configs.storage import RunMirror, Storage, download_checkpoint, open_storage  # noqa: E402


def fake_run(run: Path, iterations=(1, 2)) -> Path:
    """A run folder as the run loop leaves it (small stand-in files)."""
    (run / "data").mkdir(parents=True)
    (run / "data" / "inputs.npz").write_bytes(b"pack")
    (run / "discriminator_state" / "d").mkdir(parents=True)
    (run / "discriminator_state" / "d" / "discriminator.pt").write_bytes(b"actor")
    (run / "tb").mkdir()
    (run / "tb" / "events.out.tfevents.1").write_bytes(b"events")
    (run / "strips").mkdir()
    (run / "strips" / "val0.png").write_bytes(b"png")
    (run / "progress.csv").write_text("iteration,wall_s\n" + "".join(f"{i},{i}.0\n" for i in iterations))
    (run / ".progress.csv.x.part").write_text("temporary")
    for i in iterations:
        fake_checkpoint(run / "checkpoints" / f"iter_{i:06d}", i)
    return run


def fake_checkpoint(path: Path, iteration: int, payload: bytes = b"weights") -> Path:
    (path / "learner_group" / "learner").mkdir(parents=True)
    (path / "learner_group" / "learner" / "state.pkl").write_bytes(payload)
    (path / "discriminator.pt").write_bytes(b"critic")
    (path / "exposure_run.json").write_text(json.dumps({"iteration": iteration, "name": path.parent.parent.name}))
    return path


def tree(fs, base: str) -> dict[str, bytes]:
    """Every file under ``base`` on ``fs``: relative path -> content."""
    out = {}
    for info in fs.get_file_info(pa_fs.FileSelector(base, recursive=True, allow_not_found=True)):
        if info.type == pa_fs.FileType.File:
            with fs.open_input_stream(info.path) as f:
                out[info.path[len(base):].lstrip("/")] = f.read()
    return out


# --------------------------------------------------------------------------- opening a target
def test_open_storage_takes_paths_and_uris_and_rejects_bad_ones_in_one_line(tmp_path, monkeypatch):
    local = open_storage(tmp_path / "a")
    assert isinstance(local.fs, pa_fs.LocalFileSystem) and local.path == str(tmp_path / "a") and str(local) == str(tmp_path / "a")
    uri = open_storage(f"file://{tmp_path}/b/")
    assert isinstance(uri.fs, pa_fs.LocalFileSystem) and uri.path == f"{tmp_path}/b" and str(uri) == f"file://{tmp_path}/b"
    assert str(uri.child("run", "checkpoints")) == f"file://{tmp_path}/b/run/checkpoints"
    monkeypatch.chdir(tmp_path)
    assert open_storage("rel/dir").path == str(tmp_path / "rel" / "dir")  # relative: from the working folder
    mock = open_storage("mock:///bucket/runs")
    assert type(mock.fs).__name__ == "_MockFileSystem" and str(mock) == "mock://bucket/runs"
    same = Storage(pa_fs.LocalFileSystem(), "/x")
    assert open_storage(same) is same
    for bad, match in [("bogus://x/y", "Unrecognized filesystem type"), ("", "empty"), ("hdfs://nohost:1/p", "hdfs://nohost:1/p")]:
        with pytest.raises(ValueError, match=match) as info:
            open_storage(bad)
        assert "\n" not in str(info.value) and str(info.value).startswith("--storage")


# --------------------------------------------------------------------------- mirroring a run
@pytest.mark.parametrize("kind", ["subtree", "mock", "file_uri"])
def test_mirror_copies_logs_and_checkpoints_and_prunes(tmp_path, kind):
    run = fake_run(tmp_path / "local" / "demo")
    if kind == "subtree":  # a SubTreeFileSystem (how a bucket prefix looks to pyarrow)
        (tmp_path / "remote").mkdir()
        target = Storage(pa_fs.SubTreeFileSystem(str(tmp_path / "remote"), pa_fs.LocalFileSystem()), "runs")
    elif kind == "mock":  # pyarrow's in-memory mock filesystem
        target = Storage(pa_fs._MockFileSystem(), "bucket/runs")
    else:
        target = open_storage(f"file://{tmp_path}/remote/runs")
    mirror = RunMirror(run, target.child("demo"))
    assert not mirror.same_place and not mirror.holds_run()
    assert mirror.sync_logs() == 3 and mirror.sync_logs() == 0  # only what changed is copied again
    for i in (1, 2):
        mirror.put_checkpoint(run / "checkpoints" / f"iter_{i:06d}")
    got = tree(target.fs, target.path + "/demo")
    assert got["progress.csv"] == (run / "progress.csv").read_bytes() and got["tb/events.out.tfevents.1"] == b"events"
    assert got["strips/val0.png"] == b"png" and got["checkpoints/iter_000002/learner_group/learner/state.pkl"] == b"weights"
    assert json.loads(got["checkpoints/iter_000001/exposure_run.json"])["iteration"] == 1
    assert not any(k.startswith(("data/", "discriminator_state/")) or "/." in "/" + k for k in got), sorted(got)
    assert mirror.holds_run()
    with open(run / "progress.csv", "a") as f:
        f.write("3,3.0\n")
    assert mirror.sync_logs() == 1
    assert tree(target.fs, target.path + "/demo")["progress.csv"].endswith(b"3,3.0\n")
    # a named checkpoint is replaced in place; pruning keeps the newest iter_* and every named one
    fake_checkpoint(run / "checkpoints" / "best", 1, b"old")
    mirror.put_checkpoint(run / "checkpoints" / "best")
    import shutil

    shutil.rmtree(run / "checkpoints" / "best")
    fake_checkpoint(run / "checkpoints" / "best", 2, b"new")
    mirror.put_checkpoint(run / "checkpoints" / "best")
    mirror.prune(keep=1)
    got = tree(target.fs, target.path + "/demo")
    ckpts = sorted({k.split("/")[1] for k in got if k.startswith("checkpoints/")})
    assert ckpts == ["best", "iter_000002"]
    assert got["checkpoints/best/learner_group/learner/state.pkl"] == b"new"
    assert json.loads(got["checkpoints/best/exposure_run.json"])["iteration"] == 2


def test_object_store_upload_puts_the_run_info_last(tmp_path, monkeypatch):
    """Where a folder cannot be renamed into place (s3, gs), a reader tells a complete checkpoint
    by its run info: it is uploaded after every other file."""
    fsspec = pytest.importorskip("fsspec")
    memory = pa_fs.PyFileSystem(pa_fs.FSSpecHandler(fsspec.filesystem("memory")))
    assert not st._renames(memory)
    order = []
    real = st._put_file
    monkeypatch.setattr(st, "_put_file", lambda local, target: (order.append(Path(local).name), real(local, target)))
    ckpt = fake_checkpoint(tmp_path / "run" / "checkpoints" / "iter_000004", 4)
    st.put_checkpoint(ckpt, Storage(memory, "/bucket/run/checkpoints/iter_000004"))
    assert order[-1] == "exposure_run.json" and sorted(order) == ["discriminator.pt", "exposure_run.json", "state.pkl"]
    assert st.find_checkpoint(Storage(memory, "/bucket/run")).path == "/bucket/run/checkpoints/iter_000004"


def test_a_storage_folder_that_is_the_run_folder_is_left_alone(tmp_path):
    run = fake_run(tmp_path / "results" / "demo")
    mirror = RunMirror(run, open_storage(tmp_path / "results").child("demo"))
    assert mirror.same_place and mirror.sync_logs() == 0 and not mirror.holds_run()
    mirror.put_checkpoint(run / "checkpoints" / "iter_000002")
    mirror.prune(keep=1)
    assert (run / "checkpoints" / "iter_000001").is_dir() and (run / "checkpoints" / "iter_000002" / "exposure_run.json").is_file()


# --------------------------------------------------------------------------- resuming from storage
def test_resume_downloads_the_newest_complete_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv(st.CACHE_ENV, str(tmp_path / "cache"))
    remote = fake_run(tmp_path / "remote" / "demo", iterations=(3, 4))
    (remote / "checkpoints" / "iter_000005" / "learner_group").mkdir(parents=True)  # half uploaded: no run info
    local = resolve_checkpoint(f"file://{tmp_path}/remote/demo")
    assert local.name == "iter_000004" and str(local).startswith(str(tmp_path / "cache"))
    assert json.loads((local / "exposure_run.json").read_text())["iteration"] == 4
    assert (local / "learner_group" / "learner" / "state.pkl").read_bytes() == b"weights"
    mtime = (local / "discriminator.pt").stat().st_mtime_ns
    assert download_checkpoint(f"file://{tmp_path}/remote/demo/checkpoints/iter_000004") == local  # cached
    assert (local / "discriminator.pt").stat().st_mtime_ns == mtime
    root = st.storage_of_checkpoint(f"file://{tmp_path}/remote/demo")
    assert str(root) == f"file://{tmp_path}/remote"
    with pytest.raises(ValueError, match="not a checkpoint") as info:
        resolve_checkpoint(f"file://{tmp_path}/remote/nothing")
    assert "\n" not in str(info.value)


def test_hydrate_fetches_the_stored_logs_a_new_machine_lacks(tmp_path):
    remote = fake_run(tmp_path / "remote" / "demo", iterations=(1, 2, 3))
    mirror = RunMirror(tmp_path / "fresh" / "demo", open_storage(tmp_path / "remote").child("demo"))
    assert mirror.hydrate() == 3  # progress.csv, tb, strips; no checkpoints, data or temporary files
    assert (tmp_path / "fresh" / "demo" / "progress.csv").read_text() == (remote / "progress.csv").read_text()
    assert not (tmp_path / "fresh" / "demo" / "checkpoints").exists() and not (tmp_path / "fresh" / "demo" / "data").exists()
    assert mirror.sync_logs() == 0  # fetched files count as copied
    with open(remote / "progress.csv", "a") as f:  # a longer local copy is kept and goes up
        f.write("4,4.0\n")
    (tmp_path / "fresh" / "demo" / "progress.csv").write_text((remote / "progress.csv").read_text() + "5,5.0\n")
    (remote / "progress.csv").write_text("iteration,wall_s\n1,1.0\n")
    again = RunMirror(tmp_path / "fresh" / "demo", mirror.target)
    assert again.hydrate() == 0
    assert (tmp_path / "fresh" / "demo" / "progress.csv").read_text().endswith("4,4.0\n5,5.0\n")
    assert again.sync_logs() == 1 and (remote / "progress.csv").read_text().endswith("4,4.0\n5,5.0\n")


def test_mirror_for_refuses_to_write_a_new_run_over_a_stored_one(tmp_path):
    from tune_configs.data import DataSpec
    from tune_configs.recipes import get_recipe
    from tune_configs.settings import TrainSettings

    fake_run(tmp_path / "store" / "demo")
    s = TrainSettings(DataSpec.demo(), get_recipe("demo"), name="demo", results_dir=tmp_path / "res", storage=tmp_path / "store")
    with pytest.raises(ValueError, match="already holds a run; continue it with --resume"):
        st.mirror_for(s)
    other = TrainSettings(DataSpec.demo(), get_recipe("demo"), name="other", results_dir=tmp_path / "res", storage=tmp_path / "store")
    assert st.mirror_for(other).target.path == str(tmp_path / "store" / "other")
    resumed = TrainSettings(DataSpec.demo(), get_recipe("demo"), name="demo", results_dir=tmp_path / "res",
                            resume=f"file://{tmp_path}/store/demo")
    assert str(st.mirror_for(resumed).target) == f"file://{tmp_path}/store/demo"  # back where it came from
    assert st.mirror_for(TrainSettings(DataSpec.demo(), get_recipe("demo"), results_dir=tmp_path)) is None


def test_tune_gets_the_storage_as_its_storage_path(tmp_path):
    from tune_configs.data import DataSpec
    from tune_configs.recipes import get_recipe
    from tune_configs.settings import TrainSettings
    from tune_configs.tune_sweep import trial_storage, tune_storage

    s = TrainSettings(DataSpec.demo(), get_recipe("demo"), name="sweep", results_dir=tmp_path / "res")
    assert tune_storage(s) == {"storage_path": str((tmp_path / "res" / "sweep").resolve())} and trial_storage(s) is None
    s.storage = f"file://{tmp_path}/store"
    kw = tune_storage(s)
    assert kw["storage_path"] == f"{tmp_path}/store/sweep" and isinstance(kw["storage_filesystem"], pa_fs.LocalFileSystem)
    assert str(trial_storage(s)) == f"file://{tmp_path}/store/sweep/trials"


# --------------------------------------------------------------------------- logs of a resumed run
def test_resumed_logger_drops_what_a_killed_attempt_logged_after_the_checkpoint(tmp_path):
    from tune_configs.run_logging import RunLogger

    run = tmp_path / "run"
    run.mkdir()
    (run / "progress.csv").write_text("iteration,wall_s\n1,1.0\n2,2.0\n3,3.0\n4,4.0\n")
    (run / "hi_curve.csv").write_text("wall_s,iteration,hi\n1.0,2,30.0\n2.0,4,31.0\n")
    logger = RunLogger(run, tensorboard=True, progress=False, resumed_at=2)
    logger.row({"iteration": 3, "wall_s": 3.5})
    logger.scalars({"perf/x": 1.0}, 3)
    logger.close()
    with open(run / "progress.csv", newline="") as f:
        assert [(r["iteration"], r["wall_s"]) for r in csv.DictReader(f)] == [("1", "1.0"), ("2", "2.0"), ("3", "3.5")]
    assert (run / "hi_curve.csv").read_text().splitlines() == ["wall_s,iteration,hi", "1.0,2,30.0"]


# --------------------------------------------------------------------------- fails before Ray
def test_a_bad_storage_uri_is_one_line_before_ray_starts(tmp_path, monkeypatch):
    import ray
    from typer.testing import CliRunner

    import tune_configs.run_loop as run_loop
    from tune_configs.cli import app

    def forbidden(*a, **k):
        raise AssertionError("Ray was started for a configuration that should have been rejected")

    was = ray.is_initialized()
    monkeypatch.setattr(run_loop, "init_ray", forbidden)
    monkeypatch.setattr(ray, "init", forbidden)
    res = CliRunner().invoke(app, ["train", "--demo", "--stop-iters", "1", "--results-dir", str(tmp_path), "--storage", "bogus://bucket/runs"])
    lines = [line for line in res.output.splitlines() if line.strip() and not line.startswith("Preparing")]
    assert res.exit_code == 2, res.output
    assert len(lines) == 1 and lines[0].startswith("error: --storage bogus://bucket/runs: not a usable storage location")
    res = CliRunner().invoke(app, ["train", "--resume", "bogus://bucket/runs/demo", "--results-dir", str(tmp_path)])
    assert res.exit_code == 2 and res.output.strip().startswith("error: --resume bogus://bucket/runs/demo: not a usable")
    assert ray.is_initialized() == was
