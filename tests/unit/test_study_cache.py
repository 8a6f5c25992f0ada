"""The study cache alone (a fake store): entries are dropped when their study's revision
moves on or the study is gone, never replaced by older ones, and bounded in size."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from service.api.study_cache import Cached, StudyCache
from service.store import StudyNotFound


class FakeStore:
    def __init__(self) -> None:
        self.revision: dict[int, int] = {}
        self.owners: dict[int, str] = {}
        self.reads = 0

    def revisions(self, study_ids: Sequence[int]) -> Mapping[int, int]:
        self.reads += 1
        return {i: self.revision[i] for i in study_ids if i in self.revision}

    def get_study(self, study_id: int) -> Any:
        self.reads += 1
        if study_id not in self.owners:
            raise StudyNotFound(study_id)
        return type("Record", (), {"owner": self.owners[study_id]})()


def cache_of(store: FakeStore, **kwargs: Any) -> StudyCache:
    return StudyCache(store, **kwargs)  # type: ignore[arg-type]


def test_entries_live_until_their_study_moves_on() -> None:
    store = FakeStore()
    store.revision = {1: 5, 2: 7}
    cache = cache_of(store)
    cache.put(1, "study", Cached(5, b"one"))
    cache.put(1, "snapshot", Cached(5, b"one-page"))
    cache.put(2, "study", Cached(7, b"two"))
    assert cache.validate() == 0
    assert cache.get(1, "study") == Cached(5, b"one")
    store.revision[1] = 6  # a write to study 1
    assert cache.validate() == 2
    assert cache.get(1, "study") is None and cache.get(1, "snapshot") is None
    assert cache.get(2, "study") is not None
    del store.revision[2]  # deleted
    assert cache.validate() == 1
    assert cache.get(2, "study") is None


def test_an_entry_built_before_a_write_is_dropped_at_the_next_poll() -> None:
    """A load that read revision 5 lands after the store moved to 6: it is kept only
    until the next validation."""
    store = FakeStore()
    store.revision = {1: 6}
    cache = cache_of(store)
    cache.put(1, "study", Cached(5, b"old"))
    assert cache.validate() == 1
    assert cache.get(1, "study") is None


def test_an_older_revision_never_replaces_a_newer_one() -> None:
    cache = cache_of(FakeStore())
    cache.put(1, "study", Cached(6, b"new"))
    cache.put(1, "study", Cached(5, b"old"))
    assert cache.get(1, "study") == Cached(6, b"new")


def test_no_reads_when_empty_and_bounded_in_size() -> None:
    store = FakeStore()
    cache = cache_of(store, max_entries=3, max_bytes=10)
    assert cache.validate() == 0 and store.reads == 0
    for i in range(5):
        cache.put(i, "study", Cached(1, b"xx"))
    assert [i for i in range(5) if cache.get(i, "study")] == [2, 3, 4]
    cache.put(9, "study", Cached(1, b"x" * 9))  # over the byte budget: older ones go
    assert cache.get(9, "study") is not None and cache.get(4, "study") is None


def test_owners_are_read_once_and_forgotten_with_the_study() -> None:
    store = FakeStore()
    store.owners = {1: "ann"}
    cache = cache_of(store)
    assert cache.load_owner(1) == "ann" and cache.load_owner(1) == "ann"
    assert store.reads == 1
    assert cache.owner(1) == "ann"
    with pytest.raises(StudyNotFound):
        cache.load_owner(2)
    cache.forget(1)
    assert cache.owner(1) is None


def test_the_last_document_is_kept_behind_for_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    import service.api.study_cache as module

    now = [100.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: now[0])
    store = FakeStore()
    store.revision = {1: 5}
    cache = cache_of(store)
    cache.keep_recent(1, "snapshot", Cached(5, b"v5"))
    cache.keep_recent(1, "snapshot", Cached(4, b"v4"))  # a slower, older build: ignored
    store.revision[1] = 6
    cache.validate()  # the study moved on: the current entry would be gone, not this one
    now[0] += 1.5
    assert cache.recent(1, "snapshot", max_age_s=2.0) == Cached(5, b"v5")
    now[0] += 1.0
    assert cache.recent(1, "snapshot", max_age_s=2.0) is None  # too old to be served
    cache.keep_recent(1, "snapshot", Cached(6, b"v6"))
    cache.invalidate(1)  # a write through this service: nothing is served behind
    assert cache.recent(1, "snapshot", max_age_s=2.0) is None
    # One rebuild at a time per study.
    assert cache.claim_refresh(1, "snapshot") and not cache.claim_refresh(1, "snapshot")
    cache.release_refresh(1, "snapshot")
    assert cache.claim_refresh(1, "snapshot")
