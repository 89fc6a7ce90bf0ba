"""Cluster launch files (deploy/): the `ray up` config passes the autoscaler's own validation, the
KubeRay RayJob manifests are well-formed and run this project's commands, token auth stays on."""

from __future__ import annotations

import copy
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
CLUSTER = DEPLOY / "ray-cluster.yaml"
RAYJOBS = {"train": DEPLOY / "rayjob-train.yaml", "retouch": DEPLOY / "rayjob-retouch.yaml"}


def _cluster() -> dict:
    return yaml.safe_load(CLUSTER.read_text())


def _ray_image_tag() -> str:
    import sys

    import ray

    return f"{ray.__version__}-py{sys.version_info.major}{sys.version_info.minor}"


def test_no_launch_file_turns_token_auth_off():
    files = sorted(DEPLOY.iterdir())
    assert {f.name for f in files} >= {"ray-cluster.yaml", "rayjob-train.yaml", "rayjob-retouch.yaml", "Dockerfile"}
    for f in files:
        text = f.read_text()
        assert "RAY_AUTH_MODE=disabled" not in text and "mode: disabled" not in text, f
        assert "0.0.0.0" not in text, f  # no dashboard or service opened to every interface


def test_ray_up_config_passes_the_autoscalers_validation():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(_cluster())  # what `ray up` does before launching anything
    validate_config(config)
    nodes = config["available_node_types"]
    head = nodes[config["head_node_type"]]
    workers = {k: v for k, v in nodes.items() if k != config["head_node_type"]}
    assert head["resources"] == {"CPU": 0}
    assert [k for k, v in workers.items() if v["resources"].get("GPU", 0) >= 1] == ["gpu_worker"]
    assert [k for k, v in workers.items() if "GPU" not in v["resources"] and v["resources"]["CPU"] > 0] == ["cpu_worker"]
    assert all(v["max_workers"] >= v.get("min_workers", 0) for v in workers.values())
    assert sum(v.get("min_workers", 0) for v in workers.values()) <= config["max_workers"]
    # the project is synced and installed on every node; Ray's version is the one the project pins
    assert config["file_mounts"]["/home/ray/exposure-rl"] == "."
    assert any("/home/ray/exposure-rl" in c and "pip install" in c for c in config["setup_commands"])
    assert config["docker"]["image"] == f"rayproject/ray:{_ray_image_tag()}-gpu"
    # token auth: the token on every node, Ray started in token mode, dashboard on loopback
    assert config["file_mounts"]["/home/ray/.ray/auth_token"] == "~/.ray/auth_token"
    assert "--env RAY_AUTH_MODE=token" in config["docker"]["run_options"]
    for commands in (config["head_start_ray_commands"], config["worker_start_ray_commands"]):
        start = [c for c in commands if "ray start" in c]
        assert len(start) == 1 and "RAY_AUTH_MODE=token" in start[0]
    assert "--dashboard-host=127.0.0.1" in config["head_start_ray_commands"][-1]


def test_the_autoscalers_validation_rejects_a_broken_copy():
    """The check above can fail: the same validation refuses a node type without node_config."""
    import jsonschema
    from ray.autoscaler._private.util import prepare_config, validate_config

    broken = copy.deepcopy(_cluster())
    del broken["available_node_types"]["gpu_worker"]["node_config"]
    with pytest.raises(jsonschema.ValidationError, match="node_config"):
        validate_config(prepare_config(broken))


def _containers(pod_template: dict) -> list[dict]:
    return pod_template["spec"]["containers"]


def _cli_options(command: str) -> set[str]:
    """Every option name of ``exposure COMMAND``."""
    import typer

    from tune_configs.cli import app

    click_command = typer.main.get_command(app).commands[command]
    return {opt for p in click_command.params for opt in getattr(p, "opts", [])}


@pytest.mark.parametrize("command", sorted(RAYJOBS))
def test_rayjob_manifest_runs_the_project_on_a_token_cluster(command):
    docs = list(yaml.safe_load_all(RAYJOBS[command].read_text()))
    assert len(docs) == 1
    job = docs[0]
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    spec = job["spec"]
    argv = shlex.split(spec["entrypoint"])
    assert argv[:2] == ["exposure", command] and argv[argv.index("--address") + 1] == "auto"
    flags = {a for a in argv if a.startswith("--")}
    assert flags <= _cli_options(command), flags - _cli_options(command)  # options `exposure` really has
    assert spec["shutdownAfterJobFinishes"] is True
    cluster = spec["rayClusterSpec"]
    import ray

    assert cluster["rayVersion"] == ray.__version__
    assert cluster["authOptions"] == {"mode": "token"}
    groups = [("head", cluster["headGroupSpec"])] + [(g["groupName"], g) for g in cluster["workerGroupSpecs"]]
    assert [name for name, _ in groups] == ["head", "gpu", "cpu"]
    for name, group in groups:
        containers = _containers(group["template"])
        assert containers and isinstance(group["rayStartParams"], dict), name
        for c in containers:
            assert c["image"] == "exposure-rl:0.1.0", name
            res = c["resources"]
            assert res["requests"] == res["limits"] and {"cpu", "memory"} <= set(res["limits"]), name
            for env in c.get("env", []):
                assert not (env["name"] == "RAY_AUTH_MODE" and env.get("value") != "token"), name
        # the data volume: on every pod for training, on the head only for retouching (only the
        # driver touches the photo folders; photos reach the workers through the object store)
        mounted = name == "head" or command == "train"
        assert all(({"name": "data", "mountPath": "/data"} in c.get("volumeMounts", [])) == mounted for c in containers), name
        volumes = group["template"]["spec"].get("volumes")
        assert volumes == ([{"name": "data", "persistentVolumeClaim": {"claimName": "exposure-data"}}] if mounted else None), name
        if name != "head":
            assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], name
    gpu = _containers(dict(groups)["gpu"]["template"])[0]["resources"]["limits"]
    assert gpu["nvidia.com/gpu"] == "1"
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"


def test_dockerfile_builds_on_the_projects_ray_and_copies_what_exists():
    lines = [line.strip() for line in (DEPLOY / "Dockerfile").read_text().splitlines()]
    assert f"FROM rayproject/ray:{_ray_image_tag()}-gpu" in lines
    sources = [word for line in lines if line.startswith("COPY") for word in line.split()[2:-1]]
    assert {"pyproject.toml", "README.md", "exposure_env", "rewards", "policies", "tune_configs"} <= set(sources)
    assert all((ROOT / s).exists() for s in sources), sources
