"""The white box's ceiling: a per-photo edit list fitted to the paired ground truth.

For one linear photo and its display-referred ground truth, :func:`fit_oracle` finds the
``steps``-long edit list (each filter at most once, as in the agent's episode) whose output --
clipped to [0, 1], as written and as evaluated -- is closest to the truth in mean squared
error, by gradient descent through the torch filters (``Filter.pixel``, SPEC §2):

* **parameters**: one raw vector ``u`` per step; action ``a = tanh``-squashed into the range
  of actions that matter ([-1, 1]; [0, 1] for blend filters, which are off for ``a <= 0``);
  parameters ``Filter.params_from_action(a)`` -- the agent's own action space, so the fitted
  list is one the policy could output. Start: the identity (blends at 10 %). Optimiser:
  L-BFGS with a strong-Wolfe line search (a few dozen evaluations per list);
* **filter orders**: the canonical orders of :data:`CANONICAL_ORDERS` plus a greedy build-up
  (append every unused filter to the best prefix(es), refit the whole list warm-started, keep
  the ``beam`` best, until ``steps`` filters), all on ``search_pixels`` random pixels; the
  ``candidates`` best lists are refitted on ``fit_pixels`` other pixels and the best is kept.
* **resolution**: every filter is per-pixel (the same function at every size), so a random
  pixel sample is an unbiased small copy of the photo (unlike an area-downsampled one, whose
  averaged pixels pass through the non-linear filters differently); the fitted list is applied
  to the full-size photo by :func:`exposure_env.edits.apply_edits` (:func:`oracle_output`).

Cost: about 250 list fits of ~4 K pixels, 3-8 s per photo on one CPU thread (torch runs with
``threads`` threads during the fit, 1 by default: the tensors are small, overhead dominates).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field

import numpy as np

from exposure_env import filters as filter_registry
from exposure_env.backend import ops_for as filter_ops
from exposure_env.edits import Edit, apply_edits
from exposure_env.filters.base import BlendFilter
from exposure_env.resample import resize_area

#: Orders tried as they are (besides the greedy search); filters missing from the set are skipped.
CANONICAL_ORDERS: tuple[tuple[str, ...], ...] = (
    ("E", "W", "G", "Ct", "S+"),  # the demo expert's recipe (exposure_env.datasets.demo)
    ("E", "W", "G", "T", "S+"),
    ("W", "E", "G", "T", "C"),
    ("E", "W", "T", "Ct", "C"),
    ("E", "G", "W", "S+", "T"),
)


@dataclass(frozen=True)
class OracleSettings:
    """Search and fit sizes; the defaults take a few seconds per photo on one CPU thread."""

    steps: int = 5
    filters: tuple[str, ...] | None = None  # None: the default set
    orders: tuple[tuple[str, ...], ...] = CANONICAL_ORDERS
    beam: int = 1  # orders kept at each step of the greedy build-up (0: no greedy search)
    search_pixels: int = 4096  # random pixels the orders are searched on
    fit_pixels: int = 16384  # random pixels the best orders are refitted on
    order_iters: int = 30  # L-BFGS iterations per canonical order
    greedy_iters: int = 10  # L-BFGS iterations per greedy candidate (warm-started)
    fit_iters: int = 60  # L-BFGS iterations of the final refit
    candidates: int = 2  # best orders refitted on fit_pixels
    seed: int = 0  # pixel sample
    threads: int = 1


@dataclass
class OracleResult:
    """The fitted list and its mean squared error on the fitting sample (display, clipped)."""

    edits: list[Edit]
    mse: float
    orders_tried: int
    fits: int
    history: list[tuple[tuple[str, ...], float]] = field(default_factory=list)

    @property
    def order(self) -> tuple[str, ...]:
        return tuple(e.filter for e in self.edits)

    @property
    def psnr(self) -> float:
        """PSNR in dB on the fitting sample (peak 1)."""
        return float("inf") if self.mse <= 0 else -10.0 * math.log10(self.mse)


@contextlib.contextmanager
def _torch_threads(n: int):
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _action_range(f) -> tuple[float, float]:
    """Actions that matter: blend filters are off for every ``a <= 0``, so theirs is [0, 1]."""
    return (0.0, 1.0) if isinstance(f, BlendFilter) else (-1.0, 1.0)


def _action(f, u):
    """Raw ``u`` (any backend) -> action in the filter's :func:`_action_range` (open interval)."""
    lo, hi = _action_range(f)
    ops = filter_ops(u)
    return lo + (hi - lo) * (ops.tanh(u) + 1.0) * 0.5


def _raw_from_action(f, a: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_action` (clipped inside the open interval)."""
    lo, hi = _action_range(f)
    t = np.clip(2.0 * (np.asarray(a, np.float64) - lo) / (hi - lo) - 1.0, -0.999, 0.999)
    return np.arctanh(t).astype(np.float32)


#: Raw start of every filter: its identity action (blend filters: a 10 % blend, so the
#: gradient is alive; the identity itself sits at the edge of their range).
def _start(f) -> np.ndarray:
    a = np.zeros(f.num_params, np.float32)
    if isinstance(f, BlendFilter):
        a[:] = 0.1
    return _raw_from_action(f, a)


def _render(x, order, raws):
    """Torch forward: linear planes ``x`` (3, P) through ``order`` with raw vectors -> (3, P)."""
    r, g, b = x[0:1], x[1:2], x[2:3]
    for f, u in zip(order, raws):
        p = f.params_from_action(_action(f, u))
        r, g, b = f.pixel(r, g, b, [p[:, k : k + 1] for k in range(f.num_params)])
    return r, g, b


def _fit(sample, order, init, iters: int) -> tuple[list[np.ndarray], float]:
    """L-BFGS (strong Wolfe line search) on the raw vectors of ``order`` from ``init``; returns
    ``(raws, MSE of the clipped output against the truth on sample)``."""
    import torch

    x, y = sample
    raws = [torch.from_numpy(np.asarray(r, np.float32).reshape(1, -1).copy()).requires_grad_(True) for r in init]
    opt = torch.optim.LBFGS(
        raws, lr=1.0, max_iter=iters, history_size=20, line_search_fn="strong_wolfe",
        tolerance_grad=1e-12, tolerance_change=1e-15,
    )

    def error():
        out = _render(x, order, raws)
        return sum(((o.clamp(0.0, 1.0) - y[c : c + 1]) ** 2).mean() for c, o in enumerate(out)) / 3.0

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = error()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        mse = float(error())
    return [r.detach().numpy().reshape(-1).copy() for r in raws], mse


def _edits(order, raws) -> list[Edit]:
    out = []
    for f, u in zip(order, raws):
        a = _action(f, np.asarray(u, np.float32).reshape(1, -1))
        out.append(Edit(f.short_name, tuple(np.asarray(f.params_from_action(a), np.float64)[0])))
    return out


def pixel_sample(image: np.ndarray, truth: np.ndarray, n: int, seed: int = 0):
    """Torch ``(x (3, n) linear, y (3, n) display)``: the same ``n`` random pixels of the
    photo and of its truth (resampled to the photo's size when it differs). Every filter is
    per-pixel, so the fit on the sample is the fit on the photo (without area-averaging bias)."""
    import torch

    h, w = image.shape[:2]
    truth = np.clip(truth, 0.0, 1.0)
    if truth.shape[:2] != (h, w):
        truth = resize_area(truth, h, w)
    flat_x, flat_y = image.reshape(-1, 3), truth.reshape(-1, 3)
    idx = np.random.default_rng(seed).choice(h * w, size=min(n, h * w), replace=False)
    to = lambda a: torch.from_numpy(np.ascontiguousarray(a[idx].T, np.float32))  # noqa: E731
    return to(flat_x), to(flat_y)


def fit_oracle(image: np.ndarray, truth: np.ndarray, settings: OracleSettings | None = None) -> OracleResult:
    """Fit the best edit list for ``image`` (linear ``(H, W, 3)``) to ``truth`` (display, [0, 1]).

    ``truth`` must have the photo's framing (any size; it is resampled to the photo's). See the
    module docstring for the search. Raises ``ValueError`` for bad shapes or settings.
    """
    s = settings or OracleSettings()
    image, truth = np.asarray(image, np.float32), np.asarray(truth, np.float32)
    if image.ndim != 3 or image.shape[-1] != 3 or truth.ndim != 3 or truth.shape[-1] != 3:
        raise ValueError(f"fit_oracle: expected (H, W, 3) photo and truth, got {image.shape} and {truth.shape}")
    pool = filter_registry.resolve(s.filters)
    if not 1 <= s.steps <= len(pool):
        raise ValueError(f"fit_oracle: steps must be in 1..{len(pool)}, got {s.steps}")
    by_name = {f.short_name: f for f in pool}
    orders = [[by_name[n] for n in names if n in by_name][: s.steps] for names in s.orders]
    orders = [o for o in orders if len(o) == s.steps]
    if not orders and s.beam < 1:
        raise ValueError("fit_oracle: nothing to search (no usable canonical order and beam = 0)")
    found: dict[tuple[str, ...], tuple[float, list[np.ndarray]]] = {}
    fits = 0

    def fit(sample, order, init, iters):
        nonlocal fits
        raws, mse = _fit(sample, order, init, iters)
        fits += 1
        key = tuple(f.short_name for f in order)
        if len(order) == s.steps and (key not in found or mse < found[key][0]):
            found[key] = (mse, raws)
        return raws, mse

    with _torch_threads(s.threads):
        search = pixel_sample(image, truth, s.search_pixels, s.seed)
        for order in orders:
            fit(search, order, [_start(f) for f in order], s.order_iters)
        beam: list[tuple[list, list[np.ndarray], float]] = [([], [], 0.0)] if s.beam > 0 else []
        for _ in range(s.steps if beam else 0):
            tries = [
                (prefix + [f], *fit(search, prefix + [f], raws + [_start(f)], s.greedy_iters))
                for prefix, raws, _ in beam
                for f in pool
                if f not in prefix
            ]
            beam = sorted(tries, key=lambda t: t[2])[: s.beam]
        ranked = sorted(found.items(), key=lambda kv: kv[1][0])[: max(1, s.candidates)]
        sample = pixel_sample(image, truth, s.fit_pixels, s.seed + 1)
        refit = [([by_name[n] for n in key], *_fit(sample, [by_name[n] for n in key], raws, s.fit_iters)) for key, (_, raws) in ranked]
        fits += len(refit)
    history = [(tuple(f.short_name for f in o), m) for o, _, m in refit]
    order, raws, mse = min(refit, key=lambda t: t[2])
    return OracleResult(_edits(order, raws), mse, len(found), fits, history)


def oracle_output(image: np.ndarray, result: OracleResult) -> np.ndarray:
    """The fitted list applied to the full-size photo, clipped to [0, 1] (display, float32)."""
    return np.clip(apply_edits(np.asarray(image, np.float32), result.edits), 0.0, 1.0)


def oracle_retouch(image: np.ndarray, truth: np.ndarray, settings: OracleSettings | None = None):
    """``(display output at full size, OracleResult)`` for one photo and its truth."""
    result = fit_oracle(image, truth, settings)
    return oracle_output(image, result), result
