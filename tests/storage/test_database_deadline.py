"""One deadline for every database call of an operation (storage.client.database_deadline):
nested deadlines only shorten the outer one, leaving one restores the outer one (also when the
block raises), and PyMongo's own timeout is set for as long as the deadline holds."""

from __future__ import annotations

import pymongo
import pytest
from pymongo import _csot

from ehr_gateway.storage.client import database_deadline, deadline_at, time_left


def test_nested_deadlines_only_shorten_and_leaving_restores() -> None:
    assert deadline_at() is None
    with database_deadline(30):
        outer = deadline_at()
        assert outer is not None
        assert _csot.get_timeout() == 30
        with database_deadline(60):
            assert deadline_at() == outer  # a longer one inside keeps the outer one
        with database_deadline(1):
            inner = deadline_at()
            assert inner is not None and inner < outer
            left = time_left()
            assert left is not None and left <= 1
        assert deadline_at() == outer
        with pytest.raises(RuntimeError), database_deadline(2):
            raise RuntimeError("the block failed")
        assert deadline_at() == outer
        assert _csot.get_timeout() == 30
    assert deadline_at() is None
    assert _csot.get_timeout() is None


def test_no_deadline_of_its_own() -> None:
    with pymongo.timeout(5), database_deadline(None):
        assert deadline_at() is None
        assert _csot.get_timeout() == 5
