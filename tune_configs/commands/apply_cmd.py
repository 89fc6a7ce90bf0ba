"""``exposure apply``: apply a given edit list to one photo (no policy involved)."""

from __future__ import annotations

from pathlib import Path

import typer

SPACES = ("auto", "linear", "prophoto", "srgb", "srgb-exact", "display")
SUFFIX_BY_FORMAT = {"tiff": ".tif", "png": ".png", "jpeg": ".jpg"}


def _load_edits(edit: list[str] | None, edits_file: Path | None):
    """The edit list from ``--edit`` texts or an ``--edits`` JSON file (exactly one of them)."""
    from exposure_env.edits import Edit, edits_from_json

    if edit and edits_file is not None:
        raise typer.BadParameter("give either --edit (repeatable) or --edits FILE, not both", param_hint="--edit")
    if edits_file is not None:
        try:
            text = edits_file.read_text()
        except OSError as exc:
            raise typer.BadParameter(f"{edits_file}: cannot be read ({exc.strerror or exc})", param_hint="--edits") from None
        try:
            return edits_from_json(text)
        except (ValueError, KeyError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
            msg = " ".join(str(exc).split())
            raise typer.BadParameter(f"{edits_file}: not a valid edit list ({msg})", param_hint="--edits") from None
    if not edit:
        raise typer.BadParameter("no edits: give --edit FILTER:VALUES (repeatable) or --edits FILE", param_hint="--edit")
    out = []
    for text in edit:
        try:
            out.append(Edit.parse(text))
        except (ValueError, KeyError) as exc:
            msg = exc.args[0] if exc.args else str(exc)
            raise typer.BadParameter(str(msg), param_hint="--edit") from None
    return out


def _output_path(photo: Path, out: Path, fmt: str | None) -> Path:
    """``out`` itself, or ``out/<photo stem><suffix>`` when ``out`` is an existing folder."""
    if out.is_dir():
        return out / f"{photo.stem}{SUFFIX_BY_FORMAT[fmt or 'tiff']}"
    return out


def register(app: typer.Typer) -> None:
    @app.command("apply")
    def apply_command(
        photo: Path = typer.Argument(..., help="Photo to edit (TIFF, PNG, JPEG or camera RAW)."),
        out: Path = typer.Option(..., "-o", "--out", help="Output file (.tif/.tiff, .png, .jpg) or an existing folder."),
        edit: list[str] = typer.Option(
            None, "--edit", "-e", help='One edit FILTER:VALUES in filter units, repeatable, in order: "E:+1.25", "G:0.45", "W:1.1,1,0.9".'
        ),
        edits_file: Path = typer.Option(None, "--edits", help="JSON edit list (an 'edits' sidecar of exposure retouch, or a list)."),
        input_space: str = typer.Option("auto", "--input-space", help="Input colour space: auto, linear, prophoto, srgb, srgb-exact, display."),
        format: str = typer.Option(None, "--format", help="tiff, png or jpeg (default: from the output suffix)."),
        bits: int = typer.Option(16, "--bits", help="Bits per sample for TIFF/PNG: 16 or 8."),
        quality: int = typer.Option(95, "--quality", min=1, max=100, help="JPEG quality."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
        max_megapixels: float = typer.Option(200.0, "--max-megapixels", min=0.01, help="Refuse larger photos."),
    ) -> None:
        """Apply an edit list to PHOTO and write the result (clipped to [0, 1], no further transfer).

        Edits use each filter's own parameters (see `exposure filters`): E = stops, G = exponent
        (1/2.2 = 0.4545 is a display gamma), W = R,G,B multipliers, T/C = curve slopes, S+/Ct/BW
        = blend amounts.
        """
        import numpy as np
        from rich.console import Console
        from rich.markup import escape

        from exposure_env.edits import apply_edits
        from exposure_env.io import ImageError, read_image, write_image

        console = Console(stderr=True)
        if input_space.lower() not in SPACES:
            raise typer.BadParameter(f"unknown colour space {input_space!r}; choose {', '.join(SPACES)}", param_hint="--input-space")
        fmt = None
        if format is not None:
            fmt = {"tif": "tiff", "jpg": "jpeg"}.get(format.lower(), format.lower())
            if fmt not in SUFFIX_BY_FORMAT:
                raise typer.BadParameter(f"unknown format {format!r}; choose tiff, png or jpeg", param_hint="--format")
        if bits not in (8, 16):
            raise typer.BadParameter(f"{bits} bits: choose 16 or 8", param_hint="--bits")
        edits = _load_edits(edit, edits_file)
        target = _output_path(photo, out, fmt)
        if fmt is None and target.suffix.lower() not in (".tif", ".tiff", ".png", ".jpg", ".jpeg"):
            raise typer.BadParameter(
                f"{target}: cannot tell the output format from the suffix; use .tif, .png or .jpg (or --format)", param_hint="--out"
            )
        if photo.exists() and target.exists() and target.resolve() == photo.resolve():
            raise typer.BadParameter(f"{target}: refusing to write over the input photo", param_hint="--out")
        if target.exists() and not overwrite:
            raise typer.BadParameter(f"{target}: already exists (use --overwrite to replace it)", param_hint="--out")

        try:
            image = read_image(photo, input_space.lower(), max_pixels=int(max_megapixels * 1e6))
        except ImageError as exc:
            console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        result = np.asarray(apply_edits(image, edits), dtype=np.float32)
        try:
            write_image(target, result, format=fmt, bits=bits, quality=quality, space="display")
        except (ValueError, OSError) as exc:
            console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        steps = "; ".join(e.describe() for e in edits)
        console.print(f"{escape(str(photo))}: {escape(steps)} -> {escape(str(target))}", highlight=False, soft_wrap=True)
