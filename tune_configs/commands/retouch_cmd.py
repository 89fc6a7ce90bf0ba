"""``exposure retouch``: apply an exported policy to photos (files, folders, globs)."""

from __future__ import annotations

from pathlib import Path

import typer

FORMATS = ("tiff16", "png", "jpeg")
SPACES = ("auto", "linear", "prophoto", "srgb", "srgb-exact", "display")


def register(app: typer.Typer) -> None:
    @app.command("retouch")
    def retouch_command(
        policy: Path = typer.Argument(..., help="Exported policy file (policy.exposure)."),
        inputs: list[str] = typer.Argument(..., help="Photos, folders (searched recursively) or glob patterns."),
        out: Path = typer.Option(..., "-o", "--out", help="Output folder (must not be an input folder)."),
        format: str = typer.Option("tiff16", "--format", help="Output format: tiff16, png (8-bit) or jpeg."),
        quality: int = typer.Option(95, "--quality", min=1, max=100, help="JPEG quality."),
        compression: str = typer.Option(
            None, "--compression", help="TIFF: none (default), deflate, lzw, zstd; PNG: deflate (default), none."
        ),
        input_space: str = typer.Option("auto", "--input-space", help="Input colour space: auto, linear, prophoto, srgb, srgb-exact."),
        strip: bool = typer.Option(False, "--strip", help="Also write a PNG strip of the steps."),
        sidecar: str = typer.Option(
            None, "--sidecar", help="Also write the edits for editors: darktable, rawtherapee, lightroom (comma-separated)."
        ),
        samples: int = typer.Option(0, "--samples", min=0, help="K > 0: K different sampled retouches per photo."),
        seed: int = typer.Option(None, "--seed", help="Seed for --samples (same seed, same results)."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
        skip_existing: bool = typer.Option(False, "--skip-existing", help="Skip photos whose outputs exist (resume)."),
        use_ray: bool = typer.Option(
            False, "--ray", help="Stream the photos through Ray Data: the cluster at RAY_ADDRESS, else a private local Ray."
        ),
        address: str = typer.Option(
            None, "--address", help="Join this Ray cluster (auto or HOST:PORT) and retouch on it (implies --ray)."
        ),
        workers: int = typer.Option(
            None, "--workers", min=1, help="CPUs of the private local Ray started for --ray (default: every usable core)."
        ),
        actor_gpus: float = typer.Option(0.0, "--actor-gpus", min=0.0, help="Ray: GPUs per policy actor (0: CPU actors)."),
        backend: str = typer.Option("auto", "--backend", help="Where edits are applied: auto, numpy, torch, cupy."),
        max_megapixels: float = typer.Option(200.0, "--max-megapixels", min=0.01, help="Refuse larger photos."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    ) -> None:
        """Retouch photos: 5 edits decided on a thumbnail, applied once at full size.

        Per photo: the image, a JSON sidecar (edits, policy, timings)
        and with --strip a PNG of the steps; with --sidecar the edits as
        darktable / RawTherapee / Lightroom files of the original photo.
        With --ray or --address the photos stream through Ray Data on a
        cluster; this machine reads the inputs and writes the outputs.
        Exit status 1 when any photo failed, 2 for a refused run.
        """
        from rich.console import Console
        from rich.markup import escape

        from policies.policy_file import PolicyFileError
        from tune_configs.batch.jobs import RetouchError
        from tune_configs.batch.ray_data import RayDataOptions
        from tune_configs.batch.retouch import retouch_paths

        if format not in FORMATS:
            raise typer.BadParameter(f"unknown format {format!r}; choose {', '.join(FORMATS)}", param_hint="--format")
        if input_space.lower() not in SPACES:
            raise typer.BadParameter(f"unknown colour space {input_space!r}; choose {', '.join(SPACES)}", param_hint="--input-space")
        console = Console(stderr=True, soft_wrap=True)
        try:
            summary = retouch_paths(
                policy, inputs, out, format=format, quality=quality, input_space=input_space.lower(), strip=strip,
                samples=samples or None, seed=seed, overwrite=overwrite, skip_existing=skip_existing,
                use_ray=use_ray, address=address, ray_options=RayDataOptions(cpus=workers, actor_gpus=actor_gpus), backend=backend, max_pixels=int(max_megapixels * 1e6),
                progress=not quiet, compression=compression, sidecars=sidecar or (),
            )
        except (PolicyFileError, RetouchError, ValueError) as exc:
            console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
            raise typer.Exit(2) from None
        rate = summary.done / summary.seconds if summary.seconds > 0 else 0.0
        console.print(
            f"done {summary.done}, skipped {summary.skipped}, failed {len(summary.failed)} "
            f"in {summary.seconds:.1f} s ({rate:.2f} photos/s) -> {escape(str(out))}",
            highlight=False,
        )
        for r in summary.failed:
            console.print(f"  [red]failed[/red] {escape(r.reason)}", highlight=False)
        raise typer.Exit(summary.exit_code)
