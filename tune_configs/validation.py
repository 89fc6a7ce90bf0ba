"""Fixed-validation-set evaluation of a policy during training (SPEC §8).

The policy decides on the 64x64 thumbnail of each validation crop, deterministically, for
``steps`` (5) steps (:func:`policies.rollout.rollout`), exactly as the retoucher does; the
edit list is then applied to the crop itself (:func:`exposure_env.edits.apply_edits`) and the
result, clipped to [0, 1], is compared with the target set by the histogram intersection of
:func:`rewards.metrics.histogram_intersection` (fixed crop seed, so numbers are comparable
between iterations; the targets' crop statistics are computed once). With paired ground truth
the paired metrics of :func:`rewards.metrics.paired_scores` are reported too (PSNR dB,
CIE76 / CIEDE2000 Delta E, a*/b* bias, neutral chroma shift).

Reference rows, computed once per validator on the same crops (:meth:`Validator.references`):
the untouched inputs (clipped, :meth:`Validator.baseline`), the inputs with a display gamma
and the auto-correction of :mod:`policies.baselines`. :meth:`Validator.evaluate` returns them
under ``"baselines"`` and also flat in ``"scores"`` as ``<key>_gamma`` / ``<key>_auto`` (e.g.
``psnr_auto``), so every consumer of the scores (TensorBoard ``eval/*``, the run summary) shows
the policy next to them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from exposure_env import filters as filter_registry
from exposure_env.edits import apply_edits
from exposure_env.image_statistics import crop_statistics
from exposure_env.resample import thumbnail
from rewards.metrics import evaluation_crops, intersection_from_statistics, paired_scores

#: Paired keys of the validation scores (``delta_e`` is CIE76) and where they come from.
PAIRED_SCORE_KEYS = {
    "psnr": "psnr",
    "delta_e": "delta_e76",
    "delta_e2000": "delta_e2000",
    "a_bias": "a_bias",
    "b_bias": "b_bias",
    "neutral_chroma_shift": "neutral_chroma_shift",
}
#: Keys copied from each reference row into the policy's scores as ``<key>_<reference>``.
REFERENCE_KEYS = ("hi", *PAIRED_SCORE_KEYS)


def _display(images: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0)


@dataclass
class Validator:
    """``images`` ``(N, S, S, 3)`` linear inputs; ``targets`` display-referred images to match;
    ``paired``: per-input ground truth (optional)."""

    images: np.ndarray
    targets: np.ndarray
    paired: np.ndarray | None = None
    filters: list[str] | None = None
    steps: int = 5
    thumb_size: int = 64
    strips: int = 4
    seed: int = 0
    _baseline: dict | None = field(default=None, init=False, repr=False)
    _references: dict | None = field(default=None, init=False, repr=False)
    _target_stats: np.ndarray | None = field(default=None, init=False, repr=False)
    #: Optional second validator (training crops vs training targets) run beside this one.
    train_validator: "Validator | None" = field(default=None, init=False, repr=False)

    def __post_init__(self):
        self.images = np.asarray(self.images, dtype=np.float32)
        self.filter_list = filter_registry.resolve(self.filters)
        self.thumbs = np.asarray(thumbnail(self.images, self.thumb_size), dtype=np.float32)

    def baseline(self) -> dict[str, float]:
        """Scores of the untouched inputs (clipped to [0, 1], as if written unedited)."""
        if self._baseline is None:
            out = _display(self.images)
            self._baseline = self._scores(out)
        return self._baseline

    def references(self) -> dict[str, dict[str, float]]:
        """Scores of the reference methods on the same crops, computed once: ``inputs`` (untouched,
        clipped), ``gamma`` (inputs with display gamma 1/2.2) and ``auto`` (the auto-correction)."""
        if self._references is None:
            from policies.baselines import auto_correct, gamma_only

            self._references = {
                "inputs": self.baseline(),
                "gamma": self._scores(np.stack([gamma_only(x) for x in self.images])),
                "auto": self._scores(np.stack([auto_correct(x) for x in self.images])),
            }
        return self._references

    def _statistics(self, images) -> np.ndarray:
        """§8 crop statistics of a set, crops drawn from ``default_rng(seed)`` (as
        :func:`rewards.metrics.histogram_intersection` draws each set's)."""
        return crop_statistics(evaluation_crops(images, np.random.default_rng(self.seed)))

    def _scores(self, outputs: np.ndarray) -> dict[str, float]:
        if self._target_stats is None:  # the targets are fixed: their statistics once
            self._target_stats = self._statistics(self.targets)
        hi = intersection_from_statistics(self._statistics(outputs), self._target_stats)
        scores = {f"hi_{k}": v for k, v in hi.items()}
        scores["hi"] = hi["average"]
        if self.paired is not None:
            paired = paired_scores(outputs, self.paired)
            scores.update({k: paired[m] for k, m in PAIRED_SCORE_KEYS.items()})
        return scores

    def with_references(self, scores: dict[str, float]) -> dict[str, float]:
        """``scores`` plus ``<key>_gamma`` and ``<key>_auto`` of :data:`REFERENCE_KEYS` present."""
        out = dict(scores)
        for name in ("gamma", "auto"):
            ref = self.references()[name]
            out.update({f"{k}_{name}": ref[k] for k in REFERENCE_KEYS if k in ref})
        return out

    def evaluate(self, policy) -> dict:
        """Run ``policy`` (module or callable, see :func:`policies.rollout.rollout`).

        Returns ``{"scores": {...}, "baselines": {"inputs" | "gamma" | "auto": {...}},
        "filter_freq": {step: {F: share}}, "param_mean": {F: mean of its parameters in filter
        units}, "strips": [(frames, labels), ...], "edits", "outputs": images}``. ``scores`` holds
        the policy's ``hi``, ``hi_<statistic>`` and, with paired truth, ``psnr``, ``delta_e``
        (CIE76), ``delta_e2000``, ``a_bias``, ``b_bias``, ``neutral_chroma_shift``; plus the
        references' values of the same keys as ``<key>_gamma`` / ``<key>_auto``.
        """
        from policies.rollout import rollout

        _, edits, frames = rollout(policy, self.thumbs, self.filter_list, self.steps, deterministic=True, mask_used=True)
        outputs = _display(np.stack([apply_edits(img, e) for img, e in zip(self.images, edits)]))
        n = len(edits)
        freq: dict[int, dict[str, float]] = {}
        for t in range(self.steps):
            counts = Counter(e[t].filter for e in edits if len(e) > t)
            freq[t] = {f.short_name: counts.get(f.short_name, 0) / n for f in self.filter_list}
        values: dict[str, list[float]] = {}
        for e_list in edits:
            for e in e_list:
                values.setdefault(e.filter, []).append(float(np.mean(e.params)))
        strips = []
        for i in range(min(self.strips, n)):
            labels = ["input"] + [e.describe() for e in edits[i]]
            strips.append(([f[i] for f in frames], labels))
        return {
            "scores": self.with_references(self._scores(outputs)),
            "baselines": self.references(),
            "filter_freq": freq,
            "param_mean": {k: float(np.mean(v)) for k, v in values.items()},
            "strips": strips,
            "edits": edits,
            "outputs": outputs,
        }
