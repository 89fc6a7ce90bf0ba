"""An independent float64 implementation of SPEC §2, written pixel-by-pixel from the spec.

It shares no code with ``exposure_env`` (HSV through the standard library's ``colorsys``),
so the backends are held to the spec rather than to themselves.
"""

from __future__ import annotations

import colorsys
import math

import numpy as np


def tanh_range(x, lo, hi, initial=None):
    b = 0.0 if initial is None else math.atanh(2 * (initial - lo) / (hi - lo) - 1)
    return lo + (hi - lo) * (np.tanh(np.asarray(x, np.float64) + b) + 1) / 2


def sigmoid(x):
    return 1 / (1 + np.exp(-np.asarray(x, np.float64)))


def lum(img):
    return 0.27 * img[..., 0] + 0.67 * img[..., 1] + 0.06 * img[..., 2]


# --- raw network outputs -> parameters --------------------------------------------------
def params_raw(short, raw):
    raw = np.asarray(raw, np.float64)
    if short == "E":
        return tanh_range(raw, -3.5, 3.5, 0.0)
    if short == "G":
        return np.exp(tanh_range(raw, -math.log(3), math.log(3)))
    if short == "W":
        x = raw.copy()
        x[:, 0] = 0.0
        s = np.exp(tanh_range(x, -0.5, 0.5))
        return s / (1e-5 + 0.27 * s[:, :1] + 0.67 * s[:, 1:2] + 0.06 * s[:, 2:3])
    if short in ("S+", "BW"):
        return sigmoid(raw)
    if short == "T":
        return tanh_range(raw, 0.5, 2.0)
    if short == "C":
        return tanh_range(raw, 0.9, 1.1, 1.0)
    if short == "Ct":
        return np.tanh(raw)
    if short == "L":
        return np.stack([sigmoid(raw[:, 0]), 1 + sigmoid(raw[:, 1])], axis=1)
    raise KeyError(short)


# --- the operations ----------------------------------------------------------------------
def _curve(x, t):
    t = np.asarray(t, np.float64)
    total = sum(t[i] * np.clip(x - i / 8, 0, 1 / 8) for i in range(8))
    return total * 8 / t.sum()


def _saturation_one(img, p):
    c = np.minimum(img, 1.0)
    out = np.empty_like(c)
    for idx in np.ndindex(c.shape[:-1]):
        r, g, b = c[idx]
        h, s, v = colorsys.rgb_to_hsv(r, g, b)
        s2 = s + (1 - s) * (0.5 - abs(0.5 - v)) * 0.8
        full = np.array(colorsys.hsv_to_rgb(h, s2, v))
        out[idx] = (1 - p) * c[idx] + p * full
    return out


def apply_one(short, img, p):
    """One image ``(H, W, 3)`` float64, parameters ``(k,)`` -> image."""
    img = np.asarray(img, np.float64)
    p = np.asarray(p, np.float64)
    if short == "E":
        return img * 2 ** p[0]
    if short == "G":
        return np.maximum(img, 0.001) ** p[0]
    if short == "W":
        return img * p[None, None, :]
    if short == "S+":
        return _saturation_one(img, p[0])
    if short == "T":
        return np.stack([_curve(img[..., k], p) for k in range(3)], -1)
    if short == "C":
        return np.stack([_curve(img[..., k], p[8 * k : 8 * k + 8]) for k in range(3)], -1)
    if short == "Ct":
        l = np.clip(lum(img), 0, 1)[..., None]
        lc = 0.5 - 0.5 * np.cos(math.pi * l)
        ci = img / (l + 1e-6) * lc
        return (1 - p[0]) * img + p[0] * ci
    if short == "BW":
        return (1 - p[0]) * img + p[0] * lum(img)[..., None]
    if short == "L":
        return np.clip((img - p[0]) / (p[1] - p[0]), 0, 1)
    raise KeyError(short)


def apply(short, images, params):
    return np.stack([apply_one(short, im, p) for im, p in zip(images, params)])
