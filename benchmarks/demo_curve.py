"""The demo run's histogram intersection against wall-clock time, into docs/benchmarks.md.

    python tune_fivek.py --demo            # writes results/demo/{hi_curve.csv,summary.json}
    python benchmarks/demo_curve.py [results/demo] [--no-write]

Replaces the ``## Demo run`` section: the validation HI (SPEC §8, %) every few iterations,
the untouched inputs' HI, and the final scores (HI per statistic, paired PSNR, CIE76 dE).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import machine_line, markdown_table, write_section  # noqa: E402
from tune_configs.run_layout import HI_CURVE_FILE, SUMMARY_FILE  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", nargs="?", default="results/demo")
    ap.add_argument("--every", type=int, default=4, help="keep every Nth row of the curve")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    run = Path(args.run_dir)
    try:
        rows = list(csv.DictReader((run / HI_CURVE_FILE).open()))
        summary = json.loads((run / SUMMARY_FILE).read_text())
    except (OSError, ValueError) as exc:
        print(f"{run}: no finished demo run here ({exc}); run `python tune_fivek.py --demo` first", file=sys.stderr)
        return 2
    keep = rows[:: args.every] + ([rows[-1]] if (len(rows) - 1) % args.every else [])
    curve = [[f"{float(r['wall_s']):.0f}", r["iteration"], f"{float(r['hi']):.1f}", f"{float(r['hi_inputs']):.1f}"] for r in keep]
    fin, base = summary["final_scores"], summary["baseline_scores"]
    keys = [("hi_average", "HI average %"), ("hi_luminance", "HI luminance %"), ("hi_contrast", "HI contrast %"),
            ("hi_saturation", "HI saturation %"), ("psnr", "PSNR dB (paired)"), ("delta_e", "CIE76 dE (paired)")]
    final = [[label, f"{base[k]:.2f}", f"{fin[k]:.2f}"] for k, label in keys]
    body = "\n\n".join([
        f"`python tune_fivek.py --demo` (PPO, demo recipe), then `python benchmarks/demo_curve.py`. "
        f"Machine: {machine_line()}. {summary['iterations']} iterations in {summary['elapsed_s'] / 60:.1f} min of "
        "training; the machine was shared with other work during this run, so the time axis is pessimistic.",
        "Validation histogram intersection (128 paired validation crops from photos seen in neither training set) "
        "against wall-clock time:",
        markdown_table(["wall s", "iteration", "policy HI %", "untouched inputs HI %"], curve),
        "Final scores:",
        markdown_table(["measure", "untouched inputs", "policy"], final),
    ])
    print(body)
    if not args.no_write:
        write_section("Demo run", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
