"""``hpo follow`` reads the event stream: progress bar, then a leaderboard."""

from __future__ import annotations

import pytest

from tests.fixtures.service import LiveService
from tests.fixtures.watch import FollowedStudy
from tests.integration.test_cli import hpo

pytestmark = pytest.mark.ray


def test_follow_shows_progress_and_leaderboard(
    live_service: LiveService, followed_study: FollowedStudy
) -> None:
    done = hpo("follow", str(followed_study.study_id), url=live_service.url, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4/4" in done.stdout  # every trial of the budget finished
    assert "COMPLETED" in done.stdout
    assert "leaderboard" in done.stdout and "rank" in done.stdout
    assert "TERMINATED" in done.stdout
