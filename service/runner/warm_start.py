"""Warm-starting a study's searcher from the saved state of an earlier run.

A study that is extended runs again as a new Tune experiment ("segment"); one submitted
with ``warm_start_from`` starts from another study's. Tune saves each experiment's
searcher (``searcher-state-*.pkl``: HyperOpt's trials with their results and its random
state, BOHB's observations per budget) beside the experiment. Restoring that state into
the new run's searcher lets it go on as if the earlier run had simply had more samples:
it has learnt from every finished trial, and it does not hand out a finished
configuration again.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

SEARCHER_STATE_GLOB = "searcher-state-*.pkl"


def experiment_name(study_id: int, segment: int = 0) -> str:
    """The Tune experiment of a study's run ``segment`` (0: the first; each extension of
    a study runs a new one). Every restart of a segment resumes the same experiment."""
    base = f"hpo-study-{study_id}"
    return base if segment == 0 else f"{base}-x{segment}"


def experiment_path(storage_path: str, study_id: int, segment: int = 0) -> str:
    return f"{storage_path.rstrip('/')}/{experiment_name(study_id, segment)}"


def latest_searcher_state(storage_path: str, study_id: int, last_segment: int) -> str | None:
    """A local directory holding the newest saved searcher state of the study's runs
    ``last_segment``, ``last_segment - 1``, ... 0 (the first that has one), or None."""
    for segment in range(last_segment, -1, -1):
        found = _searcher_state_dir(experiment_path(storage_path, study_id, segment))
        if found is not None:
            return found
    return None


def _searcher_state_dir(path: str) -> str | None:
    if "://" not in path:
        local = Path(path)
        return str(local) if any(local.glob(SEARCHER_STATE_GLOB)) else None
    return _download_searcher_state(path)


def _download_searcher_state(uri: str) -> str | None:
    """Experiments in cloud storage: copy the newest state file to a local directory."""
    import fnmatch

    import pyarrow.fs as pafs

    try:
        filesystem, path = pafs.FileSystem.from_uri(uri)
        infos = filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    except Exception as error:  # unreachable storage: start cold rather than fail
        log.warning("could not read the searcher state under %s: %s", uri, error)
        return None
    names = sorted(
        info.path for info in infos if fnmatch.fnmatch(Path(info.path).name, SEARCHER_STATE_GLOB)
    )
    if not names:
        return None
    local = tempfile.mkdtemp(prefix="hpo-searcher-state-")
    with (
        filesystem.open_input_stream(names[-1]) as source,
        open(Path(local) / Path(names[-1]).name, "wb") as target,
    ):
        shutil.copyfileobj(source, target)
    return local
