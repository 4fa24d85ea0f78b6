"""Hardening of every response and of the session cookie, and the trusted-proxy setting.

* Security headers on every response: a Content-Security-Policy that the console (vendored htmx, no inline script;
  inline ``style`` attributes and htmx's indicator style need ``style-src 'unsafe-inline'``) satisfies — Swagger UI,
  which boots from an inline script, gets its own policy on its own pages —, ``X-Content-Type-Options: nosniff``,
  ``X-Frame-Options: DENY``, ``Referrer-Policy``, and HSTS when the request came over HTTPS.
* The session cookie: HttpOnly, ``SameSite=Lax`` (set, not ``setdefault``: Flask's defaults already hold the key),
  ``Secure`` with ``TWINNING_COOKIE_SECURE=1``.
* ``TWINNING_TRUSTED_PROXIES=n``: the app sits behind ``n`` reverse proxies, so werkzeug's ``ProxyFix`` takes the
  client address (the login rate limit's key), scheme and host from their ``X-Forwarded-*`` headers. With 0 (the
  default) those headers are ignored: a client cannot forge its address.
"""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# Swagger UI (/api/v1/swagger) starts from an inline script of flask-openapi3-swagger's page.
CSP_SWAGGER = CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'")
HSTS = "max-age=31536000; includeSubDomains"


def init_app(app: Flask, *, trusted_proxies: int, cookie_secure: bool) -> None:
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_SECURE"] = cookie_secure
    if trusted_proxies > 0:
        n = trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)  # type: ignore[method-assign]

    @app.after_request
    def _security_headers(resp: Response) -> Response:
        # Each header unless the response set its own (as ``setdefault``, in one pass over the headers: werkzeug's
        # setdefault finds a missing header by raising and catching two exceptions, five times per response).
        present = {key.lower() for key in resp.headers.keys()}  # noqa: SIM118 (iterating Headers gives pairs)
        swagger = request.path.startswith("/api/v1/swagger")
        for key, value in (
            ("Content-Security-Policy", CSP_SWAGGER if swagger else CSP),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "strict-origin-when-cross-origin"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
        ):
            if key.lower() not in present:
                resp.headers.add(key, value)
        if request.is_secure and "strict-transport-security" not in present:
            resp.headers.add("Strict-Transport-Security", HSTS)
        return resp
