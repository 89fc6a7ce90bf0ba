"""``exposure export-edits``: editor sidecars from the JSON records ``exposure retouch`` wrote."""

from __future__ import annotations

from pathlib import Path

import typer

SPACES = ("auto", "linear", "prophoto", "srgb", "srgb-exact", "display")


def register(app: typer.Typer) -> None:
    @app.command("export-edits")
    def export_edits_command(
        records: list[Path] = typer.Argument(..., help="JSON sidecars of exposure retouch (photo.json), one or more."),
        to: str = typer.Option("darktable,rawtherapee,lightroom", "--to", help="Editors, comma-separated: darktable, rawtherapee, lightroom."),
        out: Path = typer.Option(None, "-o", "--out", help="Folder for the files (default: beside each JSON sidecar)."),
        photo: Path = typer.Option(None, "--input", help="The original photo (default: the one the record names)."),
        input_space: str = typer.Option(None, "--input-space", help="Override the recorded input colour space (re-reads the photo)."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing files."),
    ) -> None:
        """Write the edits of each record as files darktable, RawTherapee and Lightroom open.

        darktable: <stem>.darktable.xmp, RawTherapee: <stem>.rawtherapee.pp3, Lightroom /
        Camera Raw: <stem>.lightroom.xmp (unverified in Lightroom). They apply to the original
        photo. Exit status 1 when any record failed (one line each), 2 for a bad option.
        """
        from rich.console import Console
        from rich.markup import escape

        from exposure_env.sidecars import SidecarError, export_record, parse_editors

        try:
            editors = parse_editors(to)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--to") from None
        if input_space is not None and input_space.lower() not in SPACES:
            raise typer.BadParameter(f"unknown colour space {input_space!r}; choose {', '.join(SPACES)}", param_hint="--input-space")
        if photo is not None and len(records) > 1:
            raise typer.BadParameter("--input names one photo: give one record with it", param_hint="--input")
        console = Console(stderr=True, soft_wrap=True)
        failed = 0
        for record in records:
            try:
                written = export_record(record, editors, out_dir=out, photo=photo,
                                        space=input_space.lower() if input_space else None, overwrite=overwrite)
            except SidecarError as exc:
                failed += 1
                console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
                continue
            console.print(f"{escape(str(record))} -> {escape(', '.join(written))}", highlight=False)
        raise typer.Exit(1 if failed else 0)
