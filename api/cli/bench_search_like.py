"""The server of ``twinning bench search``'s comparison row: Twinning as deployed (the production entry point,
:mod:`api.web.wsgi`), with the city search replaced by the one before the name index, a ``LIKE '%q%'`` scan of the
cities' folded names (:func:`api.cli.bench_search._old_search`). ``gunicorn api.cli.bench_search_like:app``."""

from api.cli.bench_search import _old_search
from api.data import crud

crud.search_cities = _old_search  # the search service calls crud.search_cities
from api.web.wsgi import app  # noqa: E402 - after the replacement, as a gunicorn worker imports it

__all__ = ["app"]
