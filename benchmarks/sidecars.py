"""Editor sidecars vs the project's own render: agreement per filter and per editor, real programs.

    python benchmarks/sidecars.py [--photos 3] [--size 320] [--draws 2] [--lists 8] [--no-write]

For scikit-image photos written as 16-bit TIFF (decoded as ProPhoto, ``x ** 1.8``) and 8-bit
PNG (decoded as sRGB, ``x ** 2.2 / (2 max)``), every filter alone with random parameters and
random 5-step edit lists covering every filter are written as darktable / RawTherapee sidecars,
rendered by ``darktable-cli`` / ``rawtherapee-cli`` at the photo's full size, and compared with
``apply_edits`` of the same edits on ``read_image`` of the same file, written as our output file
is. Both are compared as **sRGB-encoded output values** in [0, 1] (our output file values, the
editors' sRGB exports): PSNR (peak 1), CIE76 and CIEDE2000 Delta E after an exact sRGB -> CIELAB
(D65) conversion (``rewards.metrics``). Lightroom cannot run here: its sidecars are only checked
against the ``crs:`` schema. Replaces the ``## Editor sidecars`` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import machine_line, markdown_table, write_section  # noqa: E402
from exposure_env import filters as F  # noqa: E402
from exposure_env.edits import Edit, apply_edits  # noqa: E402
from exposure_env.io import read_image  # noqa: E402
from exposure_env.sidecars import InputDecoding, editors, render  # noqa: E402
from exposure_env.sidecars import lightroom, rawtherapee  # noqa: E402
from rewards.metrics import delta_e76, delta_e2000, psnr  # noqa: E402

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle_left")
FILTERS = [f.short_name for f in F.ALL_FILTERS]
#: What each editor can express exactly (up to float / LUT rounding and curve fitting).
EXACT = {
    "darktable": {"E", "G", "W", "T", "BW", "C", "L", "BW p=1"},
    "rawtherapee": {"E", "G", "W", "T", "C", "L", "BW p=1"},
}
TARGET_DB = 35.0


def make_photos(folder: Path, names, size: int) -> list[Path]:
    """Each photo (longest side ``size``) as a 16-bit TIFF and an 8-bit PNG."""
    import tifffile
    from PIL import Image

    from exposure_env.datasets.demo.photos import photo_path

    out = []
    for name in names:
        im = Image.open(photo_path(name)).convert("RGB")
        im.thumbnail((size, size), Image.LANCZOS)
        arr = np.asarray(im)
        tif, png = folder / f"{name}.tif", folder / f"{name}.png"
        tifffile.imwrite(tif, (arr.astype(np.float64) / 255 * 65535).round().astype(np.uint16), photometric="rgb")
        im.save(png)
        out += [tif, png]
    return out


def random_edit(name: str, rng: np.random.Generator) -> Edit:
    """A random edit of filter ``name``: actions uniform in [-0.7, 0.7] (E: +/- 2.45 EV, G: 1/2.2 .. 2.2),
    blends (S+, BW) in [0.2, 1], Level's black point up to 0.35 and white point up to 1.5."""
    if name == "BW p=1":
        return Edit("BW", (1.0,))
    f = F.get(name)
    a = rng.uniform(-0.7, 0.7, (1, f.num_params))
    if name in ("S+", "BW"):
        a = rng.uniform(0.2, 1.0, a.shape)
    elif name == "L":
        a = rng.uniform(0.0, [0.35, 0.5], a.shape)
    return Edit(f.short_name, tuple(np.asarray(f.params_from_action(a.astype(np.float32)))[0]))


def random_lists(n: int, rng: np.random.Generator) -> list[list[Edit]]:
    """``n`` 5-step lists of distinct filters in random order; each pair uses all nine filters."""
    lists = []
    while len(lists) < n:
        order = rng.permutation(FILTERS)
        lists += [[random_edit(name, rng) for name in order[:5]], [random_edit(name, rng) for name in order[4:]]]
    return lists[:n]


def ours(photo: Path, edits) -> np.ndarray:
    """The project's output values for ``edits`` (what ``exposure apply`` writes), float64 in [0, 1]."""
    return np.clip(apply_edits(read_image(photo), list(edits)), 0.0, 1.0).astype(np.float64)


def compare(editor: str, photo: Path, edits, scratch: Path) -> dict:
    dec = InputDecoding.for_file(photo)
    side = scratch / f"sidecar.{editor}"
    side.write_bytes(render(editor, dec, list(edits), photo.name))
    t0 = time.perf_counter()
    got = editors.render(editor, photo, side, scratch=scratch)
    seconds = time.perf_counter() - t0
    want = ours(photo, edits)
    return {"psnr": psnr(got, want), "de76": delta_e76(got, want), "de2000": delta_e2000(got, want),
            "without": psnr(ours(photo, []), want), "s": seconds}


def _summary(rows: list[dict]) -> tuple[str, str, str, str, str]:
    p = [r["psnr"] for r in rows]
    return (f"{np.mean(p):.1f}", f"{np.min(p):.1f}", f"{np.mean([r['de76'] for r in rows]):.2f}",
            f"{np.mean([r['de2000'] for r in rows]):.2f}", f"{np.mean([r['without'] for r in rows]):.1f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=3, help="how many scikit-image photos (each as TIFF and PNG)")
    ap.add_argument("--size", type=int, default=320, help="longest side of the photos, pixels")
    ap.add_argument("--draws", type=int, default=2, help="random parameter draws per filter and photo file")
    ap.add_argument("--lists", type=int, default=8, help="random 5-step edit lists")
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = ap.parse_args(argv)
    available = [e for e in ("darktable", "rawtherapee") if editors.program(e)]
    if not available:
        print("neither darktable-cli nor rawtherapee-cli is installed: nothing to measure", file=sys.stderr)
        return 1
    rng = np.random.default_rng(11)
    cases = FILTERS + ["BW p=1"]
    per_filter = {e: {c: [] for c in cases} for e in available}
    lists = random_lists(args.lists, rng)
    per_list = {e: [] for e in available}
    lr_problems = lr_count = 0
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photos = make_photos(tmp, PHOTOS[: args.photos], args.size)
        for photo in photos:
            for case in cases:
                for _ in range(args.draws if case != "BW p=1" else 1):
                    edit = random_edit(case, rng)
                    for editor in available:
                        per_filter[editor][case].append(compare(editor, photo, [edit], tmp))
                    lr_problems += len(lightroom.validate(render("lightroom", InputDecoding.for_file(photo), [edit], photo.name)))
                    lr_count += 1
            print(f"{photo.name}: filters done ({time.perf_counter() - t_start:.0f} s)", flush=True)
        for k, edits in enumerate(lists):
            photo = photos[k % len(photos)]
            for editor in available:
                row = compare(editor, photo, edits, tmp)
                row["edits"] = edits
                row["photo"] = photo.name
                per_list[editor].append(row)
            lr_problems += len(lightroom.validate(render("lightroom", InputDecoding.for_file(photo), edits, photo.name)))
            lr_count += 1
    minutes = (time.perf_counter() - t_start) / 60
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    versions = {e: subprocess.run([editors.program(e), "--version"] if e == "darktable" else [editors.program(e), "-v"],
                                  capture_output=True, text=True).stdout.strip().splitlines()[0] for e in available}
    versions = {e: v.removeprefix("this is ").rstrip(".") for e, v in versions.items()}
    parts = [
        f"Machine: {machine_line()}. Load during the run (`uptime` at the end): `{load}`. "
        f"Produced by `python benchmarks/sidecars.py --photos {args.photos} --size {args.size} --draws {args.draws} "
        f"--lists {args.lists}` in {minutes:.0f} min. Editors: {'; '.join(versions.values())}.",
        f"Photos: {', '.join(PHOTOS[: args.photos])} (scikit-image), longest side {args.size} px, each as a 16-bit "
        "TIFF (decoded as ProPhoto, `x ** 1.8`) and an 8-bit PNG (sRGB, `x ** 2.2 / (2 max)`); renders compared at "
        "that full size. **Colour space compared: sRGB-encoded output values** in [0, 1] (our output file values vs "
        "the editor's sRGB export); PSNR with peak 1; Delta E after exact sRGB -> CIELAB (D65). "
        "`without` = PSNR of our unedited render to our edited one: what leaving the edit(s) out would score (an "
        "ignored sidecar scores there; an approximation is useful where it scores higher). "
        f"Target: >= {TARGET_DB:.0f} dB for every filter an editor expresses exactly.",
    ]
    for editor in available:
        rows = []
        for case in cases:
            r = per_filter[editor][case]
            kind = "exact" if case in EXACT[editor] else "approximation"
            ok = "yes" if float(np.min([x["psnr"] for x in r])) >= TARGET_DB else "no"
            rows.append([case, kind, len(r), *_summary(r), ok if kind == "exact" else "-"])
        parts.append(f"### {editor}: every filter alone (random parameters)")
        parts.append(markdown_table(["filter", "kind", "renders", "PSNR mean dB", "PSNR min dB", "dE76 mean",
                                     "dE2000 mean", "without dB", ">= 35 dB"], rows))
    summary = []
    for editor in available:
        for case in cases:
            r = per_filter[editor][case]
            if case not in EXACT[editor]:
                summary.append(f"{editor} {case}: {np.mean([x['psnr'] for x in r]):.1f} dB mean, "
                               f"{np.min([x['psnr'] for x in r]):.1f} min (leaving it out: {np.mean([x['without'] for x in r]):.1f})")
        worst = min(np.min([x["psnr"] for x in per_filter[editor][c]]) for c in cases if c in EXACT[editor])
        summary.append(f"{editor}, every exact filter: >= {worst:.1f} dB")
    parts.insert(2, "Summary: " + "; ".join(summary) + ".")
    for editor in available:
        rows = []
        for k, r in enumerate(per_list[editor], 1):
            names = " ".join(e.filter for e in r["edits"])
            if editor == "rawtherapee":
                approx = "exact" if rawtherapee.plan(r["edits"]).exact else "approx."
            else:
                approx = "approx." if {"S+", "Ct"} & {e.filter for e in r["edits"]} else "exact"
            rows.append([k, names, r["photo"], approx, f"{r['psnr']:.1f}", f"{r['de76']:.2f}", f"{r['de2000']:.2f}",
                         f"{r['without']:.1f}"])
        parts.append(f"### {editor}: random 5-step edit lists")
        parts.append(markdown_table(["#", "edits", "photo", "kind", "PSNR dB", "dE76", "dE2000", "without dB"], rows))
    parts.append(f"### Lightroom\n\nNot rendered (no Lightroom here; unverified). All "
                 f"{lr_count} Lightroom sidecars of these edits pass the "
                 f"`crs:` schema check: {'yes' if lr_problems == 0 else f'no ({lr_problems} problems)'}.")
    body = "\n\n".join(parts)
    print(body)
    if not args.no_write:
        write_section("Editor sidecars", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
