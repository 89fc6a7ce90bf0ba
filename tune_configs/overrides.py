"""``--config KEY=VALUE`` overrides of a recipe, typed by the configs they change.

``KEY`` is a training setting (``lr``, ``num_epochs``, ``policy_lr``, ...: any ``.training()``
field of the recipe's algorithm) or a dotted ``GROUP.NAME`` of one of the :data:`GROUPS`:

``run.*``            the recipe's own fields (:class:`tune_configs.recipes.Recipe`: ``stop_iters``,
                     ``stop_time`` (also ``10m`` / ``1h``), ``eval_every``, ``algo``, ...)
``env.*``            the task (:class:`exposure_env.env_config.EnvConfig` fields of
                     :data:`tune_configs.rllib_env.TASK_KEYS`) and the reward's source
                     (:class:`tune_configs.rllib_env.RewardSource`)
``discriminator.*``  :class:`rewards.discriminator.DiscriminatorConfig`
``model.*``          the RLModule's ``model_config`` (:func:`policies.rl_module.resolve_model_config`)

Names, types, defaults and help come from those dataclasses' fields (:func:`group_keys`);
training and model keys, which have no dataclass, are typed by their default values. ``VALUE``
is a Python literal (``1e-4``, ``8``, ``[16, 32]``, ``true``/``false``, ``none``, ``"text"``)
and must fit the key's type. Bad keys or values raise ``ValueError`` naming the setting.
"""

from __future__ import annotations

import ast
import dataclasses
import types
import typing
from typing import Any, Literal, NamedTuple, Union

from exposure_env.env_config import EnvConfig

from .algorithms import check_algo, training_defaults
from .recipes import Recipe
from .rllib_env import TASK_KEYS, RewardSource, task_config
from .settings import parse_duration

#: The dotted groups of ``--config`` (a key without a dot is a training setting).
GROUPS = ("run", "env", "discriminator", "model")
#: Recipe fields that are groups of their own, not ``run.*`` settings.
_RECIPE_GROUPS = ("name", "training", "model", "env", "discriminator")


class Key(NamedTuple):
    """One ``--config`` key: its type (a typing hint), default and one-line help."""

    hint: Any
    default: Any
    help: str = ""


def dataclass_keys(cls, names: tuple[str, ...] | None = None) -> dict[str, Key]:
    """The :class:`Key` of every init field of dataclass ``cls`` (only ``names`` when given)."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        if not f.init or (names is not None and f.name not in names):
            continue
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        out[f.name] = Key(hints[f.name], None if default is dataclasses.MISSING else default, f.metadata.get("help", ""))
    return out


def value_keys(defaults: dict[str, Any]) -> dict[str, Key]:
    """Keys typed by their default values (``None``: any value)."""
    return {k: Key(Any if v is None else Union[type(v), None], v) for k, v in defaults.items()}


def group_keys(group: str, recipe: Recipe) -> dict[str, Key]:
    """The keys of ``group`` (``"training"`` or one of :data:`GROUPS`) for ``recipe``."""
    if group == "run":
        return {k: v for k, v in dataclass_keys(Recipe).items() if k not in _RECIPE_GROUPS}
    if group == "env":
        return {**dataclass_keys(RewardSource), **dataclass_keys(EnvConfig, TASK_KEYS)}
    if group == "discriminator":
        from rewards.discriminator import DiscriminatorConfig

        return dataclass_keys(DiscriminatorConfig)
    if group == "model":
        from policies.rl_module import resolve_model_config

        return value_keys(resolve_model_config(recipe.model))
    if group == "training":
        return value_keys(training_defaults(recipe.algo))
    raise ValueError(f"unknown group {group!r}; use {', '.join(g + '.' for g in GROUPS)}")


def parse_value(text: str) -> Any:
    """A ``--config`` value: a Python literal, ``true``/``false``/``none``, else the plain string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        return text.strip()


def coerce(key: str, value: Any, hint: Any) -> Any:
    """``value`` checked against the typing ``hint`` and converted to it (``int`` -> ``float``,
    list -> tuple); ``ValueError`` naming ``key`` when it does not fit."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            raise ValueError(f"--config {key}: a value is required, got none")
        options = [a for a in args if a is not type(None)]
        return coerce(key, value, options[0]) if len(options) == 1 else value
    if origin is Literal:
        if value not in args:
            raise ValueError(f"--config {key}: expected one of {', '.join(map(str, args))}, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"--config {key}: expected true or false, got {value!r}")
        return value
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"--config {key}: expected a number, got {value!r}")
        if hint is int and not float(value).is_integer():
            raise ValueError(f"--config {key}: expected an integer, got {value!r}")
        return hint(value)
    if hint in (list, tuple) or origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"--config {key}: expected a list, got {value!r}")
        return (origin or hint)(value)
    if hint is str and not isinstance(value, str):
        raise ValueError(f"--config {key}: expected text, got {value!r}")
    return value


def _check(group: str, key: str, r: Recipe) -> None:
    """Validate ``r``'s ``group`` as a whole after ``key`` changed (its config's own checks)."""
    try:
        if group == "env":
            task_config(r.env)
        elif group == "discriminator":
            from rewards.discriminator import DiscriminatorConfig

            DiscriminatorConfig.from_any(r.discriminator)
        elif group == "model":
            from policies.rl_module import resolve_model_config

            resolve_model_config(r.model)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"--config {key}: {exc}") from None


def apply_overrides(recipe: Recipe, items: list[str] | tuple[str, ...] | None) -> Recipe:
    """``recipe`` with ``KEY=VALUE`` overrides applied (module docstring); validates every key."""
    if not items:
        return recipe
    r = recipe.replace(
        training=dict(recipe.training), model=dict(recipe.model), env=dict(recipe.env), discriminator=dict(recipe.discriminator)
    )
    for item in items:
        key, sep, raw = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--config {item!r}: expected KEY=VALUE, e.g. lr=1e-4 or model.hidden=64")
        value = parse_value(raw)
        group, dot, sub = key.partition(".")
        if not dot:
            group, sub = "training", key
        elif group not in GROUPS:
            raise ValueError(f"--config {key}: unknown group {group!r}; use {', '.join(g + '.' for g in GROUPS)}")
        keys = group_keys(group, r)
        if sub not in keys:
            if group == "training":
                raise ValueError(f"--config {key}: not a {r.algo.upper()} training setting (use model.*, env.*, discriminator.* or run.* for others)")
            raise ValueError(f"--config {key}: unknown {group} setting; known: {', '.join(sorted(keys))}")
        if (group, sub) == ("run", "stop_time") and isinstance(value, str):
            value = parse_duration(value)
        value = coerce(key, value, keys[sub].hint)
        if group == "run":
            r = r.replace(**{sub: check_algo(value) if sub == "algo" else value})
        else:
            getattr(r, group)[sub] = value
            _check(group, key, r)
    return r


def _type_name(hint: Any) -> str:
    """``float``, ``int | None``, ``all | final``, ``tuple[int, ...]``: a hint for people."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return "any"
    if hint is type(None):
        return "None"
    if origin is Literal:
        return " | ".join(map(str, args))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    return getattr(hint, "__name__", None) if origin is None else str(hint).replace("typing.", "")


def describe_keys(recipe: Recipe) -> list[str]:
    """One line per ``--config`` key of ``recipe``: ``KEY  TYPE = RECIPE'S VALUE  help``
    (``exposure train --config help``)."""
    lines = []
    for group in ("training", *GROUPS):
        current = {"run": {}, "training": recipe.training, "env": recipe.env, "discriminator": recipe.discriminator,
                   "model": {}}[group]
        for name, k in sorted(group_keys(group, recipe).items()):
            key = name if group == "training" else f"{group}.{name}"
            value = getattr(recipe, name) if group == "run" else current.get(name, k.default)
            lines.append(f"{key}  {_type_name(k.hint)} = {value!r}" + (f"  {k.help}" if k.help else ""))
    return lines
