"""Stopping a training run cleanly on SIGINT (Ctrl-C) and SIGTERM (a scheduler, spot preemption).

While :class:`StopSignals` is active (the run loop, in the main thread) the first SIGINT or
SIGTERM only records the request: the loop finishes the iteration under way, writes a
checkpoint, copies it to ``--storage`` and raises :class:`TrainingInterrupted`, whose message
says how to ``--resume``; the commands exit with :attr:`TrainingInterrupted.exit_code` (130 for
SIGINT, 143 for SIGTERM, as a shell reports a process killed by the signal). A second signal
abandons the iteration at once (no new checkpoint; the newest one is named) unless a checkpoint
is being written, which always completes.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

#: The signals a run stops on.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(Exception):
    """A run stopped by a signal. ``checkpoint``: where it can be resumed from (a local folder
    or storage URI; None when there is none); ``abandoned``: the iteration under way was dropped."""

    def __init__(self, signum: int, iteration: int, checkpoint: str | Path | None, resume_command: str | None,
                 abandoned: bool = False):
        self.signum, self.iteration, self.checkpoint = int(signum), int(iteration), checkpoint
        self.resume_command, self.abandoned = resume_command, abandoned
        name = signal.Signals(self.signum).name
        if checkpoint is None:
            text = f"{name}: stopped at iteration {iteration}; no checkpoint to resume from"
        else:
            what = "abandoned the iteration under way; newest checkpoint" if abandoned else "checkpoint"
            text = f"{name}: stopped after iteration {iteration}; {what}: {checkpoint}"
        if resume_command:
            text += f"\nResume with: {resume_command}"
        super().__init__(text)

    @property
    def exit_code(self) -> int:
        """128 + the signal number: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum


class _Abandon(BaseException):
    """Raised by a second signal inside the loop (a BaseException: no ``except Exception`` eats it)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class StopSignals:
    """Context manager: SIGINT / SIGTERM request a stop (:attr:`signum`) instead of killing the
    process; a second one raises :class:`_Abandon` unless inside :meth:`shielded`. Does nothing
    outside the main thread (Tune trials). ``notice(text)`` is told when a stop is requested."""

    def __init__(self, notice=None):
        self.signum: int | None = None
        self._notice = notice
        self._previous: dict[int, object] = {}
        self._shield = 0
        self._pending_abandon: int | None = None
        #: Set by the run loop once it writes its last checkpoint: further signals are ignored.
        self.finishing = False

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum
            if self._notice is not None:
                self._notice(f"{signal.Signals(signum).name} received: finishing this iteration, then writing a checkpoint "
                             "(send it again to abandon the iteration)")
            return
        if self.finishing:
            if self._notice is not None:
                self._notice(f"{signal.Signals(signum).name} received again: writing the checkpoint, then exiting")
            return
        if self._shield:
            self._pending_abandon = signum
            return
        raise _Abandon(signum)

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    class _Shield:
        def __init__(self, owner: "StopSignals"):
            self.owner = owner

        def __enter__(self):
            self.owner._shield += 1

        def __exit__(self, *exc):
            self.owner._shield -= 1
            if not self.owner._shield and self.owner._pending_abandon is not None and exc[0] is None:
                signum, self.owner._pending_abandon = self.owner._pending_abandon, None
                raise _Abandon(signum)

    def shielded(self) -> "StopSignals._Shield":
        """A block a second signal does not abandon (a checkpoint being written)."""
        return StopSignals._Shield(self)


def resume_command(s, checkpoint: str | Path) -> str:
    """The ``exposure train`` command line that resumes the run of settings ``s``
    (:class:`~tune_configs.settings.TrainSettings`) from ``checkpoint``: data, recipe, seed and
    name come from the checkpoint; the staging folder, storage and GPUs from ``s``."""
    import shlex

    from .storage import is_uri

    parts = ["exposure", "train", "--resume", str(checkpoint)]
    if Path(s.results_dir) != Path("results"):
        parts += ["--results-dir", str(s.results_dir)]
    if getattr(s, "storage", None) is not None and not is_uri(str(checkpoint)):
        parts += ["--storage", str(s.storage)]
    if s.num_gpus:
        parts += ["--num-gpus", f"{s.num_gpus:g}"]
    return shlex.join(parts)


def say(text: str) -> None:
    """One line on stderr (the stop notices)."""
    print(text, file=sys.stderr, flush=True)
