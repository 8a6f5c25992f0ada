"""A byte-level text corpus that every Python install ships: the standard library's own source.

Collected deterministically (sorted paths, test packages and site-packages left out), split
by a fixed rule (a file whose path hashes to 0 mod 10 is validation), and cached as two
``uint8`` arrays on first use so workers after the first only read a file.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VALIDATION_BUCKET = 0  # crc32(path) % 10 == this -> validation
_EXCLUDED_DIRS = {"test", "tests", "idlelib", "site-packages", "dist-packages", "__pycache__"}
_CACHE_VERSION = 1


@dataclass(frozen=True)
class Corpus:
    train: np.ndarray  # uint8 bytes
    val: np.ndarray

    @property
    def sizes(self) -> tuple[int, int]:
        return len(self.train), len(self.val)


def cache_dir() -> Path:
    base = os.environ.get("HPO_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "hpo-service"
    )
    return Path(base)


def stdlib_sources(root: Path | None = None) -> list[Path]:
    """The standard library's ``.py`` files in a fixed order."""
    root = root or Path(sysconfig.get_paths()["stdlib"])
    files = [
        path
        for path in root.rglob("*.py")
        if not _EXCLUDED_DIRS.intersection(path.relative_to(root).parts[:-1])
    ]
    return sorted(files, key=lambda path: path.relative_to(root).as_posix())


def is_validation(relative_path: str) -> bool:
    return zlib.crc32(relative_path.encode()) % 10 == VALIDATION_BUCKET


def build_corpus(max_bytes: int, root: Path | None = None) -> Corpus:
    """Read source files in order until each split has its share of ``max_bytes``.

    Validation gets a tenth: files keep going to a split until it is full, so a small cap
    still yields both splits.
    """
    root = root or Path(sysconfig.get_paths()["stdlib"])
    quota = {True: max(1, max_bytes // 10), False: max(1, max_bytes - max_bytes // 10)}
    parts: dict[bool, list[bytes]] = {True: [], False: []}
    sizes = {True: 0, False: 0}
    for path in stdlib_sources(root):
        split = is_validation(path.relative_to(root).as_posix())
        if sizes[split] >= quota[split]:
            if all(sizes[s] >= quota[s] for s in (True, False)):
                break
            continue
        try:
            data = path.read_bytes()[: quota[split] - sizes[split]]
        except OSError:
            continue
        parts[split].append(data)
        sizes[split] += len(data)
    return Corpus(
        train=np.frombuffer(b"".join(parts[False]), dtype=np.uint8).copy(),
        val=np.frombuffer(b"".join(parts[True]), dtype=np.uint8).copy(),
    )


def load_corpus(max_bytes: int) -> Corpus:
    """The corpus, from the cache when present; builds and caches it otherwise."""
    version = f"py{sys.version_info.major}{sys.version_info.minor}"
    path = cache_dir() / f"stdlib-corpus-v{_CACHE_VERSION}-{version}-{max_bytes}.npz"
    if path.exists():
        try:
            with np.load(path) as arrays:
                return Corpus(train=arrays["train"], val=arrays["val"])
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache is rebuilt below
    corpus = build_corpus(max_bytes)
    if len(corpus.val) == 0 or len(corpus.train) == 0:
        raise RuntimeError(f"the standard library under {sysconfig.get_paths()['stdlib']} is empty")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written to a temporary file and renamed: concurrent workers never read half a cache.
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, train=corpus.train, val=corpus.val)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return corpus
