"""``exposure export``: turn a training checkpoint into one ``.exposure`` policy file."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export_command(
        checkpoint: Path = typer.Argument(..., help="RLlib algorithm checkpoint folder (or an RLModule checkpoint)."),
        out: Path = typer.Option(Path("policy.exposure"), "-o", "--out", help="Output .exposure file."),
        onnx: bool = typer.Option(False, "--onnx", help="Also embed an ONNX graph (needs the onnx package)."),
        info: str = typer.Option("", "--info", help='Extra training metadata as JSON, e.g. \'{"data": "fivek"}\'.'),
    ) -> None:
        """Export a trained policy: traced network + metadata, loadable without Ray."""
        from policies.export import export_policy
        from policies.policy_file import PolicyFileError, read_metadata
        from tune_configs.run_layout import checkpoint_info

        try:
            extra = json.loads(info) if info else {}
            if not isinstance(extra, dict):
                raise ValueError("must be a JSON object")
        except ValueError as exc:
            raise typer.BadParameter(f"--info: not a JSON object ({exc})") from None
        try:
            path = export_policy(checkpoint, out, onnx=onnx, metadata={**checkpoint_info(checkpoint), **extra})
        except PolicyFileError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        meta = read_metadata(path)
        filters = " ".join(f["short_name"] for f in meta["filters"])
        typer.echo(
            f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): filters {filters}, "
            f"{meta['thumb_size']}px thumbnails, {meta['max_steps']} steps, files {', '.join(meta['files'])}"
        )
