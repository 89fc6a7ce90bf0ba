"""The learner(s) of a built RLlib algorithm, through the learner group's public API: the
current policy module, and reading / setting every optimiser's learning rate."""

from __future__ import annotations


def policy_module(algo):
    """The learner's current RLModule (the local learner's own copy when it runs in the driver)."""
    from ray.rllib.core import DEFAULT_MODULE_ID

    group = algo.learner_group
    if group.is_local:
        return [r.get() for r in group.foreach_learner(lambda learner: learner.module[DEFAULT_MODULE_ID]).ignore_errors()][0]
    return algo.get_module()


def set_learning_rate(algo, lr: float) -> bool:
    """Set the rate of every optimizer of every learner to ``lr``; False if none was set."""

    def apply(learner) -> int:
        count = 0
        for module_id in learner.module.keys():
            for _, optimizer in learner.get_optimizers_for_module(module_id):
                for group in optimizer.param_groups:
                    group["lr"] = lr
                count += 1
        return count

    return sum(r.get() for r in algo.learner_group.foreach_learner(apply).ignore_errors()) > 0


def learning_rates(algo) -> dict[str, float]:
    """``{"lr_<optimizer>": rate}`` of the (first) learner's optimizers as they stand now."""

    def read(learner) -> dict[str, float]:
        return {
            f"lr_{name}": float(optimizer.param_groups[0]["lr"])
            for module_id in learner.module.keys()
            for name, optimizer in learner.get_optimizers_for_module(module_id)
        }

    results = [r.get() for r in algo.learner_group.foreach_learner(read).ignore_errors()]
    return results[0] if results else {}
