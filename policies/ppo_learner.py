"""PPO's torch learner that starts the discriminator's training when its update begins.

PPO's iteration is: sample (env runners call the critic actor) -> learner update (driver)
-> weight sync. Training the critic between iterations would add its time to every
iteration; started when the learner update begins it runs on the actor's core while the
learner works. The run loop :meth:`~CriticTrigger.arm` s :data:`CRITIC_TRIGGER` before
``algo.train()``; :class:`CriticOverlapPPOLearner` (the local learner, in the driver process)
fires it; the run loop then :meth:`~CriticTrigger.take` s the result ref (None if it never
fired, e.g. with remote learners: the run loop then trains the critic itself).
"""

from __future__ import annotations

from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner


class CriticTrigger:
    """One pending ``handle.train.remote(iteration, total)`` call, fired at most once per arming."""

    def __init__(self):
        self._args = None
        self._ref = None

    def arm(self, handle, iteration: int, total: int) -> None:
        """Fire ``handle.train.remote(iteration, total)`` at the next learner update."""
        self._args, self._ref = (handle, int(iteration), int(total)), None

    def fire(self) -> None:
        """Start the armed call (no-op when not armed)."""
        if self._args is not None:
            handle, it, total = self._args
            self._args, self._ref = None, handle.train.remote(it, total)

    def take(self):
        """The ref of the call fired since :meth:`arm` (None if it never fired); disarms."""
        ref, self._args, self._ref = self._ref, None, None
        return ref


#: The process-wide trigger (the local learner and the run loop share the driver process).
CRITIC_TRIGGER = CriticTrigger()


class CriticOverlapPPOLearner(PPOTorchLearner):
    """PPO's torch learner that fires :data:`CRITIC_TRIGGER` when an update starts."""

    def before_gradient_based_update(self, *, timesteps):
        super().before_gradient_based_update(timesteps=timesteps)
        CRITIC_TRIGGER.fire()
