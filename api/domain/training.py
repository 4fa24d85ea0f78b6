"""Training the partnership-likelihood model from the database: the gazetteer and the partnership network
(seeded real partnerships plus the ones recorded since, e.g. accepted matches)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine
from sqlmodel import Session

from api.config import Settings
from api.data import crud
from api.data.models import utcnow

log = logging.getLogger(__name__)
TRAINING_STATUSES = ("active", "dormant")


def training_data(session: Session) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Gazetteer cities (custom cities excluded) and their partnerships as geonameid pairs."""
    cities = crud.gazetteer_frame(session)
    pairs = pd.DataFrame(
        crud.partnership_pairs(session, statuses=TRAINING_STATUSES), columns=["geonameid_a", "geonameid_b"]
    )
    known = set(cities["geonameid"].tolist())
    pairs = pairs[pairs.geonameid_a.isin(known) & pairs.geonameid_b.isin(known)].reset_index(drop=True)
    return cities, pairs


def likelihood_params(settings: Settings, **params: Any) -> dict[str, Any]:
    """The model's parameters wherever the service fits one (training, ``twinning evaluate``, the benchmarks): the
    known country-pair totals shipped in ``seed/country_pair_totals.csv``, then ``TWINNING_TRAIN_PARAMS``, then
    ``params``."""
    from seed.readers import read_country_pair_totals

    return {"country_pair_totals": read_country_pair_totals(), **settings.TRAIN_PARAMS, **params}


def train(engine: Engine, settings: Settings, *, out: Path | None = None, **params: Any) -> dict[str, Any]:
    """Fit on everything the database knows and save one artifact (atomically replacing the old one)."""
    from matcher.likelihood import PartnershipLikelihood

    with Session(engine) as session:
        cities, pairs = training_data(session)
    t0 = time.perf_counter()
    model = PartnershipLikelihood(**likelihood_params(settings, **params)).fit(cities, pairs)
    seconds = time.perf_counter() - t0
    path = Path(out or settings.model_path())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    model.save(tmp)
    os.replace(tmp, path)  # readers never see a half-written model
    meta = dict(model.metadata_)
    meta["fit_seconds"] = round(seconds, 1)
    meta["path"] = str(path)
    log.info("trained %s on %d pairs in %.1fs -> %s", meta.get("version"), len(pairs), seconds, path)
    return meta


def run_train_job(engine: Engine, settings: Settings, job_id: str) -> dict[str, Any]:
    """A ``train`` job: fit, save, record the model's metadata on the job."""
    with Session(engine) as session:
        job = crud.find_job(session, job_id=job_id)
        if job is None or job.state in {"succeeded", "failed"}:
            return {}
        job.state, job.started_at, job.total = "running", utcnow(), 1
        session.add(job)
        session.commit()
    meta = train(engine, settings)
    with Session(engine) as session:
        job = crud.get_job(session, job_id=job_id)
        job.state, job.done, job.finished_at = "succeeded", 1, utcnow()
        job.result = {k: v for k, v in meta.items() if isinstance(v, str | int | float | bool | dict | list)}
        session.add(job)
        session.commit()
    return meta
