"""The live event stream of a study: shared per-study feeds that tail the store's event log.

Events are read from the store (its append-only event log), never kept only in memory, so
a client that resumes with ``Last-Event-ID`` after a service restart misses nothing. To
serve many clients without each one querying the database, one :class:`StudyFeed` per
watched study polls the log and keeps the newest events encoded as SSE bytes; a client
whose cursor lies before the feed's window catches up from the store first.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Sequence

from fastapi.concurrency import run_in_threadpool
from sse_starlette import ServerSentEvent

from service.store import EventRecord, StudyNotFound, StudyStatus, StudyStore

log = logging.getLogger(__name__)

CATCH_UP_PAGE = 2000


def encode(record: EventRecord) -> bytes:
    """One event as SSE bytes: ``id``, ``event`` (study | trial | result) and JSON data."""
    data = json.dumps(record.data, separators=(",", ":"), default=str)
    return ServerSentEvent(data=data, event=record.kind, id=str(record.id)).encode()


def is_terminal(record: EventRecord) -> bool:
    return record.kind == "study" and StudyStatus(record.data["status"]).is_terminal


class StudyFeed:
    """The newest events of one study, polled from the store and shared by its clients.

    Every event with ``floor < id <= last_id`` is in the window (``ids``/``chunks``).
    """

    def __init__(
        self, store: StudyStore, study_id: int, floor: int, *, poll_s: float, keep: int
    ) -> None:
        self.store, self.study_id = store, study_id
        self.floor = self.last_id = floor
        self.poll_s, self.keep = poll_s, keep
        self.ids: list[int] = []
        self.chunks: list[bytes] = []
        self.terminal_id: int | None = None
        self.gone = False  # the study was deleted
        self.clients = 0
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"hpo-feed-{self.study_id}")

    async def stop(self) -> None:
        """Stop polling; clients still waiting end their streams (they may resume)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.gone = True
        async with self._changed:
            self._changed.notify_all()

    @property
    def ended(self) -> bool:
        return self.gone or self.terminal_id is not None

    async def _run(self) -> None:
        while not self.ended:
            try:
                records = await run_in_threadpool(
                    self.store.events_after, self.study_id, self.last_id, CATCH_UP_PAGE
                )
            except StudyNotFound:
                self.gone = True
                records = []
            except Exception as error:  # the database may be back on the next round
                log.warning("reading study %s's events failed: %s", self.study_id, error)
                records = []
            if records:
                self._append(records)
            if records or self.ended:
                async with self._changed:
                    self._changed.notify_all()
            if len(records) < CATCH_UP_PAGE:
                await asyncio.sleep(self.poll_s)

    def _append(self, records: Sequence[EventRecord]) -> None:
        for record in records:
            self.ids.append(record.id)
            self.chunks.append(encode(record))
            if is_terminal(record):
                self.terminal_id = record.id
                break
        self.last_id = self.ids[-1]
        if len(self.ids) > self.keep:  # drop the older half; late clients use the store
            cut = len(self.ids) - self.keep // 2
            self.floor = self.ids[cut - 1]
            del self.ids[:cut], self.chunks[:cut]

    def after(self, cursor: int) -> tuple[bytes, int]:
        """The window's events after ``cursor`` (>= floor) as one chunk, and the new cursor."""
        start = bisect.bisect_right(self.ids, cursor)
        if start == len(self.ids):
            return b"", cursor
        return b"".join(self.chunks[start:]), self.ids[-1]

    async def wait(self, cursor: int, timeout_s: float) -> None:
        """Until an event after ``cursor`` arrives, the feed ends, or ``timeout_s`` passes."""
        async with self._changed:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self.last_id > cursor or self.ended),
                    timeout_s,
                )


class EventHub:
    """The feeds of the studies being watched; a feed stops when its last client leaves."""

    def __init__(self, store: StudyStore, *, poll_s: float = 0.25, keep: int = 50_000) -> None:
        self.store = store
        self.poll_s, self.keep = poll_s, keep
        self._feeds: dict[int, StudyFeed] = {}
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def feed(self, study_id: int) -> AsyncIterator[StudyFeed]:
        async with self._lock:
            feed = self._feeds.get(study_id)
            if feed is None:
                floor = await run_in_threadpool(self.store.last_event_id, study_id)
                feed = StudyFeed(self.store, study_id, floor, poll_s=self.poll_s, keep=self.keep)
                feed.start()
                self._feeds[study_id] = feed
            feed.clients += 1
        try:
            yield feed
        finally:
            async with self._lock:
                feed.clients -= 1
                if feed.clients == 0 and self._feeds.get(study_id) is feed:
                    del self._feeds[study_id]
                    await feed.stop()

    async def close(self) -> None:
        async with self._lock:
            feeds, self._feeds = list(self._feeds.values()), {}
        for feed in feeds:
            await feed.stop()

    async def stream(self, study_id: int, cursor: int) -> AsyncIterator[bytes]:
        """Every event of the study after ``cursor``, in id order, each once; ends after
        the study's terminal ``study`` event (or when the study is deleted)."""
        async with self.feed(study_id) as feed:
            while True:
                if cursor < feed.floor:  # before the feed's window: read the store
                    try:
                        records = await run_in_threadpool(
                            self.store.events_after, study_id, cursor, CATCH_UP_PAGE
                        )
                    except StudyNotFound:
                        return
                    chunk, cursor, done = _catch_up(records, cursor, feed.floor)
                    if chunk:
                        yield chunk
                    if done:
                        return
                    continue
                chunk, cursor = feed.after(cursor)
                if chunk:
                    yield chunk
                if feed.terminal_id is not None and cursor >= feed.terminal_id:
                    return
                if feed.gone:
                    return
                if not chunk:
                    await feed.wait(cursor, timeout_s=5.0)


def _catch_up(records: Sequence[EventRecord], cursor: int, floor: int) -> tuple[bytes, int, bool]:
    """Events read from the store up to the feed's floor: (chunk, new cursor, ended)."""
    parts: list[bytes] = []
    for index, record in enumerate(records):
        if record.id > floor:
            return b"".join(parts), floor, False
        parts.append(encode(record))
        cursor = record.id
        # The study's last event ends the stream; a terminal one that is followed by
        # more (the study was extended and went on) does not.
        last = index == len(records) - 1 and len(records) < CATCH_UP_PAGE
        if is_terminal(record) and last:
            return b"".join(parts), cursor, True
    if len(records) < CATCH_UP_PAGE:  # nothing more before the floor
        cursor = max(cursor, floor)
    return b"".join(parts), cursor, False


async def has_events_after(store: StudyStore, study_id: int, cursor: int) -> bool:
    return bool(await run_in_threadpool(store.events_after, study_id, cursor, 1))
