"""How good is a reward? Edit each held-out crop to please the critic alone, then score against the truth.

    python benchmarks/critic_ceiling.py [--styles expert,faded] [--kinds gaussian,features,descriptors]
                                        [--train-updates 1500] [--steps 150] [--write]

A reward worth learning from must, when maximised, give the style. For each demo style and critic
kind, this script fits a critic on the style's training targets (learned kinds: WGAN-GP against a
pool of the training inputs pushed through random edits of the style's own filters, ``--train-updates``
Adam steps; ``gaussian`` needs no training), then, for every held-out validation crop, runs
``--steps`` Adam steps (lr 0.1) on the raw parameters of the style's own five filters *in the
style's order* to maximise that critic's score, and reports the PSNR / ΔE76 of the result against
the paired truth -- next to the untouched inputs with a display gamma and the auto-correction. No
policy is involved: this is the ceiling of that *frozen* critic, not of a training run, whose critic
keeps learning against the policy's outputs (the default run beats this table's `features` figure on
`faded` by 7.6 dB, docs/benchmarks.md "Quality"). Not a timed test.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import machine_line, markdown_table, write_section  # noqa: E402
from exposure_env import filters  # noqa: E402
from exposure_env.datasets.demo import STYLES, demo_packs  # noqa: E402
from exposure_env.datasets.pack import ImagePack  # noqa: E402
from policies.baselines import auto_correct, gamma_only  # noqa: E402
from rewards.critic_trainer import LocalDiscriminator  # noqa: E402
from rewards.metrics import paired_scores  # noqa: E402

#: Critic settings per kind (the CPU recipes' critic for ``features``).
KIND_CONFIGS = {
    "features": {"kind": "features", "hidden": 128, "lr": 5e-4, "lr_decay": False},
    "descriptors": {"kind": "descriptors", "hidden": 128, "lr": 5e-4, "lr_decay": False},
    "gaussian": {"kind": "gaussian"},
}


def style_order(style: str) -> list:
    """The style's own filters, in its order (so the white box can reach the truth)."""
    probe = np.full((1, 8, 8, 3), 0.2, np.float32)
    return [filters.get(short) for short, _ in STYLES[style].edits(probe)]


def _raw_params(order, raws):
    return [f.params_from_action(torch.tanh(u)) for f, u in zip(order, raws)]


def render(images: torch.Tensor, order, raws) -> torch.Tensor:
    """``(N, H, W, 3)`` through ``order`` with per-image raw vectors (``tanh`` -> action)."""
    r, g, b = images[..., 0], images[..., 1], images[..., 2]
    for f, p in zip(order, _raw_params(order, raws)):
        r, g, b = f.pixel(r, g, b, [p[:, k : k + 1, None] for k in range(f.num_params)])
    return torch.stack([r, g, b], -1)


def random_fakes(inputs: np.ndarray, order, rng: np.random.Generator) -> np.ndarray:
    """The training inputs through the style's filters with random actions (the critic's fakes)."""
    raws = [torch.from_numpy(rng.normal(0.0, 0.7, (len(inputs), f.num_params)).astype(np.float32)) for f in order]
    with torch.no_grad():
        return render(torch.from_numpy(inputs), order, raws).clamp(0.0, 1.0).numpy()


def fit_critic(kind: str, data, order, updates: int, seed: int = 0) -> LocalDiscriminator:
    critic = LocalDiscriminator(data.train_targets, {**KIND_CONFIGS[kind], "seed": seed, "pool_size": 4096})
    if critic.optimizer is None:
        return critic
    rng = np.random.default_rng(seed)
    s = critic.config.input_size
    crops = data.train_inputs.images[:, :s, :s]
    critic.add_fake(random_fakes(crops[rng.permutation(len(crops))[:4096]], order, rng))
    for _ in range(updates):
        critic.update()
    return critic


def please_the_critic(critic: LocalDiscriminator, images: np.ndarray, order, steps: int) -> np.ndarray:
    """Per image: ``steps`` Adam steps on the raw filter parameters maximising the critic's score."""
    s = critic.config.input_size
    o = (images.shape[1] - s) // 2
    x = torch.from_numpy(np.ascontiguousarray(images))
    raws = [torch.zeros(len(images), f.num_params, requires_grad=True) for f in order]
    opt = torch.optim.Adam(raws, lr=0.1)
    critic.model.eval()
    for _ in range(steps):
        out = render(x[:, o : o + s, o : o + s], order, raws).clamp(0.0, 1.0)
        loss = -critic.model(out).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        return render(x, order, raws).clamp(0.0, 1.0).numpy()


def _scores(outputs: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    s = paired_scores(outputs, truth)
    return s["psnr"], s["delta_e76"]


def run_style(style: str, kinds: list[str], updates: int, steps: int) -> list[list[str]]:
    data = demo_packs(0, style=style)
    order = style_order(style)
    val: ImagePack = data.val
    x, y = val.images, val.paired
    rows = []
    for name, out in (("input + gamma 1/2.2", np.stack([gamma_only(i) for i in x])),
                      ("auto (grey world, 0.18, sRGB)", np.stack([auto_correct(i) for i in x]))):
        p, e = _scores(out, y)
        rows.append([name, "-", f"{p:.2f}", f"{e:.2f}", "-"])
    for kind in kinds:
        t0 = time.perf_counter()
        critic = fit_critic(kind, data, order, updates)
        out = please_the_critic(critic, x, order, steps)
        p, e = _scores(out, y)
        rows.append([f"critic `{kind}`, maximised", "/".join(f.short_name for f in order), f"{p:.2f}", f"{e:.2f}",
                     f"{time.perf_counter() - t0:.0f}"])
        print(f"[{style}] {kind}: {p:.2f} dB, dE76 {e:.2f}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--styles", default=",".join(STYLES), help="demo styles (default: all)")
    ap.add_argument("--kinds", default="gaussian,descriptors,features", help="critic kinds to compare")
    ap.add_argument("--train-updates", type=int, default=1500, help="critic updates for learned kinds")
    ap.add_argument("--steps", type=int, default=150, help="Adam steps per crop on the filter parameters")
    ap.add_argument("--write", action="store_true", help="replace the ## Critic ceiling section of docs/benchmarks.md")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    parts = [f"`python benchmarks/critic_ceiling.py --train-updates {args.train_updates} --steps {args.steps}`: "
             "each held-out validation crop (80x80, paired truth) edited with the style's own filters, in its "
             "order, to maximise the critic alone; scored against the truth. Machine: " + machine_line() + "."]
    for style in args.styles.split(","):
        rows = run_style(style, args.kinds.split(","), args.train_updates, args.steps)
        parts.append(f"### Style `{style}`\n\n" + markdown_table(["method", "filters", "PSNR dB", "ΔE76", "s"], rows))
    body = "\n\n".join(parts)
    print(body)
    if args.write:
        write_section("Critic ceiling", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
