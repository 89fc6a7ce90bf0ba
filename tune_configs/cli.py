"""The ``exposure`` command line (typer). Subcommands live in :mod:`tune_configs.commands`."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="exposure",
    help="White-box photo retouching by reinforcement learning (Exposure, SIGGRAPH 2018, on RLlib).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """White-box photo retouching by reinforcement learning."""


#: Subcommand modules, in the order they appear in ``exposure --help``.
COMMANDS = ["filters_cmd", "apply_cmd", "train_cmd", "export_cmd", "retouch_cmd", "export_edits_cmd", "evaluate_cmd"]

for _name in COMMANDS:
    try:
        _mod = importlib.import_module(f"tune_configs.commands.{_name}")
    except ModuleNotFoundError as exc:  # a command still being written must not break the others
        if exc.name != f"tune_configs.commands.{_name}":
            raise
        continue
    _mod.register(app)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
