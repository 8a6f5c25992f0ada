"""Encoded study documents kept in the service, dropped as soon as the store moves on.

The runner writes trials and results from its own process, so the service cannot see
writes happen; it sees the study's ``revision`` (raised in the same transaction as every
write to the study, its trials or its results; see service.store.models). An entry
remembers the revision it was built at, read in the same transaction as its content (or
before it: then it can only look older than it is). :meth:`StudyCache.validate` reads the
current revisions of every cached study in one indexed query and drops each entry whose
study moved on or was deleted; :meth:`StudyCache.run` does so every ``poll_s`` seconds.
So a cached answer is at most ``poll_s`` (plus one validation query) older than the
store, and writes made through this service (create, stop, delete) drop their study's
entries at once. A request with ``Cache-Control: no-cache`` skips the cache.

Some kinds (the page's snapshot) may also be served a little behind: the last one built
is kept apart with its build time (:meth:`StudyCache.recent`), so a reader of a study
that changes all the time need not wait for a new one to be built; the page follows the
study's events from the snapshot's event id, which brings it up to date.

Owners are remembered apart, for good: a study's owner never changes and study ids are
never reused, so the owner check of every request needs no database read.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from fastapi.concurrency import run_in_threadpool

from service.store import StudyStore

log = logging.getLogger(__name__)

POLL_S = 0.25
MAX_ENTRIES = 4096
MAX_BYTES = 64 * 1024 * 1024
MAX_OWNERS = 100_000
MAX_RECENT = 64  # documents kept to be served behind: about the pages open at once


@dataclass(frozen=True)
class Cached:
    """One encoded document and the study revision it shows."""

    revision: int
    body: bytes


class StudyCache:
    """Documents by (study id, kind), e.g. ``(7, "study")``; least recently used first out."""

    def __init__(
        self,
        store: StudyStore,
        *,
        poll_s: float = POLL_S,
        max_entries: int = MAX_ENTRIES,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.store = store
        self.poll_s = poll_s
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._bytes = 0
        self._entries: OrderedDict[tuple[int, str], Cached] = OrderedDict()
        self._owners: dict[int, str] = {}
        self._recent: OrderedDict[tuple[int, str], tuple[float, Cached]] = OrderedDict()
        self._refreshing: set[tuple[int, str]] = set()
        self._lock = threading.Lock()  # loads run in worker threads

    # --- documents ----------------------------------------------------------------------
    def get(self, study_id: int, kind: str) -> Cached | None:
        with self._lock:
            entry = self._entries.get((study_id, kind))
            if entry is not None:
                self._entries.move_to_end((study_id, kind))
            return entry

    def put(self, study_id: int, kind: str, entry: Cached) -> None:
        with self._lock:
            current = self._entries.get((study_id, kind))
            if current is not None and current.revision > entry.revision:
                return  # a slower load of an older revision must not replace a newer one
            if current is not None:
                self._bytes -= len(current.body)
            self._entries[(study_id, kind)] = entry
            self._bytes += len(entry.body)
            self._entries.move_to_end((study_id, kind))
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                self._bytes -= len(self._entries.popitem(last=False)[1].body)

    def _drop(self, key: tuple[int, str]) -> None:
        """Remove an entry; the caller holds the lock."""
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry.body)

    def invalidate(self, study_id: int) -> None:
        """Drop every document of the study (a write through this service)."""
        with self._lock:
            for key in [key for key in self._recent if key[0] == study_id]:
                del self._recent[key]
            for key in [key for key in self._entries if key[0] == study_id]:
                self._drop(key)

    def validate(self) -> int:
        """Drop the entries whose study has a newer revision or is gone (reads the store).
        Returns how many were dropped."""
        with self._lock:
            cached = {key: entry.revision for key, entry in self._entries.items()}
        if not cached:
            return 0
        current = self.store.revisions(sorted({study_id for study_id, _ in cached}))
        stale = [key for key, rev in cached.items() if current.get(key[0]) != rev]
        with self._lock:
            for key in stale:
                entry = self._entries.get(key)
                if entry is not None and entry.revision == cached[key]:
                    self._drop(key)
            for study_id, _ in stale:
                if study_id not in current:
                    self._owners.pop(study_id, None)
        return len(stale)

    async def run(self) -> None:
        """Validate every ``poll_s`` seconds until cancelled."""
        while True:
            try:
                await run_in_threadpool(self.validate)
            except Exception as error:  # the database may be back on the next round
                log.warning("checking cached studies failed: %s", error)
                self.clear()  # nothing is known to be current now
            await asyncio.sleep(self.poll_s)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._recent.clear()
            self._bytes = 0

    # --- documents that may be served behind -------------------------------------------
    def keep_recent(self, study_id: int, kind: str, entry: Cached) -> None:
        """Remember ``entry`` as the study's latest ``kind``, built now."""
        with self._lock:
            current = self._recent.get((study_id, kind))
            if current is not None and current[1].revision > entry.revision:
                return
            self._recent[(study_id, kind)] = (time.monotonic(), entry)
            self._recent.move_to_end((study_id, kind))
            while len(self._recent) > MAX_RECENT:
                self._recent.popitem(last=False)

    def recent(self, study_id: int, kind: str, max_age_s: float) -> Cached | None:
        """The latest ``kind`` built for the study within ``max_age_s``, even if the study
        has moved on since (None: none that young)."""
        with self._lock:
            found = self._recent.get((study_id, kind))
        if found is None or time.monotonic() - found[0] > max_age_s:
            return None
        return found[1]

    def claim_refresh(self, study_id: int, kind: str) -> bool:
        """True if the caller is now the one rebuilding it (False: one already is)."""
        with self._lock:
            if (study_id, kind) in self._refreshing:
                return False
            self._refreshing.add((study_id, kind))
            return True

    def release_refresh(self, study_id: int, kind: str) -> None:
        with self._lock:
            self._refreshing.discard((study_id, kind))

    # --- owners ---------------------------------------------------------------------------
    def owner(self, study_id: int) -> str | None:
        return self._owners.get(study_id)

    def load_owner(self, study_id: int) -> str:
        """The study's owner, from the store the first time. Raises StudyNotFound."""
        owner = self._owners.get(study_id)
        if owner is None:
            owner = self.store.get_study(study_id).owner
            self.remember_owner(study_id, owner)
        return owner

    def remember_owner(self, study_id: int, owner: str) -> None:
        with self._lock:
            if len(self._owners) >= MAX_OWNERS:
                self._owners.clear()
            self._owners[study_id] = owner

    def forget(self, study_id: int) -> None:
        """The study was deleted through this service."""
        self.invalidate(study_id)
        with self._lock:
            self._owners.pop(study_id, None)
