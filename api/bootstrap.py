"""What the embedded ``serve`` does on start: make sure suggestions exist so the first visit shows results."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session, func, select

from .models import ScoreSet


def first_start(app: Any, echo: Callable[[str], None] = print) -> None:
    svc = app.extensions["twinning"]
    with Session(svc.engine) as session:
        have_sets = session.exec(select(func.count()).select_from(ScoreSet)).one() > 0
        if have_sets:
            return
        job = svc.submit(session, kind="rescore", city_ids=None, scope="active")
        echo(
            f"Computing suggestions for {job.total} active cities in the background (job {job.id}); until it "
            "finishes, suggestions are computed live."
        )
