"""A batching writer: trial updates and results reach the store from one background thread,
through store outages (retry with backoff, bounded memory, spill to local files)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from service.runner.store_retry import RetryPolicy, call_with_retry
from service.store import ResultWrite, StoreUnavailable, StudyStore, TrialState, TrialUpdate
from service.store.jsonsafe import json_safe

log = logging.getLogger(__name__)

Item = TrialUpdate | ResultWrite

SPILL_SUFFIX = ".jsonl"
CLOSE_GRACE_S = 2.0  # how long close() waits beyond its timeout for a stuck store call
SPILL_RETRY_S = 5.0  # after the spill directory failed, how long memory takes everything

_seq = itertools.count()  # spill file numbers, unique in this process
_active_lock = threading.Lock()
_active_paths: set[Path] = set()  # spill files a live writer of this process still owns


def default_spill_dir() -> Path:
    """``$HPO_HOME/spill`` (the runner gets HPO_HOME from the service), else a temp dir."""
    home = os.environ.get("HPO_HOME")
    if home:
        return Path(home).expanduser() / "spill"
    return Path(tempfile.gettempdir()) / "hpo-spill"


def spill_prefix(study_id: int) -> str:
    return f"hpo-spill-study{study_id}-"


def spill_files(study_id: int, spill_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """The study's spill files in ``spill_dir``, oldest writer first, each writer's in order
    (names: prefix, the writer's start time, pid, sequence number)."""
    directory = Path(spill_dir) if spill_dir is not None else default_spill_dir()
    if not directory.is_dir():
        return []
    return sorted(directory.glob(f"{spill_prefix(study_id)}*{SPILL_SUFFIX}"))


# --- spill file lines ----------------------------------------------------------------------
_TRIAL_FIELDS = tuple(f.name for f in dataclasses.fields(TrialUpdate))
_RESULT_FIELDS = tuple(f.name for f in dataclasses.fields(ResultWrite))


def _json_default(value: Any) -> Any:
    """What json cannot write itself: numpy-like scalars, sets, anything else as text
    (as the store's own JSON writing does)."""
    return json_safe(value)


def encode_item(item: Item) -> bytes:
    """One JSON line: ``{"kind": "trial" | "result", <the dataclass's fields>}``."""
    if isinstance(item, TrialUpdate):
        data: dict[str, Any] = {name: getattr(item, name) for name in _TRIAL_FIELDS}
        data["kind"] = "trial"
        data["state"] = TrialState(item.state).value
    else:
        data = {name: getattr(item, name) for name in _RESULT_FIELDS}
        data["kind"] = "result"
        data["reported_at"] = item.reported_at.isoformat()
    try:
        text = json.dumps(data, separators=(",", ":"), default=_json_default)
    except (TypeError, ValueError):  # e.g. keys json cannot write: make everything safe
        text = json.dumps(json_safe(data), separators=(",", ":"))
    return (text + "\n").encode()


def decode_item(line: bytes) -> Item:
    """The item of one spill line. Raises ValueError (or KeyError/TypeError) when malformed."""
    data = json.loads(line)
    kind = data.pop("kind")
    if kind == "trial":
        values = {k: v for k, v in data.items() if k in _TRIAL_FIELDS}
        values["state"] = TrialState(values["state"])
        return TrialUpdate(**values)
    if kind == "result":
        values = {k: v for k, v in data.items() if k in _RESULT_FIELDS}
        values["iteration"] = int(values["iteration"])
        values["reported_at"] = dt.datetime.fromisoformat(values["reported_at"])
        return ResultWrite(**values)
    raise ValueError(f"unknown spill line kind {kind!r}")


def _read_lines(handle: IO[bytes], limit: int) -> tuple[list[Item], int, int]:
    """Up to ``limit`` items from ``handle``'s position: (items, lines consumed, bytes
    consumed). A malformed line (a torn last line after a crash) is skipped with a warning."""
    items: list[Item] = []
    lines = consumed = 0
    while lines < limit:
        line = handle.readline()
        if not line:
            break
        lines += 1
        consumed += len(line)
        if not line.strip():
            continue
        try:
            items.append(decode_item(line))
        except (ValueError, KeyError, TypeError) as error:
            log.warning("skipping a malformed spill line (%s): %.200r", error, line)
    return items, lines, consumed


def replay_spill_files(
    store: StudyStore,
    study_id: int,
    spill_dir: str | os.PathLike[str] | None = None,
    *,
    max_batch: int = 500,
    give_up_after_s: float = 600,
    policy: RetryPolicy | None = None,
) -> int:
    """Write what earlier writers of the study left in ``spill_dir`` (a runner calls this at
    start), in order, then delete those files. Each store call is retried while the store
    is unavailable (StoreUnavailable after ``give_up_after_s``; the unfinished files stay).
    Returns how many results were new to the store."""
    written = 0
    with _active_lock:
        active = set(_active_paths)
    for path in spill_files(study_id, spill_dir):
        if path in active:
            continue  # a live writer in this process still owns it
        count = 0
        with open(path, "rb") as handle:
            while True:
                items, lines, _ = _read_lines(handle, max_batch)
                if not lines:
                    break
                if items:
                    written += call_with_retry(
                        store.write_batch,
                        study_id,
                        items,
                        give_up_after_s=give_up_after_s,
                        policy=policy,
                    )
                count += len(items)
        path.unlink(missing_ok=True)
        log.info("replayed %d spilled updates of study %s from %s", count, study_id, path)
    return written


# --- the writer ------------------------------------------------------------------------------
@dataclass
class _Memory:
    items: deque[Item] = field(default_factory=deque)


@dataclass
class _Spill:
    path: Path
    handle: IO[bytes] | None  # open for appending until the consumer reaches it
    count: int = 0  # lines written
    done: int = 0  # lines confirmed in the store (or skipped as malformed)
    offset: int = 0  # byte offset of the first line not confirmed

    @property
    def left(self) -> int:
        return self.count - self.done


@dataclass
class _Batch:
    segment: _Memory | _Spill
    items: list[Item]
    lines: int = 0  # for a spill segment: lines and bytes the batch covers
    size: int = 0


class BatchingStoreWriter:
    """Collects trial updates and results and writes them in batches, in order.

    The producer (Tune's event loop: ``trial()``, ``result()``) never waits for the
    store. Up to ``max_buffered`` updates wait in memory; beyond that they are appended
    to a local JSON-lines spill file (``spill_dir``), and everything after them goes there
    too until the writer has caught up. The store gets everything in the order it was
    produced (a trial's update before its results, its end after its last result).
    While the store is unavailable (or a write fails otherwise) the writer retries with
    exponential backoff and jitter; its thread never dies of a failed write. A batch is
    one transaction (``StudyStore.write_batch``), and writes are idempotent (results are
    keyed by study, trial, iteration), so a batch whose commit the writer never heard of
    is simply written again.

    ``close(timeout_s)`` drains what it can; whatever the store has not taken by then
    stays in one spill file, which :func:`replay_spill_files` writes later.
    """

    def __init__(
        self,
        store: StudyStore,
        study_id: int,
        *,
        flush_interval_s: float = 0.2,
        max_batch: int = 500,
        max_buffered: int = 50_000,
        spill_dir: str | os.PathLike[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
        retry_initial_s: float = 0.2,
        retry_max_s: float = 10.0,
    ) -> None:
        self._store = store
        self._study_id = study_id
        self._flush_interval_s = flush_interval_s
        self._max_batch = max(1, max_batch)
        self._max_buffered = max(1, max_buffered)
        self._spill_dir = Path(spill_dir) if spill_dir is not None else default_spill_dir()
        self._clock = clock
        self._sleep = sleep
        self._retry = RetryPolicy(initial_s=retry_initial_s, max_s=retry_max_s, clock=clock)
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        self._spill_stem = f"{spill_prefix(study_id)}{stamp}-pid{os.getpid()}"
        self._lock = threading.Condition()
        self._segments: deque[_Memory | _Spill] = deque()
        self._in_memory = 0
        self._in_spill = 0
        self._spill_broken_until = float("-inf")
        self._closed = False
        self._deadline: float | None = None
        self._closing = threading.Event()  # wakes a retry pause once when close() is called
        self._abandoned = False  # the rest went to a spill file; the thread must stop
        self._accepting = True
        self.results_written = 0
        self._thread = threading.Thread(target=self._run, name="hpo-store-writer", daemon=True)
        self._thread.start()

    # --- producer side (never waits for the store) -------------------------------------------
    def trial(self, update: TrialUpdate) -> None:
        self._put(update, wake=True)

    def result(self, result: ResultWrite) -> None:
        self._put(result, wake=False)

    def _put(self, item: Item, *, wake: bool) -> None:
        with self._lock:
            if not self._accepting:
                # After close nothing here writes any more: keep it for a later replay.
                if not self._spill_item(item, force=True):
                    self._remember(item)
                return
            last = self._segments[-1] if self._segments else None
            if isinstance(last, _Spill) and last.handle is not None:
                if self._append(last, item):
                    return  # spilling: everything goes after what is already spilled
            elif self._in_memory >= self._max_buffered and self._spill_item(item):
                return
            self._remember(item)
            if wake or self._in_memory >= self._max_batch:
                self._lock.notify()

    def _remember(self, item: Item) -> None:
        last = self._segments[-1] if self._segments else None
        if not isinstance(last, _Memory):
            if isinstance(last, _Spill):
                self._seal(last)  # later items must not go into it: they come after
            last = _Memory()
            self._segments.append(last)
        last.items.append(item)
        self._in_memory += 1

    def _spill_item(self, item: Item, *, force: bool = False) -> bool:
        """Append ``item`` to a new spill file. False (memory must take it) when the spill
        directory fails; it is then not tried again for a few seconds."""
        if not force and self._clock() < self._spill_broken_until:
            return False
        last = self._segments[-1] if self._segments else None
        if isinstance(last, _Spill) and last.handle is not None:
            segment = last
        else:
            path = self._spill_dir / f"{self._spill_stem}-{next(_seq):06d}{SPILL_SUFFIX}"
            try:
                self._spill_dir.mkdir(parents=True, exist_ok=True)
                handle = open(path, "ab", buffering=0)  # noqa: SIM115 - closed by _seal
            except OSError as error:
                self._spill_failed(error)
                return False
            if self._accepting:  # a late file (after close) is free for replay at once
                with _active_lock:
                    _active_paths.add(path)
            segment = _Spill(path, handle)
            self._segments.append(segment)
            if self._accepting:
                log.warning(
                    "store writer: %d updates buffered; spilling the next ones to %s",
                    self._in_memory,
                    path,
                )
            else:
                log.warning("store writer closed; spilling late updates to %s", path)
        return self._append(segment, item)

    def _append(self, segment: _Spill, item: Item) -> bool:
        assert segment.handle is not None
        line = encode_item(item)
        try:
            if segment.handle.write(line) != len(line):
                raise OSError(f"short write to {segment.path} (disk full?)")
        except (OSError, ValueError) as error:
            self._seal(segment)
            self._spill_failed(error)
            return False
        segment.count += 1
        self._in_spill += 1
        return True

    def _spill_failed(self, error: BaseException) -> None:
        log.error(
            "store writer: cannot spill to %s (%s); buffering in memory", self._spill_dir, error
        )
        self._spill_broken_until = self._clock() + SPILL_RETRY_S

    @staticmethod
    def _seal(segment: _Spill) -> None:
        if segment.handle is not None:
            try:
                segment.handle.close()
            except OSError as error:
                log.warning("closing spill file %s failed: %s", segment.path, error)
            segment.handle = None

    # --- what is left ----------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Trial updates and results not yet confirmed by the store (buffered + spilled)."""
        with self._lock:
            return self._in_memory + self._in_spill

    @property
    def spill_paths(self) -> list[Path]:
        """Spill files that still hold updates the store has not confirmed."""
        with self._lock:
            return [s.path for s in self._segments if isinstance(s, _Spill) and s.left > 0]

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until the store has confirmed everything handed over so far, for at most
        ``timeout_s`` (the store may be away: then the items stay buffered or spilled).
        True when nothing is pending."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            self._lock.notify_all()  # write now, not at the next flush interval
        while self.pending:
            if time.monotonic() >= deadline or not self._thread.is_alive():
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout_s: float = 60.0) -> None:
        """Write everything still buffered or spilled, for at most ``timeout_s``; what the
        store has not taken by then stays in a spill file (logged), then stop the thread."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._deadline = self._clock() + timeout_s
            self._lock.notify_all()
        self._closing.set()
        self._thread.join(timeout_s + CLOSE_GRACE_S)
        if self._thread.is_alive():  # stuck in a store call: save the rest from here
            with self._lock:
                self._spill_rest("a store call did not return before the close timeout")
        with self._lock:
            self._accepting = False
            for segment in self._segments:
                if isinstance(segment, _Spill):
                    self._seal(segment)
                    with _active_lock:
                        _active_paths.discard(segment.path)

    # --- the writer thread -----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            try:
                if self._step():
                    return
            except Exception:  # a bug here must not lose the buffer: log, pause, go on
                log.exception("store writer: unexpected error; continuing")
                if self._past_deadline():
                    with self._lock:
                        self._spill_rest("the writer failed until the close timeout")
                    return
                self._pause(1.0)

    def _step(self) -> bool:
        """One batch; True when the thread is done."""
        with self._lock:
            if not self._closed and not self._backlog():
                self._lock.wait(self._flush_interval_s)
            if self._abandoned:
                return True
            batch = self._next_batch()
            if batch is None:
                return self._closed
            if self._past_deadline():
                self._spill_rest("the close timeout passed")
                return True
        if not self._write(batch):
            with self._lock:
                self._spill_rest("the store is still unavailable at the close timeout")
            return True
        with self._lock:
            if self._abandoned:
                return True
            self._confirm(batch)
        return False

    def _backlog(self) -> bool:
        first = self._segments[0] if self._segments else None
        return isinstance(first, _Spill) or self._in_memory >= self._max_batch

    def _past_deadline(self) -> bool:
        return self._deadline is not None and self._clock() >= self._deadline

    def _next_batch(self) -> _Batch | None:
        """Up to max_batch items from the oldest segment (called under the lock)."""
        while self._segments:
            first = self._segments[0]
            if isinstance(first, _Memory):
                if first.items:
                    items = list(itertools.islice(first.items, self._max_batch))
                    return _Batch(first, items)
                if len(self._segments) == 1:
                    return None
                self._segments.popleft()
                continue
            self._seal(first)  # from now on the producer appends after it
            while first.left > 0:
                try:
                    with open(first.path, "rb") as handle:
                        handle.seek(first.offset)
                        items, lines, size = _read_lines(handle, self._max_batch)
                except OSError as error:
                    log.error("spill file %s cannot be read: %s", first.path, error)
                    items, lines, size = [], 0, 0
                if lines == 0:
                    log.error("spill file %s: %d updates lost", first.path, first.left)
                    self._advance(first, first.left, 0)
                    break
                if items:
                    return _Batch(first, items, lines=lines, size=size)
                self._advance(first, lines, size)  # only malformed lines
            self._drop_spill(first)
        return None

    def _advance(self, segment: _Spill, lines: int, size: int) -> None:
        lines = min(lines, segment.left)
        segment.done += lines
        segment.offset += size
        self._in_spill -= lines

    def _drop_spill(self, segment: _Spill) -> None:
        self._segments.popleft()
        try:
            segment.path.unlink(missing_ok=True)
        except OSError as error:
            log.warning("could not delete spill file %s: %s", segment.path, error)
        with _active_lock:
            _active_paths.discard(segment.path)

    def _confirm(self, batch: _Batch) -> None:
        """The store has the batch: forget it (under the lock)."""
        segment = batch.segment
        if isinstance(segment, _Memory):
            for _ in batch.items:
                segment.items.popleft()
            self._in_memory -= len(batch.items)
            return
        self._advance(segment, batch.lines, batch.size)
        if segment.left <= 0 and self._segments and self._segments[0] is segment:
            self._drop_spill(segment)

    def _write(self, batch: _Batch) -> bool:
        """Write one batch, retrying with backoff; False when the close deadline passed first."""
        delays = self._retry.delays()
        attempt = 0
        while True:
            attempt += 1
            try:
                # One transaction a batch, all of it or nothing. Not a store call for each
                # run of one kind: a trial's start, result and end alternate, so that was
                # two transactions a trial, whatever the batch size.
                self.results_written += self._store.write_batch(self._study_id, batch.items)
                if attempt > 1:
                    log.info("store writer: store reachable again after %d attempts", attempt)
                return True
            except StoreUnavailable as error:
                log.warning(
                    "store unavailable (%s); %d updates waiting; attempt %d failed",
                    error,
                    self.pending,
                    attempt,
                )
            except Exception:
                log.exception("store writer: writing a batch failed (attempt %d)", attempt)
            if self._abandoned or self._past_deadline():
                return False
            self._pause(next(delays))

    def _pause(self, delay: float) -> None:
        """Sleep ``delay`` (less when the close deadline comes first); close() cuts a real
        pause short once, so that closing tries the store again at once."""
        if self._deadline is not None:
            delay = max(0.0, min(delay, self._deadline - self._clock()))
        if self._sleep is not None:
            self._sleep(delay)
        elif not self._closing.is_set():
            self._closing.wait(delay)
        else:
            time.sleep(delay)

    def _spill_rest(self, why: str) -> None:
        """Put everything not yet confirmed into one spill file, in order, and stop (under
        the lock). Older spill files are folded into it."""
        if self._abandoned:
            return
        self._abandoned = True
        self._accepting = False
        pending = self._in_memory + self._in_spill
        spills = [s for s in self._segments if isinstance(s, _Spill)]
        for segment in spills:
            self._seal(segment)
        if pending == 0:
            for segment in spills:
                segment.path.unlink(missing_ok=True)
            self._segments.clear()
            return
        only = [s for s in self._segments if isinstance(s, _Spill) or s.items]
        if len(only) == 1 and isinstance(only[0], _Spill):
            path = only[0].path  # already all in one file (its confirmed head is rewritten)
        else:
            path = self._spill_dir / f"{self._spill_stem}-{next(_seq):06d}{SPILL_SUFFIX}"
            try:
                self._spill_dir.mkdir(parents=True, exist_ok=True)
                with open(path, "ab") as out:
                    for part in self._segments:
                        if isinstance(part, _Memory):
                            for item in part.items:
                                out.write(encode_item(item))
                        elif part.left > 0:
                            with open(part.path, "rb") as source:
                                source.seek(part.offset)
                                shutil.copyfileobj(source, out)
                    out.flush()
                    os.fsync(out.fileno())
            except OSError as error:
                log.error(
                    "store writer: %s, and the %d updates left could not be spilled to %s: %s",
                    why,
                    pending,
                    path,
                    error,
                )
                return
            for segment in spills:
                if segment.path != path:
                    segment.path.unlink(missing_ok=True)
        self._segments = deque([_Spill(path, None, count=pending)])
        self._in_memory, self._in_spill = 0, pending
        log.warning(
            "store writer: %s; %d updates of study %s left in %s (a restarted runner "
            "replays them with replay_spill_files)",
            why,
            pending,
            self._study_id,
            path,
        )


def iter_spilled(path: str | os.PathLike[str]) -> Iterator[Item]:
    """Every item of a spill file, in order (for tools and tests)."""
    with open(path, "rb") as handle:
        while True:
            items, lines, _ = _read_lines(handle, 1000)
            if not lines:
                return
            yield from items
