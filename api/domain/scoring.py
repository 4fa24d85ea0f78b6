"""Builds the matcher from the database and keeps it cached until the data or the model changes."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Engine
from sqlmodel import Session

from api.config import Settings
from api.data import crud
from api.data.models import Profile
from matcher.features import CityTable, CountryTable, ProfileData

if TYPE_CHECKING:  # pragma: no cover
    from matcher.model import TwinningMatcher  # imported where a matcher is built: it brings scikit-learn

log = logging.getLogger(__name__)
PROFILE_MODEL_VERSION = "profile-v1"


@dataclass(frozen=True)
class Built:
    matcher: TwinningMatcher
    table: CityTable
    model_version: str
    fingerprint: tuple[Any, ...]


_LOADED: dict[tuple[str, float, bool], Any] = {}  # the last artifact loaded, by path and modification time
_LOAD_LOCK = threading.Lock()


def load_likelihood(path: Path, compiled: bool = True) -> Any | None:
    """The saved partnership-likelihood model, or None when none has been trained yet (or it cannot be loaded).

    With ``compiled`` (``TWINNING_COMPILED_TREES``), its re-ranker scores through the trees compiled to machine
    code (:mod:`api.domain.compiled_trees`; built once per artifact into ``compiled/`` beside it), when they can
    be built and agree with scikit-learn. The last artifact loaded is kept by path, modification time and that
    choice, so the first start's check that the model loads and the matcher's first build share one load (a new
    artifact is written by an atomic rename, which changes the time)."""
    try:
        key = (str(path.resolve()), path.stat().st_mtime, compiled)
    except OSError:
        return None
    from matcher.likelihood import PartnershipLikelihood

    with _LOAD_LOCK:
        if key in _LOADED:
            return _LOADED[key]
        try:
            model = PartnershipLikelihood.load(path)
        except Exception:  # a corrupt or incompatible artifact must not take the service down
            log.exception("could not load the likelihood model at %s; scoring without it", path)
            model = None
        if model is not None and compiled:
            from api.domain.compiled_trees import compiled_predictor

            model.use_booster_predict(compiled_predictor(model.booster_, path.parent / "compiled"))
        _LOADED.clear()
        _LOADED[key] = model
        return model


def profile_data(p: Profile) -> ProfileData:
    return ProfileData(
        offers=dict(p.offers or {}),
        seeks=dict(p.seeks or {}),
        pref_countries=frozenset(p.pref_countries or ()),
        pref_min_population=p.pref_min_population,
        pref_max_population=p.pref_max_population,
        pref_languages=frozenset(p.pref_languages or ()),
        seeking_partners=p.seeking_partners,
    )


class MatcherService:
    """One per process. ``get()`` returns the matcher for the current data, rebuilding it when stale.

    The data's fingerprint has two parts: the gazetteer, partnerships, model and settings (a change rebuilds the
    matcher, seconds at 170k places) and the profiles (a change is applied in place: only the profiles edited
    since the last look are read and swapped into a copy of the matcher, milliseconds). So a profile edit in one
    worker costs every other worker a few milliseconds on its next request, not a rebuild."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self._lock = threading.Lock()
        self._built: Built | None = None
        self._building: tuple[tuple[Any, ...], Future[Built]] | None = None
        self.builds = 0  # whole rebuilds in this process, and profile updates applied in place (tests, logs)
        self.profile_updates = 0

    def fingerprint(self, session: Session) -> tuple[Any, ...]:
        """``(base, profiles)``: the base part forces a rebuild when it changes, the profile part an update."""
        path = self.settings.model_path()
        mtime = path.stat().st_mtime if path.exists() else None
        n_cities, cities_changed, n_profiles, profiles_changed, n_pairs, last_pair = crud.data_fingerprint(session)
        s = self.settings
        base = (n_cities, cities_changed, n_pairs, last_pair, mtime, s.LIKELIHOOD_WEIGHT, s.MAX_COUNTRY_SHARE)
        return (base, (n_profiles, profiles_changed))

    def get(self, session: Session | None = None) -> Built:
        """The matcher for the current data. A whole rebuild runs in a thread of its own that the caller waits for:
        a caller interrupted while waiting (a Celery task's soft time limit) does not lose the build, and the next
        caller finds it done or joins it."""
        own = session is None
        sess = session or Session(self.engine)
        try:
            fp = self.fingerprint(sess)
            built = self._built
            if built is not None and built.fingerprint == fp:
                return built
            if built is not None and built.fingerprint[0] == fp[0]:
                with self._lock:
                    current = self._built
                    if current is not None and current.fingerprint[0] == fp[0]:
                        if current.fingerprint != fp:
                            current = self._built = self._update_profiles(sess, current, fp)
                        return current
        finally:
            if own:
                sess.close()
        return self._rebuilt(fp).result()

    def warm(self) -> threading.Thread:
        """Build the matcher in the background (a worker process at start-up, so its first task does not wait)."""

        def run() -> None:
            try:
                self.get()
            except Exception:  # the database may be down: the first task builds it instead
                log.warning("could not build the matcher ahead of the first task", exc_info=True)

        thread = threading.Thread(target=run, name="matcher-warm-up", daemon=True)
        thread.start()
        return thread

    def _rebuilt(self, fp: tuple[Any, ...]) -> Future[Built]:
        """The build of ``fp``: the one running (single flight) or a new one in a daemon thread."""
        with self._lock:
            if self._building is not None and self._building[0] == fp:
                return self._building[1]
            future: Future[Built] = Future()
            self._building = (fp, future)

        def run() -> None:
            try:
                with Session(self.engine) as session:
                    built = self._build(session, fp)
                with self._lock:
                    self._built = built  # profile edits since fp are applied by the next get()
                future.set_result(built)
            except BaseException as e:  # handed to every waiter
                future.set_exception(e)
            finally:
                with self._lock:
                    if self._building is not None and self._building[1] is future:
                        self._building = None

        threading.Thread(target=run, name="matcher-build", daemon=True).start()
        return future

    def invalidate(self) -> None:
        self._built = None

    def _update_profiles(self, session: Session, built: Built, fp: tuple[Any, ...]) -> Built:
        """Apply the profiles changed since ``built`` was made (and drop deleted ones) to a copy of its matcher."""
        since = built.fingerprint[1][1]
        updates: dict[int, ProfileData | None] = {
            p.city_id: profile_data(p) for p in crud.profiles_changed_since(session, since=since)
        }
        table = built.table
        present = crud.profile_city_ids(session)
        for city_id in table.ids[table.has_profile].tolist():
            if city_id not in present:
                updates[int(city_id)] = None
        matcher = built.matcher.with_profiles(updates)
        self.profile_updates += 1
        log.debug("matcher updated in place: %d profiles", len(updates))
        return Built(matcher, matcher.table_, built.model_version, fp)

    def _build(self, session: Session, fp: tuple[Any, ...]) -> Built:
        from matcher.model import TwinningMatcher  # scikit-learn: loaded with the first matcher, not with the app

        cities = crud.cities_frame(session)
        profiles = {p.city_id: profile_data(p) for p in crud.all_profiles(session)}
        countries = CountryTable.from_records(crud.country_records(session))
        table = CityTable.build(cities, profiles, countries)
        pairs = crud.partnership_pairs(session)
        rows = np.array(
            [
                (table.row_of_id[a], table.row_of_id[b])
                for a, b in pairs
                if a in table.row_of_id and b in table.row_of_id
            ],
            np.int64,
        ).reshape(-1, 2)
        likelihood = load_likelihood(self.settings.model_path(), self.settings.COMPILED_TREES)
        weights = {"likelihood": self.settings.LIKELIHOOD_WEIGHT}
        matcher = TwinningMatcher(
            weights=weights, likelihood=likelihood, max_country_share=self.settings.MAX_COUNTRY_SHARE
        ).fit(table, rows)
        version = PROFILE_MODEL_VERSION
        if likelihood is not None:
            version += "+" + str(likelihood.metadata_.get("version", "likelihood"))
        log.info(
            "matcher built: %d cities, %d profiles, %d partnerships, %s", len(table), len(profiles), len(rows), version
        )
        self.builds += 1
        return Built(matcher, table, version, fp)
