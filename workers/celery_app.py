"""The Celery application for ``celery -A workers.celery_app worker``: configured from the environment."""

from __future__ import annotations

from api.config import Settings
from api.domain.queue import make_celery

settings = Settings.from_env()
if not settings.REDIS_URL:  # pragma: no cover - a worker without a broker cannot do anything useful
    raise SystemExit("REDIS_URL must be set to run a Celery worker")

app = make_celery(settings)
app.set_default()
import workers.tasks  # noqa: E402,F401  (registers the tasks on this app)
