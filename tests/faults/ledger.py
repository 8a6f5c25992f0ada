"""What the trials reported against what the store holds, and the processes faults hit.

The ``noop`` trainable appends "trial_id iteration" to its ``report_log`` before each
report: that file is the trial side's count. The store side is read directly from the
database the service and its runners write to.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from service.store import StudyStore, open_store

Pair = tuple[str, int]  # (trial id, iteration)


def reported(report_log: Path) -> Counter[Pair]:
    """Every (trial, iteration) the trials reported, with how often (a retried trial
    reports the iterations after its checkpoint again)."""
    if not report_log.exists():
        return Counter()
    pairs: Counter[Pair] = Counter()
    for line in report_log.read_text().splitlines():
        trial_id, iteration = line.split()
        pairs[(trial_id, int(iteration))] += 1
    return pairs


def stored(store: StudyStore, study_id: int) -> Counter[Pair]:
    pairs: Counter[Pair] = Counter()
    for trial in store.list_trials(study_id, limit=10_000).items:
        for result in store.get_results(study_id, trial.trial_id):
            pairs[(trial.trial_id, result.iteration)] += 1
    return pairs


@dataclass(frozen=True)
class Ledger:
    reported: Counter[Pair]
    stored: Counter[Pair]

    @property
    def lost(self) -> set[Pair]:
        """Reported by a trial, never stored."""
        return set(self.reported) - set(self.stored)

    @property
    def invented(self) -> set[Pair]:
        """Stored, never reported."""
        return set(self.stored) - set(self.reported)

    @property
    def duplicated(self) -> set[Pair]:
        return {pair for pair, count in self.stored.items() if count > 1}

    def summary(self) -> str:
        return (
            f"reported {len(self.reported)} distinct results ({sum(self.reported.values())} "
            f"reports), stored {sum(self.stored.values())}, lost {len(self.lost)}, "
            f"invented {len(self.invented)}, duplicated {len(self.duplicated)}"
        )


def ledger(database_url: str, study_id: int, report_log: Path) -> Ledger:
    store = open_store(database_url)
    try:
        return Ledger(reported(report_log), stored(store, study_id))
    finally:
        store.close()


# --- processes ----------------------------------------------------------------------
def pids_matching(
    predicate: Callable[[list[str]], bool], *, env: Mapping[str, str] | None = None
) -> list[int]:
    """Pids of this user's processes whose command line (argv) satisfies ``predicate``
    and whose environment holds ``env`` (other test sessions may run on this machine)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw_argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            argv = [arg for arg in raw_argv if arg]
            if not (argv and predicate(argv)):
                continue
            if env:
                raw = (entry / "environ").read_bytes().decode(errors="replace").split("\0")
                environ = dict(item.split("=", 1) for item in raw if "=" in item)
                if any(environ.get(key) != value for key, value in env.items()):
                    continue
        except OSError:
            continue
        found.append(int(entry.name))
    return sorted(found)


def wait_for(
    what: str, condition: Callable[[], object], timeout_s: float = 120, poll_s: float = 0.5
) -> object:
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(poll_s)


def kill9(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
