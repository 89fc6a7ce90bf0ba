"""The closing report of a training run (``exposure train``, ``tune_fivek.py``): one table.

Rows: the policy at its best validation (the checkpoint to export) and at the end of the run,
the auto-correction and the inputs with a display gamma (scored on the same validation crops,
:meth:`tune_configs.validation.Validator.references`) and the untouched inputs. Columns:
histogram intersection (%, SPEC §8) and, where the validation set has ground truth, PSNR (dB),
CIE76 and CIEDE2000 Delta E and the mean b* bias (Lab units; negative = bluer than the truth).
HI alone can be gamed; the paired columns say how close the edits are to the truth.
"""

from __future__ import annotations

import math

from .run_layout import TENSORBOARD_DIR

#: (column title, score key, format) of the table.
COLUMNS = (
    ("HI %", "hi", "{:.1f}"),
    ("PSNR dB", "psnr", "{:.2f}"),
    ("dE76", "delta_e", "{:.1f}"),
    ("dE2000", "delta_e2000", "{:.1f}"),
    ("b* bias", "b_bias", "{:+.1f}"),
)


def _rows(summary) -> list[tuple[str, dict]]:
    f, b = summary.final_scores or {}, summary.baseline_scores or {}
    rows = []
    if summary.best_scores is not None and summary.best_iteration is not None:
        rows.append((f"policy, best (iteration {summary.best_iteration})", summary.best_scores))
    rows.append((f"policy, last (iteration {summary.iterations})", f))
    for suffix, label in (("auto", "auto-correction"), ("gamma", "inputs + gamma 1/2.2")):
        ref = {key: f[f"{key}_{suffix}"] for _, key, _ in COLUMNS if f"{key}_{suffix}" in f}
        if ref:
            rows.append((label, ref))
    rows.append(("untouched inputs", b))
    return rows


def _cell(scores: dict, key: str, fmt: str) -> str:
    v = scores.get(key)
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "-"
    return fmt.format(v) if math.isfinite(v) else "-"


def report_lines(summary) -> list[str]:
    """The report of a :class:`tune_configs.run_loop.RunSummary` as plain text lines."""
    rows = _rows(summary)
    columns = [c for c in COLUMNS if any(k in sc for _, sc in rows for k in (c[1],))]
    width = max(len(label) for label, _ in rows)
    lines = [
        f"Trained {summary.iterations} iterations in {summary.elapsed_s / 60:.1f} min ({summary.env_steps} env steps).",
        "Validation photos (never trained on):",
        "  " + " " * width + "".join(f"{title:>10s}" for title, _, _ in columns),
    ]
    for label, sc in rows:
        lines.append(f"  {label:<{width}s}" + "".join(f"{_cell(sc, key, fmt):>10s}" for _, key, fmt in columns))
    best = summary.best_checkpoint or summary.checkpoint
    lines.append(f"Checkpoint to export (best validation): {best}")
    lines.append(f"TensorBoard: tensorboard --logdir {summary.run_dir / TENSORBOARD_DIR}")
    if getattr(summary, "storage", None):
        lines.append(f"Stored in: {summary.storage} (checkpoints, logs, summary)")
    return lines


__all__ = ["COLUMNS", "report_lines"]
