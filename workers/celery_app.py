"""The Celery application of the workers, built by :func:`create_celery` (nothing is built at import time).

``celery -A workers.celery_app worker`` reads this module's ``app`` attribute, which is created on first access.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from api.config import Settings
from api.domain.queue import make_celery

_app: Celery | None = None


def create_celery(settings: Settings | None = None) -> Celery:
    """The workers' Celery app, configured from ``settings`` (the environment by default), with the tasks."""
    settings = settings or Settings.from_env()
    if not settings.REDIS_URL:
        raise SystemExit("REDIS_URL must be set to run a Celery worker")
    app = make_celery(settings)
    app.set_default()
    import workers.tasks  # noqa: F401  (registers the tasks, declared with @shared_task, on the default app)

    return app


def __getattr__(name: str) -> Any:
    """``app`` (and ``celery``, which the Celery CLI also looks for) are built on first access."""
    global _app
    if name in {"app", "celery"}:
        if _app is None:
            _app = create_celery()
        return _app
    raise AttributeError(name)
