"""``exposure evaluate``: histogram intersection (and paired PSNR / Delta E / cast) of a policy vs baselines."""

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
        oracle: bool = typer.Option(False, "--oracle", help="Also the oracle: 5 edits fitted to each photo's paired truth (needs --paired; seconds per photo)."),
    ) -> None:
        """Score the input with a display gamma, an auto-correction and the policy.

        Histogram intersection (SPEC §8, percent) against the targets;
        with --paired also PSNR (dB), CIE76 and CIEDE2000 Delta E and the
        a*/b* bias (sRGB display values, D65 Lab); --oracle adds the white
        box's ceiling. Prints and saves a markdown table and a contact sheet
        (input / baselines / policy / target).
        """
        from rich.console import Console
        from rich.markup import escape

        from exposure_env.colourspace import check_space
        from policies import baselines
        from policies.policy_file import PolicyFileError

        console = Console(stderr=True, soft_wrap=True)
        if oracle and paired is None:
            console.print("[red]error:[/red] --oracle needs --paired (the oracle is fitted to each photo's ground truth)", highlight=False)
            raise typer.Exit(2)
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
            if oracle:
                methods[baselines.ORACLE] = baselines.OracleMethod()
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
            + f"; long side {max_side or 'full'}, crop seed {seed}. Histogram intersection in percent (SPEC §8)"
            + ("; PSNR in dB and ΔE76 / ΔE00 (CIEDE2000) / a* b* bias / neutral chroma shift in ΔE units, on"
               " sRGB display values clipped to [0, 1] (CIELAB, D65)." if paired else ".")
        )
        out.mkdir(parents=True, exist_ok=True)
        (out / "evaluation.md").write_text(f"{header}\n\n{table}\n")
        (out / "metrics.json").write_text(
            json.dumps(
                {
                    "inputs": str(inputs), "targets": str(targets), "paired": str(paired) if paired else None,
                    "policy": str(policy) if policy else None, "max_side": max_side, "seed": seed,
                    "photos": result.names, "num_targets": result.num_targets,
                    "scores": [s.to_dict() for s in result.scores],
                },
                indent=2,
            )
        )
        rows = [("input", ins.images, ins.names)] + [(m, o, ins.names) for m, o in result.outputs.items()]
        rows.append(("ground truth", gts, ins.names) if gts is not None else ("target style", tgs.images, tgs.names))
        baselines.contact_sheet(rows, out / "contact_sheet.png", columns=columns)
        typer.echo(table)
        console.print(f"wrote {escape(str(out / 'evaluation.md'))}, metrics.json, contact_sheet.png", highlight=False)
