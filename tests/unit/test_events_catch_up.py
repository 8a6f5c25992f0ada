"""Catching up on a study's events from the store: its last terminal event ends the
stream; one that an extension of the study followed does not."""

from __future__ import annotations

from service.events import _catch_up
from service.store import EventRecord


def study_event(event_id: int, status: str) -> EventRecord:
    return EventRecord(id=event_id, study_id=1, kind="study", data={"status": status})


def test_the_last_terminal_event_ends_the_stream() -> None:
    records = [study_event(1, "RUNNING"), study_event(2, "COMPLETED")]
    chunk, cursor, done = _catch_up(records, 0, floor=10)
    assert done and cursor == 2 and chunk.count(b"event: study") == 2


def test_a_completed_study_that_was_extended_goes_on() -> None:
    records = [
        study_event(1, "RUNNING"),
        study_event(2, "COMPLETED"),
        study_event(3, "PENDING"),  # extended: it runs again
        study_event(4, "RUNNING"),
    ]
    chunk, cursor, done = _catch_up(records, 0, floor=10)
    assert not done and cursor == 10 and chunk.count(b"event: study") == 4
    chunk, cursor, done = _catch_up([*records, study_event(5, "COMPLETED")], 0, floor=10)
    assert done and cursor == 5
