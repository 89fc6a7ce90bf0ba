"""policies.export: the .exposure file round trip, checkpoints, and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from policies.export import export_policy
from policies.policy_file import DROPOUT_FILE, ONNX_FILE, POLICY_FILE, PolicyFileError, load_policy, read_metadata
from tune_configs.cli import app
from tune_configs.run_layout import checkpoint_info

from .policy_fixtures import tiny_module


@pytest.fixture(scope="module")
def module():
    return tiny_module(seed=3).eval()


@pytest.fixture(scope="module")
def exported(module, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "policy.exposure"
    return export_policy(module, out, onnx=True, metadata={"data": "unit test", "iterations": 0})


def _inputs(n=5, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.random((n, 64, 64, 3), dtype=np.float32)
    state = np.concatenate([np.zeros((n, 3)), rng.random((n, 8)) < 0.5], axis=1).astype(np.float32)
    state[:, 2] = np.arange(n) % 5
    return image, state


def test_round_trip_gives_identical_actions(module, exported):
    policy = load_policy(exported)
    image, state = _inputs(5)  # traced at batch 2: the batch is dynamic
    logits, actions = policy(image, state)
    with torch.no_grad():
        ref_logits, ref_means, _ = module.policy_heads(torch.from_numpy(image), torch.from_numpy(state))
    np.testing.assert_array_equal(logits, ref_logits.numpy())
    np.testing.assert_array_equal(actions, ref_means.clamp(-1, 1).numpy())
    assert actions.shape == (5, 8, 24) and np.abs(actions).max() <= 1.0
    # each filter's parameters beyond its own count are zero (Exposure uses 1 of 24)
    assert np.all(actions[:, 0, 1:] == 0.0)
    # the greedy choice agrees with the module's own policy_outputs
    with torch.no_grad():
        g_logits, g_mean = module.policy_outputs(torch.from_numpy(image), torch.from_numpy(state))
    f = logits.argmax(-1)
    np.testing.assert_array_equal(actions[np.arange(5), f], g_mean.clamp(-1, 1).numpy())


def test_dropout_trace_is_stochastic_and_seedable(exported):
    policy = load_policy(exported)
    assert policy.has_dropout and policy.metadata["dropout"] == {"rate": 0.5, "stochastic_trace": True}
    image, state = _inputs(4)
    torch.manual_seed(7)
    a1 = policy(image, state, stochastic=True)[1]
    torch.manual_seed(7)
    a2 = policy(image, state, stochastic=True)[1]
    a3 = policy(image, state, stochastic=True)[1]
    np.testing.assert_array_equal(a1, a2)
    assert not np.array_equal(a1, a3)
    det = policy(image, state)[1]
    assert not np.array_equal(a1, det)


def test_onnx_backend_agrees(exported):
    ts, ox = load_policy(exported), load_policy(exported, backend="onnx")
    image, state = _inputs(3, seed=1)
    for a, b in zip(ts(image, state), ox(image, state)):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_metadata_describes_the_policy(exported):
    meta = read_metadata(exported)
    assert [f["short_name"] for f in meta["filters"]] == ["E", "G", "W", "S+", "T", "Ct", "BW", "C"]
    ev = meta["filters"][0]["ranges"][0]
    assert (ev["low"], ev["high"], ev["unit"]) == (-3.5, 3.5, "EV")
    assert meta["thumb_size"] == 64 and meta["state_dim"] == 11 and meta["max_steps"] == 5
    assert meta["input_space"] == "linear" and meta["action_width"] == 24
    assert meta["training"] == {"data": "unit test", "iterations": 0}
    assert set(meta["versions"]) >= {"exposure-rl", "torch", "ray"} and meta["versions"]["torch"]
    assert np.asarray(meta["param_log_std"]).shape == (8, 24)
    assert sorted(meta["files"]) == sorted([POLICY_FILE, DROPOUT_FILE, ONNX_FILE])


def test_checkpoint_layouts(module, tmp_path):
    image, state = _inputs(2)
    ref = load_policy(export_policy(module, tmp_path / "mem.exposure"))(image, state)
    # an RLModule checkpoint folder, and the layout of an RLlib algorithm checkpoint
    module.save_to_path(tmp_path / "module_ckpt")
    algo = tmp_path / "run" / "checkpoints" / "iter_000012"  # the layout of `exposure train`
    module.save_to_path(algo / "learner_group" / "learner" / "rl_module" / "default_policy")
    (algo / "exposure_run.json").write_text(json.dumps({"iteration": 12, "algo": "ppo", "data": {"kind": "demo"}}))
    scores = {"average": 71.5}
    (tmp_path / "run" / "summary.json").write_text(json.dumps({"checkpoint": str(algo), "final_scores": scores, "baseline_scores": {}}))
    for ckpt in (tmp_path / "module_ckpt", algo):
        out = export_policy(ckpt, tmp_path / f"{ckpt.name}.exposure", metadata=checkpoint_info(ckpt))
        got = load_policy(out)(image, state)
        for a, b in zip(ref, got):
            np.testing.assert_array_equal(a, b)
    meta = read_metadata(tmp_path / "iter_000012.exposure")
    training = meta["training"]
    assert training["iterations"] == 12 and training["algo"] == "ppo" and training["data"] == {"kind": "demo"}
    assert training["checkpoint"] == str(algo.resolve()) and training["metrics"]["validation"] == scores


def test_load_needs_no_ray(exported):
    """Loading and applying a policy (the reader and the retoucher's inference API) never imports Ray."""
    code = (
        "import sys; import numpy as np; from policies.policy_file import load_policy; "
        "from policies.retoucher import Retoucher; "
        f"p = load_policy({str(exported)!r}); "
        "out, edits = Retoucher(p, backend='numpy').retouch(np.full((40, 56, 3), 0.3, np.float32)); "
        "assert out.shape == (40, 56, 3) and len(edits) == 5, (out.shape, edits); "
        "assert not any(m == 'ray' or m.startswith('ray.') for m in sys.modules), 'ray imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def _assert_one_line(exc_info, fragment: str):
    msg = str(exc_info.value)
    assert "\n" not in msg and fragment in msg, msg


def _rewrite_zip(src: Path, dst: Path, replace: dict):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            if name in replace:
                if replace[name] is not None:
                    zout.writestr(name, replace[name])
            else:
                zout.writestr(name, zin.read(name))
        for name, data in replace.items():
            if name not in zin.namelist() and data is not None:
                zout.writestr(name, data)


def test_corrupt_files_give_one_line_errors(exported, tmp_path):
    data = exported.read_bytes()
    meta = json.loads(zipfile.ZipFile(exported).read("metadata.json"))
    cases = {}
    cases["missing.exposure"] = None
    (tmp_path / "random.exposure").write_bytes(np.random.default_rng(0).bytes(4096))
    cases["random.exposure"] = "not an .exposure policy file"
    (tmp_path / "truncated.exposure").write_bytes(data[: len(data) // 2])
    cases["truncated.exposure"] = "not an .exposure policy file"
    _rewrite_zip(exported, tmp_path / "nometa.exposure", {"metadata.json": None})
    cases["nometa.exposure"] = "no metadata.json"
    _rewrite_zip(exported, tmp_path / "format.exposure", {"metadata.json": json.dumps({**meta, "format": "other"})})
    cases["format.exposure"] = "not an .exposure policy file"
    _rewrite_zip(exported, tmp_path / "future.exposure", {"metadata.json": json.dumps({**meta, "format_version": 99})})
    cases["future.exposure"] = "newer than this exposure-rl supports"
    bad_filter = {**meta, "filters": [{**meta["filters"][0], "short_name": "Vignette"}] + meta["filters"][1:]}
    _rewrite_zip(exported, tmp_path / "filter.exposure", {"metadata.json": json.dumps(bad_filter)})
    cases["filter.exposure"] = "unknown filter"
    _rewrite_zip(exported, tmp_path / "net.exposure", {POLICY_FILE: b"garbage" * 100})
    cases["net.exposure"] = f"corrupt {POLICY_FILE}"
    fewer = {**meta, "filters": meta["filters"][:4], "state_dim": 7}
    _rewrite_zip(exported, tmp_path / "shape.exposure", {"metadata.json": json.dumps(fewer)})
    cases["shape.exposure"] = "fails on a test input"
    for name, fragment in cases.items():
        path = tmp_path / name
        with pytest.raises(PolicyFileError) as info:
            load_policy(path)
        _assert_one_line(info, str(path))
        _assert_one_line(info, fragment or "not found")
    with pytest.raises(PolicyFileError) as info:
        load_policy(tmp_path)
    _assert_one_line(info, "is a folder")
    assert issubclass(PolicyFileError, ValueError)


def test_incompatible_checkpoints(module, tmp_path):
    with pytest.raises(PolicyFileError) as info:
        export_policy(tmp_path / "nothing", tmp_path / "x.exposure")
    _assert_one_line(info, "checkpoint not found")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PolicyFileError) as info:
        export_policy(tmp_path / "empty", tmp_path / "x.exposure")
    _assert_one_line(info, "no RLModule found")
    ckpt = tmp_path / "ckpt"
    module.save_to_path(ckpt)
    (ckpt / "module_state.pkl").write_bytes((ckpt / "module_state.pkl").read_bytes()[:100])
    with pytest.raises(PolicyFileError) as info:
        export_policy(ckpt, tmp_path / "x.exposure")
    _assert_one_line(info, "cannot load the RLModule")
    with pytest.raises(PolicyFileError) as info:
        export_policy(torch.nn.Linear(2, 2), tmp_path / "x.exposure")
    _assert_one_line(info, "incompatible module")
    assert not (tmp_path / "x.exposure").exists()


def test_export_cli(module, tmp_path):
    module.save_to_path(tmp_path / "ckpt")
    runner = CliRunner()
    res = runner.invoke(app, ["export", str(tmp_path / "ckpt"), "-o", str(tmp_path / "p.exposure"), "--info", '{"data": "x"}'])
    assert res.exit_code == 0, res.output
    assert "filters E G W S+ T Ct BW C" in res.output
    assert read_metadata(tmp_path / "p.exposure")["training"]["data"] == "x"
    res = runner.invoke(app, ["export", str(tmp_path / "nope"), "-o", str(tmp_path / "q.exposure")])
    assert res.exit_code == 2 and "checkpoint not found" in res.output


@pytest.mark.slow
def test_real_algorithm_checkpoint(ray_session, tmp_path):
    """An RLlib PPO checkpoint (``algo.save_to_path``) exports to the same policy as its module."""
    from exposure_env.datasets import ImagePack
    from tune_configs.algorithms import build_config

    from .policy_fixtures import TINY_MODEL

    pack = ImagePack(np.random.default_rng(0).random((4, 80, 80, 3), dtype=np.float32))
    pack_path = pack.save(tmp_path / "pack.npz")
    env_config = {"inputs": str(pack_path), "scorer": {"kind": "statistics", "targets": str(pack_path)}}
    config = build_config("ppo", env_config, model_config=dict(TINY_MODEL), num_env_runners=0, num_envs_per_env_runner=2)
    algo = config.build_algo()
    try:
        algo.save_to_path(str(tmp_path / "ckpt"))
        module = algo.get_module()
    finally:
        algo.stop()
    policy = load_policy(export_policy(tmp_path / "ckpt", tmp_path / "p.exposure"))
    image, state = _inputs(3)
    with torch.no_grad():
        logits, means, _ = module.eval().policy_heads(torch.from_numpy(image), torch.from_numpy(state))
    got_logits, got_actions = policy(image, state)
    np.testing.assert_allclose(got_logits, logits.numpy(), atol=1e-6)
    np.testing.assert_allclose(got_actions, means.clamp(-1, 1).numpy(), atol=1e-6)
    assert policy.metadata["dropout"]["rate"] == 0.5
