"""Processes of their own for the Ray cluster and security tests (``python -m tests.cluster_driver``).

Each scenario runs in fresh interpreters so that its Ray (a private one, or a multi-node
``ray.cluster_utils.Cluster`` under its own ``RAY_TMPDIR``) never meets the test session's Ray
nor another Ray user of the machine; it prints ``RESULT <json>`` as its last line. A cluster
scenario is two processes, as on a real cluster: this one holds the cluster (``cluster
SCENARIO OUT``) and starts the training driver (``drive SCENARIO ADDRESS OUT``), which joins it
by address; the driver asks for a node's removal through a file in OUT.

``private``      start a private Ray the way runs do (:func:`tune_configs.ray_session.connect_ray`,
                 with the dashboard), print its addresses and process id, wait for stdin to close
``join``         a head with no CPU and two 2-CPU worker nodes; a tiny PPO run joins by address
                 with 3 env runners (more than this machine's CPUs); the data folder is deleted
                 right after the driver put the packs into the object store
``critic-loss``  a head with no CPU and two 1-CPU workers; after iteration 1 the critic's node is
                 removed (and a fresh node added, as an autoscaler would); the run goes on
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: Cluster scenarios: the worker nodes' ``add_node`` arguments (the head has no CPU: the driver's node).
WORKERS = {"join": [{"num_cpus": 2}, {"num_cpus": 2}], "critic-loss": [{"num_cpus": 1}, {"num_cpus": 1}]}
REMOVE_REQUEST, REMOVED = "remove_node.txt", "node_removed.txt"
WAIT_S = 300.0


def _tiny_settings(out: Path, name: str, address: str, **recipe_changes):
    from tests.test_training import tiny_recipe
    from tune_configs.data import DataSpec
    from tune_configs.settings import TrainSettings

    recipe = tiny_recipe(**recipe_changes)
    return TrainSettings(DataSpec.demo(), recipe, name=name, results_dir=out, progress=False, address=address)


def _wait_for(path: Path, timeout: float = WAIT_S) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout:.0f} s")
        time.sleep(0.2)
    return path.read_text().strip()


# --------------------------------------------------------------------------- the cluster's process
def hold_cluster(scenario: str, out: Path) -> dict:
    """Start the scenario's cluster, run its driver, serve its node-removal request."""
    from tune_configs.ray_session import local_cluster, loopback_only

    out.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="xr", dir="/tmp")  # short: Ray's socket paths
    cluster = local_cluster(head={"num_cpus": 0}, workers=WORKERS[scenario], temp_dir=tmp)
    ids = {"head": cluster.head_node.node_id, "workers": [n.node_id for n in cluster.worker_nodes]}
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    try:
        driver = subprocess.Popen([sys.executable, "-m", "tests.cluster_driver", "drive", scenario, cluster.address, str(out)],
                                  stdout=subprocess.PIPE, text=True, env=env)
        request = out / REMOVE_REQUEST
        while driver.poll() is None:
            if request.exists() and not (out / REMOVED).exists():
                victim = next(n for n in cluster.worker_nodes if n.node_id == request.read_text().strip())
                cluster.remove_node(victim)  # the node is lost ...
                with loopback_only():  # ... and a new one joins, as an autoscaler would
                    new = cluster.add_node(num_cpus=1, object_store_memory=256 << 20, include_dashboard=False)
                (out / REMOVED).write_text(new.node_id)
            time.sleep(0.2)
        lines = [line for line in driver.stdout.read().splitlines() if line.startswith("RESULT ")]
        if driver.returncode != 0 or not lines:
            raise RuntimeError(f"the driver exited with status {driver.returncode}")
        return {**ids, **json.loads(lines[-1][len("RESULT "):])}
    finally:
        cluster.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- the driver's process
def drive_join(address: str, out: Path) -> dict:
    """3 env runners (more than this machine's CPUs); the packs deleted once in the object store."""
    import tune_configs.wiring as wiring
    from exposure_env.system import usable_cpus
    from tune_configs.run_loop import run_training

    s = _tiny_settings(out, "join", address, stop_iters=1, eval_every=1, checkpoint_freq=1, num_env_runners=3)
    data_dir = s.run_dir / "data"
    real_share, seen = wiring.share_data, {}

    def share_then_delete(run):
        refs = real_share(run)
        seen["packs"] = sorted(p.name for p in data_dir.glob("*.npz"))
        shutil.rmtree(data_dir)  # from here on no process can read a pack file
        return refs

    wiring.share_data = share_then_delete
    summary = run_training(s)
    run_json = json.loads((s.run_dir / "run.json").read_text())
    return {"local_cpus": usable_cpus(), "iterations": summary.iterations, "env_steps": summary.env_steps,
            "placement": run_json["placement"], "packs_deleted": seen.get("packs"), "data_dir_exists": data_dir.exists(),
            "hi": summary.final_scores.get("hi")}


def drive_critic_loss(address: str, out: Path) -> dict:
    """After iteration 1 the critic's node goes (the cluster's process removes it); 3 iterations."""
    import ray

    from tune_configs.run_loop import run_training

    s = _tiny_settings(out, "critic-loss", address, stop_iters=3, eval_every=3, checkpoint_freq=3)
    seen: dict = {}

    def critic():
        names = [n for n in ray.util.list_named_actors()  # this job's namespace: names
                 if n.startswith("exposure_discriminator_critic-loss") and not n.endswith(".state")]
        return ray.get_actor(names[0])

    def report(metrics):
        info = ray.get(critic().ready.remote())
        if metrics["iteration"] == 1:
            seen["before"] = info
            (out / REMOVE_REQUEST).write_text(info["node_id"])
            seen["new_node"] = _wait_for(out / REMOVED)
        elif metrics["iteration"] == 2:
            seen["after"] = info

    summary = run_training(s, report=report)
    run_json = json.loads((s.run_dir / "run.json").read_text())
    return {"iterations": summary.iterations, "env_steps": summary.env_steps, "placement": run_json["placement"], **seen}


# --------------------------------------------------------------------------- a private Ray
def serve_private() -> None:
    """A private Ray as runs start it (with the dashboard); its facts on stdout; up until stdin closes."""
    import ray

    from tune_configs.ray_session import connect_ray

    assert connect_ray(None, num_cpus=1, dashboard=True)
    info = ray._private.worker.global_worker.node.address_info
    result = {"pid": os.getpid(), "gcs": info["gcs_address"], "node_ip": info["node_ip_address"],
              "dashboard": ray._private.worker.get_dashboard_url(), "auth_mode": os.environ.get("RAY_AUTH_MODE")}
    print("RESULT " + json.dumps(result), flush=True)
    sys.stdin.read()
    ray.shutdown()


def main(argv: list[str]) -> int:
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    if argv[0] == "private":
        serve_private()
        return 0
    if argv[0] == "cluster":
        result = hold_cluster(argv[1], Path(argv[2]))
    else:  # drive SCENARIO ADDRESS OUT
        result = {"join": drive_join, "critic-loss": drive_critic_loss}[argv[1]](argv[2], Path(argv[3]))
    print("RESULT " + json.dumps(result, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
