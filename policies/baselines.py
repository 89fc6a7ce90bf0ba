"""Baselines and the evaluation behind ``exposure evaluate`` (SPEC §8).

Every method maps a linear RGB photo ``(H, W, 3)`` float32 to a *display-referred* image in
[0, 1] (what would be written to a file), so all rows of the table are compared alike:

* ``input + gamma`` -- the input with only a display gamma: ``clip(x, 0, 1) ** (1 / 2.2)``;
* ``auto`` -- a simple automatic correction: grey-world white balance (channel means made
  equal), exposure scaled to a mean luminance of 0.18 (linear), then the sRGB encoding
  (:func:`exposure_env.colourspace.linear_to_srgb`);
* ``policy`` -- an exported policy through :class:`policies.retoucher.Retoucher` (its own
  Gamma / curves are the display transform), clipped to [0, 1];
* ``oracle`` -- the white box's ceiling (:mod:`policies.oracle`): the 5-step edit list fitted
  to each photo's own ground truth. It needs the paired truth (:class:`OracleMethod`).

:func:`evaluate` scores each method against a folder of target-style photos with the
histogram intersection of :mod:`rewards.metrics` and, where paired ground truth exists, the
paired metrics of :func:`rewards.metrics.paired_scores` (PSNR dB, CIE76 and CIEDE2000 Delta E,
a*/b* bias and the chroma shift of neutral pixels); :func:`markdown_table` and
:func:`contact_sheet` present the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from exposure_env import io as image_io
from exposure_env import resample
from exposure_env.colour import luminance
from exposure_env.colourspace import linear_to_srgb
from exposure_env.image_statistics import STATISTICS, crop_statistics
from rewards import metrics

DISPLAY_GAMMA = 1.0 / 2.2
MID_GREY = 0.18

Method = Callable[[np.ndarray], np.ndarray]


def gamma_only(image: np.ndarray) -> np.ndarray:
    """Linear ``(H, W, 3)`` -> display ``clip(x, 0, 1) ** (1 / 2.2)``, float32 in [0, 1]."""
    return np.power(np.clip(np.asarray(image, np.float32), 0.0, 1.0), np.float32(DISPLAY_GAMMA), dtype=np.float32)


def grey_world(image: np.ndarray) -> np.ndarray:
    """Scale channels so their means are equal (to the mean of the three); linear in, linear out."""
    x = np.maximum(np.asarray(image, np.float32), 0.0)
    means = x.reshape(-1, 3).mean(axis=0, dtype=np.float64)
    if not np.all(means > 0):
        return x
    return x * (means.mean() / means).astype(np.float32)


def expose_to(image: np.ndarray, mean_luminance: float = MID_GREY) -> np.ndarray:
    """Scale a linear image so its mean luminance (``0.27 R + 0.67 G + 0.06 B``) is ``mean_luminance``."""
    x = np.asarray(image, np.float32)
    lum = float(luminance(x[..., 0], x[..., 1], x[..., 2]).mean(dtype=np.float64))
    return x if lum <= 0 else x * np.float32(mean_luminance / lum)


def auto_correct(image: np.ndarray) -> np.ndarray:
    """Grey-world white balance, exposure to mean luminance 0.18, sRGB encoding -> [0, 1]."""
    return linear_to_srgb(expose_to(grey_world(image)))


def policy_method(retoucher) -> Method:
    """A method from a :class:`policies.retoucher.Retoucher` (deterministic, clipped to [0, 1])."""

    def run(image: np.ndarray) -> np.ndarray:
        out, _ = retoucher.retouch(image)
        return np.clip(out, 0.0, 1.0)

    return run


class OracleMethod:
    """The per-photo oracle as an evaluation method: ``(linear photo, display truth) -> display``.

    ``needs_truth`` tells :func:`evaluate` to pass each photo's paired ground truth; the fitted
    edit lists are kept in ``edits`` and the seconds each photo took in ``seconds`` (input order)."""

    needs_truth = True

    def __init__(self, settings=None):
        self.settings = settings
        self.edits: list = []
        self.seconds: list[float] = []

    def __call__(self, image: np.ndarray, truth: np.ndarray) -> np.ndarray:
        import time

        from .oracle import oracle_retouch

        t0 = time.perf_counter()
        out, result = oracle_retouch(image, truth, self.settings)
        self.seconds.append(time.perf_counter() - t0)
        self.edits.append(result.edits)
        return out


ORACLE = "oracle (fitted to the truth)"

BASELINES: dict[str, Method] = {
    "input + gamma 1/2.2": gamma_only,
    "auto (grey world, 0.18, sRGB)": auto_correct,
}


# --------------------------------------------------------------------------------------
# Photo sets
# --------------------------------------------------------------------------------------
@dataclass
class PhotoSet:
    """Photos of one folder: relative names without suffix and ``(H, W, 3)`` float32 arrays."""

    names: list[str]
    images: list[np.ndarray]
    skipped: list[str] = field(default_factory=list)


def list_photos(folder: str | Path) -> list[Path]:
    """Supported photo files under ``folder`` (recursive, sorted; hidden files ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder")
    return [
        p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and image_io.is_supported(p) and not any(s.startswith(".") for s in p.relative_to(folder).parts)
    ]


def working_size(image: np.ndarray, max_side: int | None) -> np.ndarray:
    """Area-downscale so the long side is at most ``max_side`` (None or 0: unchanged)."""
    h, w = image.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return np.asarray(image, np.float32)
    s = max_side / max(h, w)
    return resample.resize_area(image, max(1, round(h * s)), max(1, round(w * s)))


def load_photos(folder: str | Path, space: str, max_side: int | None = 512) -> PhotoSet:
    """Read every photo of ``folder`` in colour ``space`` at ``max_side``; bad files are skipped
    (their one-line reasons are kept in ``skipped``). Raises ``ValueError`` when none is usable."""
    folder = Path(folder)
    out = PhotoSet([], [])
    for p in list_photos(folder):
        try:
            img = image_io.read_image(p, space)
        except image_io.ImageError as exc:
            out.skipped.append(str(exc))
            continue
        out.names.append(str(p.relative_to(folder).with_suffix("")))
        out.images.append(working_size(img, max_side))
    if not out.images:
        raise ValueError(f"{folder}: no readable photos")
    return out


def match_pairs(inputs: PhotoSet, paired: PhotoSet) -> list[np.ndarray]:
    """The paired ground truth in input order, resized to each input's size; ``ValueError``
    naming the first input without a pair or with a different aspect ratio."""
    by_name = dict(zip(paired.names, paired.images))
    out = []
    for name, img in zip(inputs.names, inputs.images):
        if name not in by_name:
            raise ValueError(f"{name}: no paired ground-truth photo with this name")
        gt = by_name[name]
        (h, w), (gh, gw) = img.shape[:2], gt.shape[:2]
        if abs(h / w - gh / gw) > 0.01 * (h / w):
            raise ValueError(f"{name}: paired photo has another aspect ratio ({gw} x {gh} vs {w} x {h})")
        out.append(gt if (gh, gw) == (h, w) else resample.resize_area(gt, h, w))
    return out


# --------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------
@dataclass
class MethodScores:
    """One row of the table; the paired metrics are None without paired ground truth.

    ``psnr`` dB; ``delta_e`` (CIE76) and ``delta_e2000`` mean Delta E; ``a_bias`` / ``b_bias``
    mean a*/b* of output minus truth; ``neutral_chroma_shift`` see :func:`rewards.metrics.colour_cast`.
    """

    method: str
    histogram: dict[str, float]
    psnr: float | None = None
    delta_e: float | None = None
    delta_e2000: float | None = None
    a_bias: float | None = None
    b_bias: float | None = None
    neutral_chroma_shift: float | None = None

    def set_paired(self, paired: dict[str, float]) -> None:
        """Fill the paired fields from :func:`rewards.metrics.paired_scores`."""
        self.psnr, self.delta_e, self.delta_e2000 = paired["psnr"], paired["delta_e76"], paired["delta_e2000"]
        self.a_bias, self.b_bias = paired["a_bias"], paired["b_bias"]
        self.neutral_chroma_shift = paired["neutral_chroma_shift"]

    def to_dict(self) -> dict:
        """JSON-ready (NaN / inf -> None)."""
        values = {
            **self.histogram, "psnr": self.psnr, "delta_e76": self.delta_e, "delta_e2000": self.delta_e2000,
            "a_bias": self.a_bias, "b_bias": self.b_bias, "neutral_chroma_shift": self.neutral_chroma_shift,
        }
        return {"method": self.method, **{k: v if v is None or np.isfinite(v) else None for k, v in values.items()}}


@dataclass
class Evaluation:
    scores: list[MethodScores]
    outputs: dict[str, list[np.ndarray]]  # method -> display images, input order
    names: list[str]
    num_targets: int
    seed: int


def evaluate(
    inputs: Sequence[np.ndarray],
    targets: Sequence[np.ndarray],
    methods: dict[str, Method],
    *,
    paired: Sequence[np.ndarray] | None = None,
    names: Sequence[str] | None = None,
    seed: int = 0,
) -> Evaluation:
    """Score every method's outputs on ``inputs`` (linear) against ``targets`` (display).

    Histogram intersection (percent) against the target set; with ``paired`` (display, one per
    input, same size) also the paired metrics (:func:`rewards.metrics.paired_scores`: means over
    photos). A method with ``needs_truth`` (:class:`OracleMethod`) is called ``fn(image, truth)``
    and needs ``paired`` (``ValueError`` otherwise).
    """
    if paired is not None and len(paired) != len(inputs):
        raise ValueError(f"{len(inputs)} inputs but {len(paired)} paired photos")
    needy = [name for name, fn in methods.items() if getattr(fn, "needs_truth", False)]
    if needy and paired is None:
        raise ValueError(f"{needy[0]} needs the paired ground truth (--paired)")
    target_stats = crop_statistics(metrics.evaluation_crops(targets, np.random.default_rng(seed)))
    scores, outputs = [], {}
    for name, fn in methods.items():
        if getattr(fn, "needs_truth", False):
            raw = [fn(img, gt) for img, gt in zip(inputs, paired)]
        else:
            raw = [fn(img) for img in inputs]
        outs = [np.clip(np.asarray(o, np.float32), 0.0, 1.0) for o in raw]
        outputs[name] = outs
        stats = crop_statistics(metrics.evaluation_crops(outs, np.random.default_rng(seed)))
        row = MethodScores(name, metrics.intersection_from_statistics(stats, target_stats))
        if paired is not None:
            row.set_paired(metrics.paired_scores(outs, paired))
        scores.append(row)
    return Evaluation(scores, outputs, list(names or [str(i) for i in range(len(inputs))]), len(targets), seed)


#: Paired columns of :func:`markdown_table`: (header, MethodScores field, format).
PAIRED_COLUMNS = (
    ("PSNR dB", "psnr", ".2f"),
    ("ΔE76", "delta_e", ".2f"),
    ("ΔE00", "delta_e2000", ".2f"),
    ("a* bias", "a_bias", "+.2f"),
    ("b* bias", "b_bias", "+.2f"),
    ("neutral ΔC", "neutral_chroma_shift", ".2f"),
)


def _cell(value, spec: str) -> str:
    return "-" if value is None or not np.isfinite(value) else format(value, spec)


def markdown_table(evaluation: Evaluation) -> str:
    """The scores as a markdown table: histogram intersection in percent and, with paired truth,
    PSNR (dB), ΔE76, ΔE00 (CIEDE2000), a*/b* bias and the neutral chroma shift (ΔE units)."""
    paired = any(s.psnr is not None for s in evaluation.scores)
    head = ["method", "luminance %", "contrast %", "saturation %", "average %"]
    head += [h for h, _, _ in PAIRED_COLUMNS] if paired else []
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in evaluation.scores:
        cells = [s.method] + [f"{s.histogram[k]:.1f}" for k in (*STATISTICS, "average")]
        if paired:
            cells += [_cell(getattr(s, attr), spec) for _, attr, spec in PAIRED_COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fit(image: np.ndarray, box: int) -> np.ndarray:
    h, w = image.shape[:2]
    s = box / max(h, w)
    return resample.resize_area(image, max(1, round(h * s)), max(1, round(w * s)))


def contact_sheet(
    rows: Sequence[tuple[str, Sequence[np.ndarray], Sequence[str]]],
    path: str | Path | None = None,
    *,
    columns: int = 6,
    tile: int = 128,
) -> np.ndarray:
    """A grid PNG: one row per ``(label, images, names)`` (display values, shown clipped, no
    gamma), at most ``columns`` photos per row, each tile labelled ``label: name``.

    Rows are made with :func:`exposure_env.render.step_strip` and stacked. Returns uint8.
    """
    from PIL import Image

    from exposure_env.render import step_strip

    strips = []
    for label, images, names in rows:
        imgs = [_fit(np.asarray(im, np.float32), tile) for im in list(images)[:columns]]
        if imgs:
            strips.append(step_strip(imgs, [f"{label}: {n}" for n in list(names)[: len(imgs)]], scale=1, max_lines=3))
    if not strips:
        raise ValueError("contact_sheet: nothing to show")
    width = max(s.shape[1] for s in strips)
    sheet = np.full((sum(s.shape[0] for s in strips), width, 3), 255, np.uint8)
    y = 0
    for s in strips:
        sheet[y : y + s.shape[0], : s.shape[1]] = s
        y += s.shape[0]
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(sheet).save(path, format="PNG")
    return sheet
