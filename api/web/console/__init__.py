"""The web console: server-rendered Jinja pages with htmx (vendored, no build step, no CDN)."""

from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()


def init_console(app: Flask) -> None:
    """Register the console pages; CSRF is checked on the console's forms only (the JSON API uses tokens)."""
    from api.web.console.conferences import bp as conference_bp
    from api.web.console.views import bp

    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    csrf.init_app(app)
    app.register_blueprint(bp)
    app.register_blueprint(conference_bp)
