"""Training the likelihood model from the database, as a job, and serving suggestions with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import text

from matcher.likelihood import PartnershipLikelihood
from tests.conftest import make_test_app

SUZHOU = 1886760
FAST = {
    "max_iter": 30,
    "inner_folds": 2,
    "n_candidates": 60,
    "cold_candidates": 20,
    "graph_candidates": 20,
    "size_candidates": 10,
    "stage1_negatives": 10,
    "stage2_sources": 1500,
    "blend_sources": 100,
}


def test_train_job_saves_an_artifact_then_rescores_with_it(
    db_engine: Any, database_url: str, tmp_path: Path, admin_headers_for: Any
) -> None:
    model = tmp_path / "model" / "likelihood.joblib"
    app = make_test_app(database_url, tmp_path, MODEL_PATH=str(model), TRAIN_PARAMS=FAST)
    client = app.test_client()
    headers = admin_headers_for(app)
    r = client.post("/api/v1/jobs/train", headers=headers)
    assert r.status_code == 202, r.get_json()
    job = client.get(r.headers["Location"]).get_json()
    assert job["state"] == "succeeded", job
    meta = job["result"]
    assert meta["n_pairs"] == 8666 and len(meta["pairs_sha256"]) == 64
    assert {"numpy", "scikit-learn"} <= set(meta["library_versions"])
    assert model.exists() and not model.with_suffix(".joblib.tmp").exists()
    loaded = PartnershipLikelihood.load(model)
    assert loaded.metadata_["pairs_sha256"] == meta["pairs_sha256"]
    # the service fits with the known country-pair totals of seed/ (China-US): the model knows what the lists miss
    assert meta["params"]["country_pair_totals"] == {"CN-US": 284}
    gaps = loaded.known_gaps_
    cn, us = loaded.index_.country_code("CN"), loaded.index_.country_code("US")
    listed = loaded.featurizer_.stats.country_pairs[cn, us]
    assert gaps is not None and gaps.gaps[cn, us] == 284.0 - listed and gaps.per_person[us] > 0.0
    # The follow-up re-scoring job applied the model: stored suggestions carry its version and the component.
    follow = client.get(f"/api/v1/jobs/{meta['rescore_job']}").get_json()
    assert follow["state"] == "succeeded" and follow["total"] > 5000
    s = client.get(f"/api/v1/cities/{SUZHOU}/suggestions?k=10").get_json()
    assert s["score_set"]["live"] is False and meta["version"] in s["score_set"]["model_version"]
    assert all("likelihood" in x["components"] for x in s["data"])
    with db_engine.connect() as conn:
        version = conn.execute(text("SELECT model_version FROM scoreset WHERE id = :i"), {"i": follow["score_set_id"]})
        assert meta["version"] in version.scalar_one()


def test_the_model_parameters_are_the_known_totals_then_the_settings_then_the_call(tmp_path: Path) -> None:
    from api.config import Settings
    from api.domain.training import likelihood_params

    settings = Settings(TRAIN_PARAMS={"max_iter": 5})
    assert likelihood_params(settings) == {"country_pair_totals": {"CN-US": 284}, "max_iter": 5}
    assert likelihood_params(settings, max_iter=7)["max_iter"] == 7
    off = Settings(TRAIN_PARAMS={"country_pair_totals": None})  # TWINNING_TRAIN_PARAMS can switch them off
    assert likelihood_params(off)["country_pair_totals"] is None


def test_train_is_admin_only_and_503_without_redis(
    db_engine: Any, database_url: str, tmp_path: Path, admin_headers_for: Any
) -> None:
    app = make_test_app(database_url, tmp_path, REDIS_URL="redis://127.0.0.1:1/0", JOBS_MODE="celery")
    client = app.test_client()
    assert client.post("/api/v1/jobs/train").status_code == 401
    r = client.post("/api/v1/jobs/train", headers=admin_headers_for(app))
    assert r.status_code == 503 and r.is_json


def test_first_start_retrains_when_the_saved_model_cannot_be_loaded(
    db_engine: Any, database_url: str, tmp_path: Path
) -> None:
    """The decision only: the train job goes to the queue (no worker runs it here)."""
    import redis

    from api.domain.bootstrap import first_start
    from tests.conftest import REDIS_URL

    model = tmp_path / "likelihood.joblib"
    model.write_bytes(b"an artifact of an older release")
    app = make_test_app(database_url, tmp_path, MODEL_PATH=str(model), REDIS_URL=REDIS_URL, JOBS_MODE="celery")
    said: list[str] = []
    try:
        first_start(app, echo=said.append)
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        client.flushdb()
        client.close()
    assert said and said[0].startswith("Training")
    with db_engine.connect() as conn:
        assert conn.execute(text("SELECT kind, state FROM job")).all() == [("train", "queued")]
