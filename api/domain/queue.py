"""The job queue: every Celery task name, the one Celery configuration (shared by the web app, which only sends,
and the workers), and the helpers that ping Redis and send tasks."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.schedules import crontab

from api.config import Settings

# Every Celery task name lives here; workers/tasks.py declares its tasks under these names.
RESCORE_ALL = "twinning.rescore_all"
RESCORE_CITY = "twinning.rescore_city"
RESCORE_CHUNK = "twinning.rescore_chunk"
TRAIN_MODEL = "twinning.train_model"
NIGHTLY_RESCORE = "twinning.nightly_rescore"
EXPIRE_MATCHES = "twinning.expire_matches"

# The task that runs each kind of job.
TASK_FOR_KIND = {"rescore": RESCORE_ALL, "rescore_city": RESCORE_CITY, "train": TRAIN_MODEL}

BEAT_SCHEDULE = {
    "nightly-rescore-all": {"task": NIGHTLY_RESCORE, "schedule": crontab(hour=3, minute=0)},
    "hourly-expire-matches": {"task": EXPIRE_MATCHES, "schedule": crontab(minute=17)},
}


RESTORE_SWEEP_S = 5


class QueueUnavailable(RuntimeError):
    """Redis (the broker) cannot be reached."""


def make_celery(settings: Settings) -> Celery:
    app = Celery("twinning", broker=settings.REDIS_URL, backend=None, set_as_current=False)
    timeout = settings.REDIS_TIMEOUT_S
    app.conf.update(
        task_acks_late=True,  # a task is acknowledged only when done: a worker that dies loses no job
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue="twinning",
        task_serializer="json",
        accept_content=["json"],
        broker_connection_timeout=timeout,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": settings.VISIBILITY_TIMEOUT_S,  # unacked tasks of a dead worker come back after this
            # Every worker sweeps for such tasks every 5 s (kombu's default is every 10 × 10 s), and a sweeper that
            # dies holding the sweep's mutex blocks the others for 30 s, not 5 minutes.
            "unacked_restore_interval": RESTORE_SWEEP_S,
            "unacked_restore_throttle": 1,
            "unacked_mutex_expire": 30,
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
        },
        worker_hijack_root_logger=False,
        timezone="UTC",
        beat_schedule=BEAT_SCHEDULE,
    )
    return app


def ping(url: str, timeout: float) -> None:
    """Raise :class:`QueueUnavailable` unless Redis answers within ``timeout`` seconds."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as e:  # redis raises several connection/timeout types
        raise QueueUnavailable(f"Redis at {redact(url)} is unreachable: {type(e).__name__}") from e


def send(app: Celery, name: str, args: list[Any], timeout: float) -> None:
    """Publish a task by name without retrying for ever; raise QueueUnavailable on failure."""
    try:
        app.send_task(name, args=args, retry=False, connect_timeout=timeout)
    except Exception as e:
        raise QueueUnavailable(f"could not enqueue {name}: {type(e).__name__}: {e}") from e


def redact(url: str) -> str:
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
