"""Building the algorithm configs and their RLModules logs no RLlib deprecation and warns nothing
deprecated from the project's own code (checked in a fresh process: RLlib logs each notice once)."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = r"""
import json, logging, warnings

logged = []

class Collect(logging.Handler):
    def emit(self, record):
        logged.append(record.getMessage())

logging.getLogger("ray._common.deprecation").addHandler(Collect())
PROJECT = ("exposure_env", "rewards", "policies", "tune_configs")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from tune_configs.algorithms import build_config
    from tune_configs.rllib_env import env_spaces

    env = {"inputs": "in.npz", "scorer": {"kind": "discriminator", "name": "d"}}
    built = {}
    for algo in ("ppo", "appo", "exposure"):
        config = build_config(algo, env, model_config={"preset": "small"}, num_env_runners=1)
        spec = config.get_rl_module_spec(spaces={"default_policy": env_spaces(env)})
        module = spec.build()
        built[algo] = [type(module).__name__, config.learner_class.__name__]
    probe_count = len(logged)
    from ray._common.deprecation import deprecation_warning
    deprecation_warning(old="exposure-test-probe", error=False)  # the collector does see RLlib's notices
project = [f"{w.filename}:{w.lineno}: {w.message}" for w in caught
           if issubclass(w.category, DeprecationWarning) and any(f"/{p}/" in w.filename for p in PROJECT)]
print(json.dumps({"logged": logged, "before_probe": probe_count, "warned": project, "built": built}))
"""


def test_configs_and_modules_log_no_deprecation():
    out = subprocess.run([sys.executable, "-c", SCRIPT], check=True, timeout=300, capture_output=True, text=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["built"] == {
        "ppo": ["ExposureRLModule", "CriticOverlapPPOLearner"],
        "appo": ["ExposureRLModule", "APPOTorchLearner"],
        "exposure": ["ExposureAlgoRLModule", "ExposureTorchLearner"],
    }
    assert res["before_probe"] == 0, res["logged"]
    assert len(res["logged"]) == 1 and "exposure-test-probe" in res["logged"][0], res["logged"]
    assert res["warned"] == [], res["warned"]
