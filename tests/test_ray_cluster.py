"""Training on a Ray cluster: joining by address, placement by resources, data through the object
store, a critic that survives the loss of its node.

Fast tests check the settings, the placement rules and the error for an address that does not
answer (Ray never started). Slow tests run a real multi-node Ray (``ray.cluster_utils.Cluster``:
a head with no CPU and worker nodes as separate raylets) in a process of their own with the
training driver joining it by address from another (``tests/cluster_driver.py``).
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_training import tiny_recipe
from tune_configs.data import DataSpec
from tune_configs.settings import TrainSettings, check_settings, cluster_address

ROOT = Path(__file__).resolve().parents[1]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- fast: no Ray
def test_cluster_address_comes_from_the_option_then_ray_address(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert cluster_address(None) is None and cluster_address("local") is None
    assert cluster_address("10.0.0.5:6379") == "10.0.0.5:6379"
    monkeypatch.setenv("RAY_ADDRESS", "auto")
    assert cluster_address(None) == "auto" and cluster_address("10.0.0.5:6379") == "10.0.0.5:6379"
    assert cluster_address("local") is None  # --address local: a private Ray even with RAY_ADDRESS set
    assert TrainSettings(DataSpec.demo(), tiny_recipe()).joins_cluster


def test_joining_lifts_the_local_cpu_and_gpu_limits(monkeypatch, tmp_path):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    big = tiny_recipe(num_env_runners=64)
    with pytest.raises(ValueError, match="needs 64 CPUs; this machine has .*--address"):
        check_settings(TrainSettings(DataSpec.demo(), big, results_dir=tmp_path))
    check_settings(TrainSettings(DataSpec.demo(), big, num_gpus=4, results_dir=tmp_path, address="10.0.0.5:6379"))
    with pytest.raises(ValueError, match="cluster has its own"):
        check_settings(TrainSettings(DataSpec.demo(), big, results_dir=tmp_path, address="auto", dashboard=True))


def test_placement_by_resources(monkeypatch):
    from tune_configs.wiring import CRITIC_GPU_SHARE, placement_for

    monkeypatch.delenv("RAY_ADDRESS", raising=False)

    def place(gpus, address=None):
        return placement_for(TrainSettings(DataSpec.demo(), tiny_recipe(), num_gpus=gpus, address=address))

    private = place(1)  # as before: the learner in the driver on the local GPU, the critic on no reserved CPU
    assert (private.num_learners, private.learner_gpus, private.critic_cpus, private.critic_gpus, private.critic_keeper) == (
        0, 1.0, 0.0, 0.0, False)
    cpu = place(0, "auto")  # a cluster: the critic takes a CPU somewhere, its state kept by the driver's node
    assert (cpu.num_learners, cpu.critic_cpus, cpu.critic_gpus, cpu.critic_keeper) == (0, 1.0, 0.0, True)
    gpu = place(1, "auto")  # a learner actor and the critic on GPU nodes, one GPU between them
    assert gpu.num_learners == 1 and gpu.critic_gpus == CRITIC_GPU_SHARE
    assert math.isclose(gpu.learner_gpus + gpu.critic_gpus, 1.0) and gpu.learner_cpus == 1.0
    small = place(0.2, "auto")
    assert math.isclose(small.learner_gpus, 0.1) and math.isclose(small.critic_gpus, 0.1)
    assert place(3, "auto").learner_gpus == 1.0  # one learner uses one GPU


def test_tune_trials_reserve_what_the_run_places(monkeypatch):
    from tune_configs.wiring import trial_bundles

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    r = tiny_recipe(num_env_runners=2)
    assert trial_bundles(TrainSettings(DataSpec.demo(), r)) == [{"CPU": 1.0}] * 3
    assert trial_bundles(TrainSettings(DataSpec.demo(), r, address="auto")) == [{"CPU": 2.0}, {"CPU": 1.0}, {"CPU": 1.0}]
    gpu = trial_bundles(TrainSettings(DataSpec.demo(), r, address="auto", num_gpus=1))
    assert gpu[0] == {"CPU": 2.0, "GPU": 0.2} and gpu[1]["GPU"] == pytest.approx(0.8) and len(gpu) == 4


def test_cluster_algorithm_config_has_a_gpu_learner_actor(monkeypatch):
    from tune_configs.wiring import build_algorithm_config

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    env = {"inputs": "unused.npz", "scorer": {"kind": "paired"}}
    s = TrainSettings(DataSpec.demo(), tiny_recipe(num_env_runners=12), num_gpus=1, address="10.0.0.5:6379")
    cfg = build_algorithm_config(s, env)
    assert cfg.num_learners == 1 and math.isclose(cfg.num_gpus_per_learner, 0.8) and cfg.num_cpus_per_learner == 1
    assert cfg.num_env_runners == 12 and cfg.num_cpus_per_env_runner == 1
    local = build_algorithm_config(TrainSettings(DataSpec.demo(), tiny_recipe()), env)
    assert local.num_learners == 0 and local.num_gpus_per_learner == 0


def test_env_config_carries_object_refs_not_paths():
    from tune_configs.rllib_env import load_pack
    from tune_configs.wiring import shared_env_config

    inputs, targets = object(), object()
    disc = {"inputs": "/run/data/inputs.npz", "scorer": {"kind": "discriminator", "name": "d"}, "max_steps": 3}
    stats = {"inputs": "/run/data/inputs.npz", "scorer": {"kind": "statistics", "targets": "/run/data/targets.npz"}}
    assert shared_env_config(disc, inputs, targets) == {**disc, "inputs": inputs}
    shared = shared_env_config(stats, inputs, targets)
    assert shared["inputs"] is inputs and shared["scorer"]["targets"] is targets
    assert stats["scorer"]["targets"] == "/run/data/targets.npz"  # the record keeps its paths
    with pytest.raises(ValueError, match="ObjectRef or a .npz path"):
        load_pack(3)


def test_unreachable_address_is_one_line_before_anything_starts(tmp_path, monkeypatch):
    """`exposure train --address HOST:PORT` with nothing there: exit 2, one line, no data prepared, no Ray."""
    import ray
    from typer.testing import CliRunner

    from tune_configs.cli import app

    def forbidden(*a, **k):
        raise AssertionError("Ray was started although the address does not answer")

    monkeypatch.setattr(ray, "init", forbidden)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    port = _closed_port()
    res = CliRunner().invoke(app, ["train", "--demo", "--stop-iters", "1", "--address", f"127.0.0.1:{port}",
                                   "--results-dir", str(tmp_path)])
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 2, res.output
    assert lines[-1].startswith(f"error: --address 127.0.0.1:{port}: no Ray cluster answers there") and len(lines) <= 2
    assert not list(tmp_path.rglob("*.npz"))  # failed before the data was prepared
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")  # the environment variable is heard too
    res = CliRunner().invoke(app, ["train", "--demo", "--stop-iters", "1", "--results-dir", str(tmp_path)])
    assert res.exit_code == 2 and "no Ray cluster answers there" in res.output


# --------------------------------------------------------------------------- slow: the session's Ray
@pytest.mark.slow
def test_critic_restarts_from_its_keeper_with_the_pack_from_the_object_store(ray_session):
    """No state_dir: the keeper holds the state; the pack is an ObjectRef the caller no longer holds."""
    import time

    import numpy as np

    from exposure_env.datasets.pack import ImagePack
    from rewards.actor import get_or_create_discriminator, keeper_name, kill_discriminator

    ray = ray_session
    rng = np.random.default_rng(0)
    ref = ray.put(ImagePack(rng.uniform(0.3, 0.9, (6, 80, 80, 3)).astype(np.float32)))
    tiny = dict(channels=(8, 8, 8), out_channels=16, hidden=16, batch_size=4, pool_size=64, seed=5)
    h = get_or_create_discriminator("d_keeper", ref, tiny, keeper=True)
    del ref  # held for the restart by rewards.actor, not by the caller
    try:
        ray.get(h.add_fake.remote(rng.random((8, 64, 64, 3), dtype=np.float32)))
        trained = ray.get(h.train.remote(11, 100))
        weights = ray.get(h.get_weights.remote())
        first = ray.get(h.ready.remote())
        assert first["restored_from"] is None and ray.get_actor(keeper_name("d_keeper"))
        ray.kill(h, no_restart=False)  # the process dies; Ray re-runs __init__
        deadline = time.monotonic() + 120
        while (info := ray.get(h.ready.remote()))["pid"] == first["pid"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert info["pid"] != first["pid"] and info["restored_from"] == "keeper"
        assert info["train_calls"] == 1 and info["total_updates"] == trained["total_updates"] > 0
        for k, v in ray.get(h.get_weights.remote()).items():
            np.testing.assert_array_equal(v, weights[k], err_msg=k)
        ray.get(h.add_fake.remote(rng.random((4, 64, 64, 3), dtype=np.float32)))
        assert ray.get(h.train.remote(12, 100))["train_calls"] == 2  # it samples its targets: the pack came back
    finally:
        kill_discriminator("d_keeper")
    deadline = time.monotonic() + 60  # the keeper goes with it (ray.kill is asynchronous)
    while time.monotonic() < deadline:
        try:
            ray.get_actor(keeper_name("d_keeper"))
        except ValueError:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the keeper outlived kill_discriminator")


# --------------------------------------------------------------------------- slow: a multi-node Ray
def _scenario(name: str, out: Path, timeout: float = 1500) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.run([sys.executable, "-m", "tests.cluster_driver", "cluster", name, str(out)], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"status {proc.returncode}\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1][len("RESULT "):])


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_training_joins_a_cluster_and_reads_no_pack_file(tmp_path):
    r = _scenario("join", tmp_path)
    workers, where = set(r["workers"]), r["placement"]
    assert r["iterations"] == 1 and r["env_steps"] >= 128 and r["hi"] is not None and math.isfinite(r["hi"])
    # 3 env runners, each with a CPU of the cluster (the head has none): all on worker nodes
    assert len(where["env_runners"]) == 3 and set(where["env_runners"]) <= workers
    assert where["critic"] in workers and where["driver"] == r["head"] and where["learners"] == [r["head"]]
    assert set(where["nodes"]) <= workers | {r["head"]} and all(ip == "127.0.0.1" for ip in where["nodes"].values())
    # the pack files were gone before any env runner or the critic started: they read the object store
    assert r["packs_deleted"] == ["inputs.npz", "targets.npz", "val.npz"] and not r["data_dir_exists"]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_critic_node_lost_mid_run_the_critic_comes_back_with_its_state(tmp_path):
    r = _scenario("critic-loss", tmp_path)
    before, after = r["before"], r["after"]
    assert r["iterations"] == 3 and r["env_steps"] > 0
    assert before["node_id"] in r["workers"] and before["train_calls"] == 1 and before["total_updates"] > 0
    # restarted by Ray on the node that replaced the lost one, from the state its keeper held
    assert after["node_id"] == r["new_node"] and after["pid"] != before["pid"]
    assert after["restored_from"] == "keeper"
    assert after["train_calls"] == before["train_calls"] + 1 and after["total_updates"] > before["total_updates"]
