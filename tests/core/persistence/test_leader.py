"""One leader per deployment: the maintenance loops act in one API process at a time."""

from __future__ import annotations

from core.persistence.leader import Leadership


def test_one_leader_until_it_lets_go(pg_url):
    first, second = Leadership(pg_url), Leadership(pg_url)
    try:
        assert first.held()
        assert first.held()  # still its own on the next pass
        assert not second.held()
        first.release()  # as when its process dies: the session ends, and the lock with it
        assert second.held()
        assert not first.held()
    finally:
        first.release()
        second.release()


def test_sqlite_process_always_leads(tmp_path):
    assert Leadership(f"sqlite:///{tmp_path / 'lathe.db'}").held()
