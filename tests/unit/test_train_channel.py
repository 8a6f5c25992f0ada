"""The channel from a Train run's controller to its Tune trial stays light: the queue
actor and the controller unpickle what passes through it, and each module they must
import is seconds of CPU in every Train run."""

from __future__ import annotations

import subprocess
import sys

from trainables.train_channel import ControllerStarted, TrainResult, _pack, unpack


def test_results_travel_as_bytes_and_come_back_whole() -> None:
    started = _pack("controller-handle")
    result = _pack("controller-handle", {"loss": 0.5, "epoch": 2}, checkpoint=None)
    assert isinstance(started, bytes) and isinstance(result, bytes)
    assert unpack(started) == ControllerStarted("controller-handle")
    assert unpack(result) == TrainResult({"loss": 0.5, "epoch": 2}, None, "controller-handle")


def test_the_channel_module_imports_neither_torch_nor_tune() -> None:
    probe = (
        "import sys, trainables.train_channel; "
        "print(sorted(m for m in ('torch', 'ray.tune', 'trainables.train_in_tune') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
