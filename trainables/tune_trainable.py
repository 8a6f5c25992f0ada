"""The Tune trainable for a trial function: Tune's own function wrapper, but stop waits for it.

When Tune pauses or stops a trial it calls the trainable's ``stop``, which only *signals*
the trial function (its next ``ray.tune.report`` raises ``SystemExit``) and returns; Tune
then drops the actor, killing whatever the function was still doing. A trial running Ray
Train needs those seconds to abort its Train run, so that the run's placement group and
workers are released at once instead of being left to Ray Train's placement-group
cleaner (which depends on the State API and has been seen to miss them). ``stop`` here
waits, up to ``stop_grace_s``, for the trial function to finish; so does ``reset_config``,
which hands a cached actor (``reuse_actors=True``) to the next trial.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

STOP_GRACE_S = 30.0


def trial_trainable(
    fn: Callable[[dict[str, Any]], None],
    *,
    name: str | None = None,
    stop_grace_s: float = STOP_GRACE_S,
) -> type:
    """A Tune ``Trainable`` class running ``fn(config)``, for ``ray.tune.with_resources``."""
    from ray.train._internal.session import get_session
    from ray.tune.trainable import wrap_function

    base: Any = wrap_function(fn, name=name)

    def finish_gracefully() -> None:
        session = get_session()
        if session is not None and session.training_started:
            # Signal the function (as Tune does) and give it time to end cleanly.
            session.finish(timeout=stop_grace_s)

    class TrialTrainable(base):  # type: ignore[misc, valid-type]
        def cleanup(self) -> None:
            finish_gracefully()
            super().cleanup()

        def reset_config(self, new_config: dict[str, Any]) -> bool:
            # With reuse_actors, a paused trial's actor is kept as is (its function still
            # blocked in tune.report) and handed to the next trial through reset_config,
            # which gives the old function only 2 s to end before giving the actor up.
            finish_gracefully()
            return bool(super().reset_config(new_config))

    TrialTrainable.__name__ = TrialTrainable.__qualname__ = getattr(fn, "__name__", "trial")
    return TrialTrainable
