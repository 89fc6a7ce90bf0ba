"""``exposure filters``: the filter set with parameter ranges."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("filters")
    def filters_command(
        all_: bool = typer.Option(False, "--all", help="Also list filters outside the paper's default set (Level, the auto-anchored AE, AW and AWs)."),
    ) -> None:
        """List the filters (short name, name, parameters and their ranges)."""
        from rich.console import Console
        from rich.table import Table

        from exposure_env import filters

        table = Table(title="Exposure filters (default order)" if not all_ else "Exposure filters")
        for col in ("#", "short", "name", "params", "range", "identity"):
            table.add_column(col)
        for i, f in enumerate(filters.ALL_FILTERS + filters.ANCHORED_FILTERS if all_ else filters.DEFAULT_FILTERS):
            groups: dict[tuple, list[str]] = {}
            for r in f.ranges:
                groups.setdefault((r.low, r.high, r.unit, r.identity), []).append(r.name)
            rng = "; ".join(
                f"{names[0] if len(names) == 1 else f'{len(names)} x'} [{lo:.3g}, {hi:.3g}] {unit}".strip()
                for (lo, hi, unit, _), names in groups.items()
            )
            ident = ", ".join(sorted({f"{k[3]:.3g}" for k in groups if k[3] is not None}))
            table.add_row(str(i), f.short_name, f.name, str(f.num_params), rng, ident)
        Console().print(table)
