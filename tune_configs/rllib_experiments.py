"""RLlib's experiment format on this project's training: what the ``rllib`` command runs.

An *experiment* is what ``rllib train`` took: an algorithm (``run``: ``PPO``, ``APPO`` or
``exposure``), an environment (only :data:`ENV_ID`), a ``stop`` dict and a ``config`` dict.
:func:`experiment_settings` maps it onto :class:`tune_configs.settings.TrainSettings` through
the same path as ``exposure train`` (:func:`tune_configs.commands.train_cmd.settings_from_options`),
so the recipe is picked the same way and every ``config`` key is a ``--config`` key of
:mod:`tune_configs.overrides`:

``config`` key                  becomes
``lr``, ``num_epochs``, ...     the algorithm's training setting (``--config lr=...``)
``model.hidden``, ``run.eval_every``, ...  the dotted ``--config`` key as it is
``model_config`` / ``discriminator``       ``{KEY: VALUE}`` -> ``model.KEY`` / ``discriminator.KEY``
``env_config``                  data keys (:data:`DATA_KEYS`: ``fivek``, ``inputs`` + ``targets``
                                or ``paired``, ``fivek_limit``, ``demo_style``; none: the demo
                                set) and the task's ``env.KEY`` (``max_steps``, ``reward_scale``...)
``num_env_runners``, ``num_envs_per_env_runner``, ``num_gpus_per_learner`` (or ``num_gpus``),
``seed``, ``recipe``            the run's own settings (``exposure train --num-env-runners`` ...)
``framework``                   must be ``torch``

``stop`` keys: ``training_iteration`` (iterations) and ``time_total_s`` (seconds); the run
stops at the first one reached. Tuned examples (:func:`read_tuned_examples`) are RLlib's YAML:
``NAME: {env: Exposure-v0, run: PPO, stop: {...}, config: {...}}``, one or more per file.
Every bad input raises ``ValueError`` with one line naming the setting (and the file).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: The environment id ``rllib train --env`` accepts (the data goes into ``env_config``).
ENV_ID = "Exposure-v0"
#: ``stop`` keys and the recipe fields they set.
STOP_KEYS = {"training_iteration": "stop_iters", "time_total_s": "stop_time"}
#: ``env_config`` keys that choose the training data (``exposure train`` options of the same names).
DATA_KEYS = ("fivek", "fivek_limit", "inputs", "targets", "paired", "demo_style")
#: ``config`` keys with a place of their own in the run settings (the ``exposure train`` option).
RUN_KEYS = {
    "num_env_runners": "num_env_runners",
    "num_envs_per_env_runner": "num_envs_per_runner",
    "num_gpus_per_learner": "num_gpus",
    "num_gpus": "num_gpus",
    "seed": "seed",
    "recipe": "recipe",
}
#: ``config`` keys whose value is a ``{KEY: VALUE}`` dict of a ``--config`` group.
GROUP_DICTS = {"model_config": "model", "model": "model", "discriminator": "discriminator"}
#: Keys of one experiment in a tuned-example file.
EXPERIMENT_KEYS = ("env", "run", "stop", "config")
#: The tuned examples shipped with the project (``rllib train file demo-ppo.yaml`` finds them).
TUNED_EXAMPLES_DIR = Path(__file__).resolve().parent / "tuned_examples"


def parse_json_object(text: str | None, option: str) -> dict[str, Any]:
    """``text`` as a JSON object (None or empty: ``{}``); ``ValueError`` naming ``option``."""
    if text is None or not str(text).strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{option}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{option}: expected a JSON object like '{{\"lr\": 0.0003}}', got {type(value).__name__}")
    return value


def check_env(env: Any) -> None:
    """``ValueError`` unless ``env`` is :data:`ENV_ID` (any case)."""
    if str(env).lower() != ENV_ID.lower():
        raise ValueError(f"--env {env}: this project trains {ENV_ID} only (the photos go into config.env_config)")


def stop_settings(stop: dict[str, Any]) -> dict[str, float | int | None]:
    """``{"stop_iters": ..., "stop_time": ...}`` of an RLlib ``stop`` dict (see :data:`STOP_KEYS`)."""
    out: dict[str, float | int | None] = {"stop_iters": None, "stop_time": None}
    for key, value in stop.items():
        if key not in STOP_KEYS:
            raise ValueError(f"--stop {key}: not supported; use {' and/or '.join(STOP_KEYS)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"--stop {key}: expected a positive number, got {value!r}")
        if key == "training_iteration" and not float(value).is_integer():
            raise ValueError(f"--stop {key}: expected a whole number of iterations, got {value!r}")
        out[STOP_KEYS[key]] = int(value) if key == "training_iteration" else float(value)
    return out


def _check_number(key: str, value: Any, *, whole: bool) -> None:
    """``ValueError`` naming ``--config key`` unless ``value`` is a number (``whole``: an integer)."""
    if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)):
        raise ValueError(f"--config {key}: expected {'an integer' if whole else 'a number'}, got {value!r}")


def _item(key: str, value: Any) -> str:
    """A ``--config KEY=VALUE`` item whose value :func:`tune_configs.overrides.parse_value` reads back."""
    return f"{key}={value!r}"


def _group_items(key: str, group: str, value: Any) -> list[str]:
    if not isinstance(value, dict):
        raise ValueError(f"--config {key}: expected an object of {group}.* settings, got {value!r}")
    return [_item(f"{group}.{k}", v) for k, v in value.items()]


def split_config(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """``(data options, run options, --config items)`` of an RLlib ``config`` dict (module docstring)."""
    data: dict[str, Any] = {}
    run: dict[str, Any] = {}
    items: list[str] = []
    for key, value in config.items():
        if key == "framework":
            if value != "torch":
                raise ValueError(f"--config framework: only torch is supported, got {value!r}")
        elif key == "env":
            check_env(value)
        elif key in RUN_KEYS:
            if key == "recipe" and not isinstance(value, str):
                raise ValueError(f"--config recipe: expected a recipe name, got {value!r}")
            if key != "recipe":
                _check_number(key, value, whole=RUN_KEYS[key] != "num_gpus")
            run[RUN_KEYS[key]] = value
        elif key in GROUP_DICTS:
            items += _group_items(key, GROUP_DICTS[key], value)
        elif key == "env_config":
            if not isinstance(value, dict):
                raise ValueError(f"--config env_config: expected an object, got {value!r}")
            data.update({k: v for k, v in value.items() if k in DATA_KEYS})
            if "fivek_limit" in data:
                _check_number("env_config.fivek_limit", data["fivek_limit"], whole=True)
            items += [_item(f"env.{k}", v) for k, v in value.items() if k not in DATA_KEYS]
        else:
            items.append(_item(key, value))
    return data, run, items


def experiment_settings(
    algo: str,
    env: str = ENV_ID,
    config: dict[str, Any] | None = None,
    stop: dict[str, Any] | None = None,
    *,
    name: str | None = None,
    results_dir: str | Path = "results",
    storage: str | None = None,
):
    """The :class:`~tune_configs.settings.TrainSettings` of one RLlib experiment (module docstring);
    ``storage``: ``exposure train --storage`` (a folder or a pyarrow URI)."""
    from .algorithms import check_algo
    from .commands.train_cmd import settings_from_options

    try:
        algo = check_algo(algo)
    except ValueError as exc:
        raise ValueError(f"--algo: {exc}") from None
    check_env(env)
    data, run, items = split_config(dict(config or {}))
    stops = stop_settings(dict(stop or {}))
    paths = {k: Path(str(data[k])).expanduser() if data.get(k) is not None else None for k in ("inputs", "targets", "paired", "fivek")}
    demo = not any(paths.values())
    return settings_from_options(
        algo=algo, demo=demo, demo_style=data.get("demo_style") if demo else None, **paths,
        fivek_limit=data.get("fivek_limit"), recipe=run.get("recipe"), stop_iters=stops["stop_iters"],
        stop_time=stops["stop_time"], num_env_runners=run.get("num_env_runners"),
        num_envs_per_runner=run.get("num_envs_per_runner"), num_gpus=run.get("num_gpus", 0), checkpoint_freq=None,
        eval_every=None, resume=None, config=items, name=name, results_dir=Path(results_dir), seed=run.get("seed", 0),
        dashboard=False, **({"storage": storage} if storage is not None else {}),
    )


def tuned_example_path(path: str | Path) -> Path:
    """``path``, or the bundled tuned example of that file name; ``ValueError`` if neither exists."""
    p = Path(path).expanduser()
    if p.is_file():
        return p
    bundled = TUNED_EXAMPLES_DIR / p.name
    if bundled.is_file() and p.parent == Path("."):
        return bundled
    known = ", ".join(sorted(f.name for f in TUNED_EXAMPLES_DIR.glob("*.yaml")))
    raise ValueError(f"{path}: no such file (bundled tuned examples: {known})")


def read_tuned_examples(path: str | Path) -> dict[str, dict[str, Any]]:
    """``{experiment name: {"env", "run", "stop", "config"}}`` of a tuned-example YAML file."""
    import yaml

    p = tuned_example_path(path)
    try:
        doc = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as exc:
        detail = " ".join(str(exc).split())
        raise ValueError(f"{p}: not a readable YAML file ({detail})") from None
    if not isinstance(doc, dict) or not doc:
        raise ValueError(f"{p}: expected 'NAME: {{env: ..., run: ..., stop: ..., config: ...}}'")
    out = {}
    for name, exp in doc.items():
        if not isinstance(exp, dict):
            raise ValueError(f"{p}: experiment {name!r} must be a mapping with {', '.join(EXPERIMENT_KEYS)}")
        unknown = sorted(set(exp) - set(EXPERIMENT_KEYS))
        if unknown:
            raise ValueError(f"{p}: experiment {name!r}: unknown key {unknown[0]!r} (use {', '.join(EXPERIMENT_KEYS)})")
        if "run" not in exp:
            raise ValueError(f"{p}: experiment {name!r} names no algorithm ('run: PPO', 'APPO' or 'exposure')")
        for key in ("stop", "config"):
            if not isinstance(exp.get(key) or {}, dict):
                raise ValueError(f"{p}: experiment {name!r}: {key} must be a mapping")
        out[str(name)] = {"env": exp.get("env", ENV_ID), "run": exp["run"], "stop": dict(exp.get("stop") or {}),
                          "config": dict(exp.get("config") or {})}
    return out


def tuned_example_settings(path: str | Path, *, stop: dict | None = None, config: dict | None = None,
                           results_dir: str | Path = "results", storage: str | None = None) -> list:
    """The settings of every experiment in a tuned-example file; ``stop`` replaces the file's
    stop dict and ``config`` is merged over its config (``rllib train file --stop/--config``)."""
    out = []
    p = tuned_example_path(path)
    for name, exp in read_tuned_examples(p).items():
        try:
            out.append(experiment_settings(
                exp["run"], exp["env"], {**exp["config"], **(config or {})}, exp["stop"] if stop is None else stop,
                name=name, results_dir=results_dir, storage=storage,
            ))
        except ValueError as exc:
            raise ValueError(f"{p}: {name}: {exc}") from None
    return out


def evaluate_checkpoint(checkpoint: str | Path, algo: str | None = None):
    """Validate a run's checkpoint (or a run folder's newest) on its run's validation set;
    ``algo`` (``rllib evaluate --algo``), when given, must be the algorithm it was trained with.

    Returns ``(run info, summary)``: a :class:`tune_configs.run_loop.RunSummary` of the
    checkpoint with the policy's scores as ``final_scores`` (the validation of
    :class:`tune_configs.validation.Validator`, deterministic). The run's data packs are reused
    when its ``data/`` folder holds them, else rebuilt in a temporary folder. No Ray is started.
    """
    import tempfile

    from policies.export import load_module
    from policies.policy_file import PolicyFileError

    from .checkpoints import load_run_info, resolve_checkpoint
    from .data import DataSpec, prepare_data
    from .recipes import Recipe
    from .run_layout import DATA_DIR, run_dir_of
    from .run_loop import RunSummary
    from .settings import TrainSettings
    from .wiring import make_validator

    ckpt = resolve_checkpoint(checkpoint)
    info = load_run_info(ckpt)
    trained = str(info.get("algo", "?"))
    if algo is not None and algo.lower() != trained.lower():
        raise ValueError(f"--algo {algo}: {ckpt} was trained with {trained}")
    try:
        spec = DataSpec(**info["data"])
        recipe = Recipe(**info["recipe"]).replace(train_eval_crops=0)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{ckpt}: run info without a usable data spec or recipe ({exc})") from None
    settings = TrainSettings(spec, recipe, seed=info.get("seed", 0))
    run_data = run_dir_of(ckpt) / DATA_DIR
    try:
        same = json.loads((run_data / "spec.json").read_text()) == spec.to_dict()
    except (OSError, ValueError):
        same = False
    with tempfile.TemporaryDirectory(prefix="rllib-evaluate-") as tmp:
        validator = make_validator(settings, prepare_data(spec, run_data if same else tmp))
    try:
        module = load_module(ckpt)
    except PolicyFileError as exc:
        raise ValueError(str(exc)) from None
    scores = validator.evaluate(module)["scores"]
    summary = RunSummary(run_dir_of(ckpt), int(info.get("iteration", 0)), float(info.get("elapsed_s", 0.0)), ckpt,
                         scores, validator.baseline(), 0, {})
    return info, summary
