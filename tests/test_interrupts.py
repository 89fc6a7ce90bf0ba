"""SIGINT / SIGTERM during training: the run checkpoints, says how to resume, exits 130 / 143, and
``--resume`` continues with identical state. The slow tests send real signals to real runs."""

from __future__ import annotations

import csv
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tune_configs.interrupts import StopSignals, TrainingInterrupted, _Abandon, resume_command

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- fast: the signal handling itself
def test_first_signal_requests_a_stop_instead_of_killing():
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    notices = []
    with StopSignals(notice=notices.append) as stop:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # the handler runs between bytecodes of the main thread
        assert stop.requested and stop.signum == signal.SIGTERM
        assert notices == ["SIGTERM received: finishing this iteration, then writing a checkpoint "
                           "(send it again to abandon the iteration)"]
    assert {sig: signal.getsignal(sig) for sig in before} == before
    with pytest.raises(_Abandon) as info, StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)  # the second one abandons the iteration under way
        time.sleep(0.05)
    assert info.value.signum == signal.SIGTERM and stop.signum == signal.SIGINT


def test_deferred_second_signal_abandons_after_the_shield():
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    stop = StopSignals()
    reached = []
    with pytest.raises(_Abandon) as info:
        with stop:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            with stop.shielded():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
                reached.append("end of shielded block")
    assert reached and info.value.signum == signal.SIGINT
    assert {sig: signal.getsignal(sig) for sig in before} == before  # restored
    # once the loop writes its last checkpoint, further signals are only reported
    notices = []
    with StopSignals(notice=notices.append) as stop:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        stop.finishing = True
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
    assert stop.signum == signal.SIGINT and "writing the checkpoint, then exiting" in notices[-1]


def test_exit_codes_and_the_resume_line():
    from tune_configs.data import DataSpec
    from tune_configs.recipes import get_recipe
    from tune_configs.settings import TrainSettings

    s = TrainSettings(DataSpec.demo(), get_recipe("demo"), results_dir="/r s", storage="/mnt/nfs/runs", num_gpus=1)
    exc = TrainingInterrupted(signal.SIGINT, 7, "/r s/demo/checkpoints/iter_000007", resume_command(s, "/r s/demo/checkpoints/iter_000007"))
    assert exc.exit_code == 130 and TrainingInterrupted(signal.SIGTERM, 1, None, None).exit_code == 143
    assert str(exc).splitlines() == [
        "SIGINT: stopped after iteration 7; checkpoint: /r s/demo/checkpoints/iter_000007",
        "Resume with: exposure train --resume '/r s/demo/checkpoints/iter_000007' --results-dir '/r s' --storage /mnt/nfs/runs --num-gpus 1",
    ]
    # from a storage URI: the resumed run writes back there by itself
    assert resume_command(s, "s3://b/runs/demo/checkpoints/iter_000007").endswith("--results-dir '/r s' --num-gpus 1")
    assert "no checkpoint" in str(TrainingInterrupted(signal.SIGTERM, 0, None, None))


# --------------------------------------------------------------------------- slow: real signals to real runs
TINY_PPO = ["--recipe", "demo-ppo", "--num-env-runners", "1", "--num-envs-per-runner", "8",
            "--config", "train_batch_size_per_learner=128", "--config", "minibatch_size=64", "--config", "num_epochs=1",
            "--config", "discriminator.n_critic_warmup=2", "--config", "discriminator.n_critic=1",
            "--config", "discriminator.batch_size=16"]
TINY_EXPOSURE = ["--algo", "exposure", "--num-env-runners", "1", "--config", "discriminator.n_critic_warmup=2"]


def _progress(run: Path) -> list[dict]:
    if not (run / "progress.csv").is_file():
        return []
    with open(run / "progress.csv", newline="") as f:
        return list(csv.DictReader(f))


def _interrupt(args: list[str], run: Path, sig: int, group: bool, env: dict | None = None, wait_iters: int = 2) -> tuple[int, str, int]:
    """Start ``exposure train ARGS`` (a long run: checkpoints only every 100 iterations), wait for
    ``wait_iters`` iterations in progress.csv, send ``sig`` (to the process group, as a terminal's Ctrl-C
    does, when ``group``); returns (exit status, stderr, iterations logged when it was sent)."""
    cmd = [sys.executable, "-m", "tune_configs.cli", "train", "--demo", "--stop-iters", "100", "--eval-every", "100",
           "--checkpoint-freq", "100", *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while len(_progress(run)) < wait_iters:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, f"no {wait_iters} iterations in 10 minutes"
            time.sleep(0.2)
        done = len(_progress(run))
        (os.killpg if group else os.kill)(proc.pid, sig)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:  # pragma: no cover - only when the test failed
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, err, done


def _tree(x):
    """Nested dicts / lists of tensors and arrays as plain numpy (for comparisons)."""
    import torch

    if isinstance(x, dict):
        return {k: _tree(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_tree(v) for v in x]
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return x


def _assert_same(a, b, where="state"):
    a, b = _tree(a), _tree(b)
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: {sorted(a)} != {sorted(b) if isinstance(b, dict) else b}"
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(np.asarray(b), a, err_msg=where)
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _resume_and_capture(monkeypatch, settings) -> tuple[dict, object]:
    """Run ``settings`` (a resume) in this process; returns the algorithm's and the critic's state
    right after the run loop restored them, and the run summary."""
    import ray

    import tune_configs.run_loop as run_loop

    captured = {}
    real = run_loop.restore_checkpoint

    def restore_and_capture(algo, disc, checkpoint):
        info = real(algo, disc, checkpoint)
        captured["algo"] = algo.get_state()
        captured["iteration"] = algo.training_iteration
        captured["disc"] = ray.get(disc.get_state.remote(True))
        captured["checkpoint"] = Path(checkpoint)
        return info

    monkeypatch.setattr(run_loop, "restore_checkpoint", restore_and_capture)
    summary = run_loop.run_training(settings)
    return captured, summary


def _assert_restored(captured: dict, ckpt: Path, iteration: int, exposure: bool) -> None:
    """The state the resumed run restored is the saved one: weights, optimisers, counters, critic."""
    import torch

    algo = captured["algo"]
    learner = algo["learner_group"]["learner"]
    saved_learner = pickle.loads((ckpt / "learner_group" / "learner" / "state.pkl").read_bytes())
    saved_module = pickle.loads((ckpt / "learner_group" / "learner" / "rl_module" / "default_policy" / "module_state.pkl").read_bytes())
    _assert_same(saved_module, learner["rl_module"]["default_policy"], "policy+value weights")
    assert any(k.startswith("pi.") for k in saved_module) and any(k.startswith("vf.") for k in saved_module)
    _assert_same(saved_learner["optimizer"], learner["optimizer"], "optimizers")
    assert all(o["state"] for o in saved_learner["optimizer"].values())  # Adam moments, not a fresh optimiser
    saved_algo = pickle.loads((ckpt / "algorithm_state.pkl").read_bytes())
    assert saved_algo["training_iteration"] == captured["iteration"] == iteration
    key = "env_runners--num_env_steps_sampled_lifetime"
    _assert_same(saved_algo["metrics_logger"]["stats"][key], algo["metrics_logger"]["stats"][key], "env step counter")
    if exposure:  # the exposure algorithm's state pool and sampling RNG, the learner's update RNG
        _assert_same(saved_algo["exposure_state_pool"], algo["exposure_state_pool"], "state pool")
        assert len(saved_algo["exposure_state_pool"]["pool"]["images"]) > 0
        _assert_same(saved_learner["exposure_generator"], learner["exposure_generator"], "learner RNG")
    saved_disc = torch.load(ckpt / "discriminator.pt", weights_only=False)
    disc = captured["disc"]
    for part in ("model", "optimizer", "rng", "train_calls", "total_updates", "iteration", "pool"):
        _assert_same(saved_disc[part], disc[part], f"critic {part}")
    assert saved_disc["train_calls"] >= 1 and len(saved_disc["pool"]["data"]) > 0


@pytest.mark.slow
def test_sigint_to_a_stored_ppo_run_checkpoints_and_resume_from_the_uri_continues(ray_session, tmp_path, monkeypatch):
    from tune_configs.commands.train_cmd import settings_from_options

    store = f"file://{tmp_path}/store"
    monkeypatch.setenv("EXPOSURE_RL_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "res" / "sig"
    status, err, done = _interrupt([*TINY_PPO, "--name", "sig", "--results-dir", str(tmp_path / "res"), "--storage", store],
                                   run, signal.SIGINT, group=True, env={"EXPOSURE_RL_CACHE": str(tmp_path / "cache")})
    assert status == 130, err
    k = len(_progress(run))
    assert k >= done >= 2
    ckpt_uri = f"{store}/sig/checkpoints/iter_{k:06d}"
    assert f"SIGINT: stopped after iteration {k}; checkpoint: {ckpt_uri}" in err
    line = re.search(r"Resume with: (.*)", err).group(1)
    assert line == f"exposure train --resume {ckpt_uri} --results-dir {tmp_path / 'res'}"
    stored = tmp_path / "store" / "sig"
    import json

    assert json.loads((stored / "checkpoints" / f"iter_{k:06d}" / "exposure_run.json").read_text())["iteration"] == k
    assert (stored / "progress.csv").read_text() == (run / "progress.csv").read_text()  # the logs went up too
    tb = sorted(p.name for p in (run / "tb").iterdir())
    assert tb and sorted(p.name for p in (stored / "tb").iterdir()) == tb and not (stored / "data").exists()
    for name in tb:  # flushed before the last copy: every event the run logged is in storage
        assert (stored / "tb" / name).read_bytes() == (run / "tb" / name).read_bytes()
    # resume from the storage URI on a "new machine" (another staging folder) for one more iteration
    s = settings_from_options(
        algo=None, demo=False, inputs=None, targets=None, fivek=None, fivek_limit=None, recipe=None, stop_iters=k + 1,
        stop_time=None, num_env_runners=None, num_envs_per_runner=None, num_gpus=0, checkpoint_freq=None, eval_every=None,
        resume=ckpt_uri, config=[], name=None, results_dir=tmp_path / "elsewhere", seed=0, dashboard=False,
    )
    s.progress = False
    captured, summary = _resume_and_capture(monkeypatch, s)
    assert captured["checkpoint"].parent == tmp_path / "cache" / "checkpoints" / captured["checkpoint"].parent.name
    _assert_restored(captured, stored / "checkpoints" / f"iter_{k:06d}", k, exposure=False)
    assert summary.iterations == k + 1 and summary.storage == f"{store}/sig"
    rows = _progress(stored)
    assert [int(r["iteration"]) for r in rows] == list(range(1, k + 2))  # counted on, each iteration once
    assert int(rows[-1]["env_steps"]) > int(rows[-2]["env_steps"])
    new = json.loads((stored / "checkpoints" / f"iter_{k + 1:06d}" / "exposure_run.json").read_text())
    assert new["iteration"] == k + 1 and new["env_steps"] == summary.env_steps
    assert pickle.loads((stored / "checkpoints" / f"iter_{k + 1:06d}" / "algorithm_state.pkl").read_bytes())["training_iteration"] == k + 1
    assert json.loads((stored / "summary.json").read_text())["iterations"] == k + 1


@pytest.mark.slow
def test_sigterm_to_an_exposure_run_checkpoints_everything_and_resume_is_identical(ray_session, tmp_path, monkeypatch):
    from tune_configs.commands.train_cmd import settings_from_options

    run = tmp_path / "sig"
    # 6 iterations: the critic is fed finished 5-step episodes only, so its fake pool fills from iteration 5
    status, err, done = _interrupt([*TINY_EXPOSURE, "--name", "sig", "--results-dir", str(tmp_path)], run, signal.SIGTERM,
                                   group=False, wait_iters=6)
    assert status == 143, err
    k = len(_progress(run))
    assert k >= done >= 6
    ckpt = run / "checkpoints" / f"iter_{k:06d}"
    assert f"SIGTERM: stopped after iteration {k}; checkpoint: {ckpt}" in err
    assert f"Resume with: exposure train --resume {ckpt} --results-dir {tmp_path}" in err
    s = settings_from_options(
        algo=None, demo=False, inputs=None, targets=None, fivek=None, fivek_limit=None, recipe=None, stop_iters=k + 1,
        stop_time=None, num_env_runners=None, num_envs_per_runner=None, num_gpus=0, checkpoint_freq=None, eval_every=None,
        resume=str(ckpt), config=[], name=None, results_dir=tmp_path, seed=0, dashboard=False,
    )
    assert s.recipe.algo == "exposure" and s.run_name == "sig"
    s.progress = False
    import shutil

    saved = tmp_path / "saved"
    shutil.copytree(ckpt, saved)  # the resumed run prunes old checkpoints
    captured, summary = _resume_and_capture(monkeypatch, s)
    _assert_restored(captured, saved, k, exposure=True)
    assert summary.iterations == k + 1
    assert [int(r["iteration"]) for r in _progress(run)] == list(range(1, k + 2))
    assert pickle.loads((run / "checkpoints" / f"iter_{k + 1:06d}" / "algorithm_state.pkl").read_bytes())["training_iteration"] == k + 1
