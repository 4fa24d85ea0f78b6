"""The rules that make redelivery fast and safe, without worker processes: the sliding window of chunks (a requeued
chunk waits behind at most ``window - 1`` others) and the training lease (a duplicate delivery of a live training
does nothing)."""

from __future__ import annotations

import time
from typing import Any

from sqlmodel import Session

from api.config import Settings
from api.data import crud
from api.domain import jobs
from api.domain.scoring import MatcherService


def test_chunks_go_out_through_a_window_and_hand_on_their_lane(db_engine: Any, tmp_path: Any) -> None:
    settings = Settings.from_env(RESCORE_CHUNK=10, MODEL_PATH=str(tmp_path / "none.joblib"), TESTING=True)
    with Session(db_engine) as session:
        ids = crud.active_city_ids(session)[:60]
        job_id = jobs.create_job(session, kind="rescore", city_ids=ids).id
        session.commit()
    sent: list[int] = []
    jobs.start(db_engine, settings, MatcherService(settings, db_engine), job_id, lambda j, n, c: sent.append(n), 2)
    assert sent == [0, 1]  # 6 chunks, 2 in the queue at once
    assert jobs.successor(db_engine, settings, job_id, 0, 2) == (2, sorted(ids)[20:30])
    with Session(db_engine) as session:
        crud.record_chunk(session, job_id=job_id, chunk=2, size=10)
        session.commit()
    assert jobs.successor(db_engine, settings, job_id, 0, 2)[0] == 4  # type: ignore[index]  # 2 is done: skip it
    assert jobs.successor(db_engine, settings, job_id, 5, 2) is None


def test_a_training_lease_keeps_duplicates_out_until_it_lapses(db_engine: Any) -> None:
    with Session(db_engine) as session:
        job_id = jobs.create_job(session, kind="train", city_ids=None).id
        session.commit()
    with jobs.lease(db_engine, job_id, "worker-a", 0.9) as held:
        assert held
        time.sleep(1.2)  # renewed every 0.3 s: still held past its first expiry
        with jobs.lease(db_engine, job_id, "worker-b", 0.9) as duplicate:
            assert not duplicate
    time.sleep(1.0)  # the holder is gone and no longer renews: the lease lapses
    with jobs.lease(db_engine, job_id, "worker-b", 0.9) as takeover:
        assert takeover
