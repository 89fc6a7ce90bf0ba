"""``exposure evaluate``: histogram intersection (and PSNR / Delta E) of a policy vs baselines."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("evaluate")
    def evaluate_command(
        inputs: Path = typer.Option(..., "--inputs", help="Folder of input photos (linear / RAW-like)."),
        targets: Path = typer.Option(..., "--targets", help="Folder of photos in the wanted style (display-referred)."),
        policy: Path = typer.Option(None, "--policy", help="Exported policy (.exposure); without it only the baselines."),
        paired: Path = typer.Option(None, "--paired", help="Folder of ground-truth versions of the inputs (same names)."),
        out: Path = typer.Option(Path("evaluation"), "--out", help="Folder for evaluation.md, metrics.json, contact_sheet.png."),
        input_space: str = typer.Option("auto", "--input-space", help="Colour space of the inputs (auto, linear, prophoto, srgb, ...)."),
        max_side: int = typer.Option(512, "--max-side", min=0, help="Evaluate at this long side (0: full resolution)."),
        seed: int = typer.Option(0, "--seed", help="Seed of the random evaluation crops."),
        columns: int = typer.Option(6, "--columns", min=1, help="Photos shown in the contact sheet."),
    ) -> None:
        """Score the input with a display gamma, an auto-correction and the policy.

        Histogram intersection (SPEC §8, percent) against the targets;
        with --paired also PSNR and CIE76 Delta E. Prints and saves a
        markdown table and a contact sheet (input / baselines / policy / target).
        """
        from rich.console import Console
        from rich.markup import escape

        from exposure_env.colourspace import check_space
        from policies import baselines
        from policies.export import PolicyFileError

        console = Console(stderr=True, soft_wrap=True)
        try:
            space = check_space(input_space, allow_auto=True)
            size = max_side or None
            ins = baselines.load_photos(inputs, space, size)
            tgs = baselines.load_photos(targets, "display", size)
            gts = baselines.match_pairs(ins, baselines.load_photos(paired, "display", size)) if paired else None
            methods = dict(baselines.BASELINES)
            if policy is not None:
                from policies.retoucher import Retoucher

                methods["policy"] = baselines.policy_method(Retoucher(policy))
            result = baselines.evaluate(ins.images, tgs.images, methods, paired=gts, names=ins.names, seed=seed)
        except (PolicyFileError, ValueError) as exc:
            console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
            raise typer.Exit(2) from None
        for reason in ins.skipped + tgs.skipped:
            console.print(f"[yellow]skipped[/yellow] {escape(reason)}", highlight=False)

        table = baselines.markdown_table(result)
        header = (
            f"# Evaluation\n\n{len(ins.images)} inputs from `{inputs}`, {len(tgs.images)} targets from `{targets}`"
            + (f", paired ground truth from `{paired}`" if paired else "")
            + (f", policy `{policy}`" if policy else "")
            + f"; long side {max_side or 'full'}, crop seed {seed}. Histogram intersection in percent (SPEC §8)."
        )
        out.mkdir(parents=True, exist_ok=True)
        (out / "evaluation.md").write_text(f"{header}\n\n{table}\n")
        (out / "metrics.json").write_text(
            json.dumps(
                {
                    "inputs": str(inputs), "targets": str(targets), "paired": str(paired) if paired else None,
                    "policy": str(policy) if policy else None, "max_side": max_side, "seed": seed,
                    "photos": result.names, "num_targets": result.num_targets,
                    "scores": [
                        {"method": s.method, **s.histogram, "psnr": s.psnr, "delta_e76": s.delta_e} for s in result.scores
                    ],
                },
                indent=2,
            )
        )
        rows = [("input", ins.images, ins.names)] + [(m, o, ins.names) for m, o in result.outputs.items()]
        rows.append(("ground truth", gts, ins.names) if gts is not None else ("target style", tgs.images, tgs.names))
        baselines.contact_sheet(rows, out / "contact_sheet.png", columns=columns)
        typer.echo(table)
        console.print(f"wrote {escape(str(out / 'evaluation.md'))}, metrics.json, contact_sheet.png", highlight=False)
