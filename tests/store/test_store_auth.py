"""The StudyStore contract for ownership and API tokens, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from service.auth import hash_token
from service.store import (
    StudyNotFound,
    StudyStatus,
    StudyStore,
    TokenExists,
    TokenNotFound,
)

SPEC = {"trainable": "branin"}


def test_get_and_summarize_filter_by_owner(store: StudyStore) -> None:
    ann = store.create_study(name="a", spec=SPEC, metric="loss", mode="min", owner="ann")
    assert store.get_study(ann.id, owner="ann").owner == "ann"
    assert store.get_study(ann.id, owner=None).id == ann.id  # an admin sees every study
    assert store.summarize_study(ann.id, owner="ann").study.id == ann.id
    for call in (
        lambda: store.get_study(ann.id, owner="bob"),
        lambda: store.summarize_study(ann.id, owner="bob"),
    ):
        with pytest.raises(StudyNotFound) as raised:
            call()
        # Exactly what a missing study raises: nothing tells "not yours" from "no such".
        assert str(raised.value) == f"study {ann.id} not found"


def test_owner_listing_is_newest_first_and_paged(store: StudyStore) -> None:
    mine = [
        store.create_study(name=f"s{i}", spec=SPEC, metric="loss", mode="min", owner="ann").id
        for i in range(3)
    ]
    store.create_study(name="other", spec=SPEC, metric="loss", mode="min", owner="bob")
    page = store.list_studies(owner="ann", limit=2, offset=1)
    assert page.total == 3 and [s.id for s in page.items] == [mine[1], mine[0]]
    store.transition_study(mine[0], StudyStatus.RUNNING)
    assert store.list_studies(owner="bob", status=StudyStatus.RUNNING).total == 0


def test_default_owner_is_local(store: StudyStore) -> None:
    study = store.create_study(name="s", spec=SPEC, metric="loss", mode="min")
    assert study.owner == "local"


def test_api_tokens_add_find_list_delete(store: StudyStore) -> None:
    assert store.list_api_tokens() == ()
    before = dt.datetime.now(dt.timezone.utc)
    alice = store.add_api_token(token_hash=hash_token("t-alice"), principal="alice", is_admin=False)
    ops = store.add_api_token(token_hash=hash_token("t-ops"), principal="ops", is_admin=True)
    assert (alice.principal, alice.is_admin, alice.token_hash) == (
        "alice",
        False,
        hash_token("t-alice"),
    )
    assert ops.is_admin is True and ops.id != alice.id
    assert alice.created_at.utcoffset() == dt.timedelta(0)
    assert alice.created_at >= before - dt.timedelta(seconds=5)
    found = store.find_api_token(hash_token("t-ops"))
    assert found == ops
    assert store.find_api_token(hash_token("t-nobody")) is None
    assert [t.id for t in store.list_api_tokens()] == [alice.id, ops.id]
    with pytest.raises(dataclasses.FrozenInstanceError):
        found.principal = "mallory"  # type: ignore[misc]

    store.delete_api_token(alice.id)
    assert store.find_api_token(hash_token("t-alice")) is None
    assert [t.id for t in store.list_api_tokens()] == [ops.id]
    with pytest.raises(TokenNotFound) as raised:
        store.delete_api_token(alice.id)
    assert isinstance(raised.value, KeyError)


def test_a_token_hash_is_stored_once(store: StudyStore) -> None:
    store.add_api_token(token_hash=hash_token("same"), principal="a", is_admin=False)
    with pytest.raises(TokenExists):
        store.add_api_token(token_hash=hash_token("same"), principal="b", is_admin=True)
    # The failed insert left the store usable and the first token unchanged.
    record = store.find_api_token(hash_token("same"))
    assert record is not None and record.principal == "a"
    assert len(store.list_api_tokens()) == 1
