"""Console pages."""

from __future__ import annotations

from flask import Blueprint

from . import csrf

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="../templates")


@bp.before_request
def _csrf() -> None:
    csrf.protect()
