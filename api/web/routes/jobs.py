"""Batch re-scoring jobs."""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask_openapi3 import APIBlueprint, Tag

from api.data import crud
from api.data.models import Job
from api.errors import Invalid
from api.schemas import ErrorResponse, JobPath, JobPublic, RescoreRequest
from api.web import auth
from api.web.context import db, services

bp = APIBlueprint("jobs", __name__, url_prefix="/api/v1", abp_tags=[Tag(name="jobs")])


def job_public(job: Job) -> dict[str, Any]:
    progress = (job.done / job.total) if job.total else (1.0 if job.state == "succeeded" else 0.0)
    return JobPublic(
        id=job.id,
        kind=job.kind,
        state=job.state,
        total=job.total,
        done=job.done,
        progress=round(min(progress, 1.0), 4),
        params={k: v for k, v in (job.params or {}).items() if k not in {"city_ids", "lease"}}
        | {"n_cities": len(job.params.get("city_ids") or []) or job.total},
        score_set_id=job.score_set_id,
        result=job.result or {},
        error=job.error,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    ).model_dump(mode="json")


@bp.post(
    "/jobs/rescore",
    responses={
        202: JobPublic,
        401: ErrorResponse,
        403: ErrorResponse,
        422: ErrorResponse,
        503: ErrorResponse,
    },
    security=auth.BEARER,
)
def rescore(body: RescoreRequest) -> Any:
    """Re-score all cities (or those listed). Answers 202 with the job and its Location; 503 if Redis is down.

    Admins and coordinators.
    """
    auth.require_role("admin", "coordinator")
    session = db()
    if body.city_ids is not None:
        if not body.city_ids:
            raise Invalid("city_ids must not be empty (omit it to rescore every city)", "city_ids")
        missing = crud.missing_city_ids(session, ids=body.city_ids)
        if missing:
            raise Invalid(f"unknown city ids: {missing[:10]}", "city_ids")
    job = services().submit(session, kind="rescore", city_ids=body.city_ids, scope=body.scope)
    return job_public(job), 202, {"Location": url_for("jobs.get_job", id=job.id)}


@bp.post(
    "/jobs/train",
    responses={202: JobPublic, 401: ErrorResponse, 403: ErrorResponse, 503: ErrorResponse},
    security=auth.BEARER,
)
def train() -> Any:
    """Re-train the partnership-likelihood model on the current network, then re-score the active cities.

    Answers 202 with the job; when it succeeds its ``result`` holds the model's metadata and the id of the
    re-scoring job that applies it. Admins only.
    """
    auth.require_role("admin")
    job = services().submit(db(), kind="train")
    return job_public(job), 202, {"Location": url_for("jobs.get_job", id=job.id)}


@bp.get("/jobs/<id>", responses={200: JobPublic, 404: ErrorResponse})
def get_job(path: JobPath) -> Any:
    """A job's state and progress."""
    job = crud.get_job(db(), job_id=path.id)
    db().refresh(job)
    return job_public(job)
