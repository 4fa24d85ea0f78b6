"""Console pages: log in, the city's profile editor, suggestions (chart, map, propose), matches and the review
queue, a match's page with its history, and re-scoring jobs with a live progress bar.

Plain server-rendered forms that work without JavaScript; htmx (vendored) adds in-place decisions in the queue
and the live progress bar. Every POST carries a CSRF token.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf.csrf import CSRFError
from markupsafe import Markup
from pydantic import ValidationError

from api.data import crud
from api.data import matches as matches_data
from api.data.models import Match
from api.domain import accounts, workflow
from api.errors import Forbidden, NotFound, TwinningError
from api.schemas import ProfileIn, SuggestionQuery
from api.web import auth
from api.web.console import csrf
from api.web.context import db, services
from api.web.routes.jobs import job_public
from matcher.sectors import SECTORS, label

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="../templates")
F = TypeVar("F", bound=Callable[..., Any])
LAND_PATH = (Path(__file__).resolve().parent.parent / "templates" / "console" / "_land_path.txt").read_text().strip()
STATUS_LABELS = {
    "proposed": "Proposed",
    "under_review": "Under review",
    "accepted": "Accepted — awaiting partner",
    "rejected": "Rejected",
    "confirmed": "Confirmed — partnership",
    "declined": "Declined by partner",
    "withdrawn": "Withdrawn",
    "expired": "Expired",
}
ACTION_LABELS = {
    "review": "Start review",
    "accept": "Accept",
    "reject": "Reject",
    "confirm": "Confirm partnership",
    "decline": "Decline",
    "withdraw": "Withdraw proposal",
}
COMPONENT_LABELS = {
    "interest": "Shared interests",
    "complementarity": "Complementarity",
    "reciprocity": "Reciprocity",
    "size": "Similar size",
    "context": "Context",
    "preference": "Preferences",
    "likelihood": "Partnership likelihood",
}


@bp.before_request
def _csrf() -> None:
    csrf.protect()


@bp.errorhandler(CSRFError)
def _csrf_error(e: CSRFError) -> Response:
    return _error(400, "This form has expired or did not come from this site. Go back, reload the page and try again.")


@bp.app_template_global()
def console_nav() -> dict[str, Any]:
    return {"user": auth.console_user() if request.blueprint == "console" else None}


@bp.app_template_filter("status_label")
def _status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status)


@bp.app_template_filter("sector_label")
def _sector_label(key: str) -> str:
    try:
        return label(key)
    except KeyError:
        return key


@bp.app_template_filter("component_label")
def _component_label(name: str) -> str:
    return COMPONENT_LABELS.get(name, name.replace("_", " ").capitalize())


def _page(template: str, status: int = 200, **ctx: Any) -> Response:
    ctx.setdefault("user", auth.console_user())
    ctx.setdefault("status_labels", STATUS_LABELS)
    ctx.setdefault("action_labels", ACTION_LABELS)
    resp = make_response(render_template(f"console/{template}", **ctx), status)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _error(status: int, message: str) -> Response:
    return _page("error.html", status, status_code=status, message=message)


def login_required(view: F) -> F:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        user = auth.console_user()
        if user is None:
            return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
        g.user = user
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/console") and not urlsplit(target).netloc:
        return target
    return url_for("console.home")


def _city(city_id: int) -> Any:
    try:
        return crud.get_city(db(), city_id=city_id)
    except NotFound:
        return None


# ---------------------------------------------------------------- log in / out
@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error = None
    status = 200
    if request.method == "POST":
        settings = services().settings
        result = accounts.check_login(
            db(),
            request.form.get("username", ""),
            request.form.get("password", ""),
            request.remote_addr or "-",
            max_failures=settings.LOGIN_MAX_FAILURES,
            window_s=settings.LOGIN_WINDOW_S,
        )
        if result.limited:
            minutes = max(1, result.retry_after // 60)
            error, status = f"Too many failed attempts. Try again in {minutes} minutes.", 429
        elif result.user is None:
            error, status = "Wrong user name or password.", 401
        else:
            auth.login_session(result.user)
            return redirect(_safe_next(request.args.get("next")))
    resp = _page("login.html", status, error=error, user=None, username=request.form.get("username", ""))
    if status == 429:
        resp.headers["Retry-After"] = str(services().settings.LOGIN_WINDOW_S)
    return resp


@bp.post("/logout")
def logout() -> Any:
    from flask import session

    session.clear()
    flash("You are logged out.")
    return redirect(url_for("console.login"))


@bp.get("/")
@login_required
def home() -> Any:
    user: auth.Principal = g.user
    if user.role == "official" and user.cities:
        return redirect(url_for("console.suggestions", city_id=user.cities[0]))
    return redirect(url_for("console.matches", queue="1") if user.role == "coordinator" else url_for("console.matches"))


# ---------------------------------------------------------------- profile editor
def _profile_form(profile: Any) -> dict[str, Any]:
    if profile is None:
        return {
            "offers": {},
            "seeks": {},
            "description": "",
            "pref_countries": "",
            "pref_min_population": "",
            "pref_max_population": "",
            "pref_languages": "",
            "seeking_partners": True,
            "contact_name": "",
            "contact_email": "",
        }
    return {
        "offers": dict(profile.offers or {}),
        "seeks": dict(profile.seeks or {}),
        "description": profile.description or "",
        "pref_countries": ", ".join(profile.pref_countries or []),
        "pref_min_population": profile.pref_min_population if profile.pref_min_population is not None else "",
        "pref_max_population": profile.pref_max_population if profile.pref_max_population is not None else "",
        "pref_languages": ", ".join(profile.pref_languages or []),
        "seeking_partners": profile.seeking_partners,
        "contact_name": profile.contact_name or "",
        "contact_email": profile.contact_email or "",
    }


def _parse_profile_form(form: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The form's raw values (to show again) and the data for :class:`ProfileIn`."""
    raw: dict[str, Any] = {"offers": {}, "seeks": {}}
    data: dict[str, Any] = {"offers": {}, "seeks": {}}
    for key, _lab, _desc in SECTORS:
        for side in ("offers", "seeks"):
            value = form.get(f"{side}-{key}", "").strip()
            raw[side][key] = value
            if value:
                try:
                    num = float(value)
                except ValueError:
                    data[side][key] = value  # pydantic reports it
                    continue
                if num != 0:
                    data[side][key] = num
    for name in ("description", "pref_countries", "pref_languages", "contact_name", "contact_email"):
        raw[name] = form.get(name, "").strip()
    for name in ("pref_min_population", "pref_max_population"):
        raw[name] = form.get(name, "").strip()
        if raw[name]:  # a number when it is one (the body model is strict); pydantic reports anything else
            data[name] = int(raw[name]) if raw[name].isdigit() and len(raw[name]) < 19 else raw[name]
    raw["seeking_partners"] = form.get("seeking_partners") == "on"
    data["description"] = raw["description"]
    data["pref_countries"] = [c.strip().upper() for c in raw["pref_countries"].split(",") if c.strip()]
    data["pref_languages"] = [c.strip().lower() for c in raw["pref_languages"].split(",") if c.strip()]
    data["seeking_partners"] = raw["seeking_partners"]
    data["contact_name"] = raw["contact_name"] or None
    data["contact_email"] = raw["contact_email"] or None
    return raw, data


@bp.route("/cities/<int:city_id>/profile", methods=["GET", "POST"])
@login_required
def profile(city_id: int) -> Any:
    user: auth.Principal = g.user
    city = _city(city_id)
    if city is None:
        return _error(404, f"There is no city {city_id}.")
    if not user.can_edit_city(city_id):
        return _error(403, f"You may not edit the profile of {city.name}.")
    session = db()
    errors: dict[str, str] = {}
    if request.method == "POST":
        form, data = _parse_profile_form(request.form)
        try:
            body = ProfileIn(**data)
            unknown = crud.missing_country_codes(session, codes=body.pref_countries)
            if unknown:
                errors["pref_countries"] = f"Unknown country codes: {', '.join(unknown)}"
        except ValidationError as e:
            for err in e.errors(include_url=False):
                loc = [str(p) for p in err.get("loc", ())]
                field = f"{loc[0]}-{loc[1]}" if len(loc) > 1 and loc[0] in ("offers", "seeks") else loc[0]
                errors[field if loc else "form"] = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if not errors:
            _profile, job_id = services().save_profile(session, city=city, data=body)
            flash(
                Markup("Profile saved. Suggestions are being recomputed")
                + (
                    Markup(' (<a href="{}">job</a>).').format(url_for("console.job", job_id=job_id))
                    if job_id
                    else Markup(".")
                ),
            )
            return redirect(url_for("console.profile", city_id=city.id))
        status = 422
    else:
        form = _profile_form(crud.get_profile(session, city_id=city.id))
        status = 200
    return _page("profile.html", status, city=city, form=form, errors=errors, sectors=SECTORS)


# ---------------------------------------------------------------- suggestions, map, propose
def _open_matches(city_id: int) -> dict[int, Match]:
    return workflow.open_matches(db(), city_id)


@bp.get("/cities/<int:city_id>/suggestions")
@login_required
def suggestions(city_id: int) -> Any:
    user: auth.Principal = g.user
    city = _city(city_id)
    if city is None:
        return _error(404, f"There is no city {city_id}.")
    k = min(max(request.args.get("k", 10, type=int) or 10, 1), 30)
    result = services().suggestions.answer(db, city_id=city_id, query=SuggestionQuery(k=k), city=city).body
    items = result["data"]
    markers = [
        {
            "n": i,
            "x": round(s["city"]["longitude"] + 180, 2),
            "y": round(90 - max(s["city"]["latitude"], -60), 2),
            "name": s["city"]["name"],
            "country": s["city"]["country_name"] or s["city"]["country"],
            "score": s["score"],
        }
        for i, s in enumerate(items, start=1)
    ]
    home = {"x": round(city.longitude + 180, 2), "y": round(90 - max(city.latitude, -60), 2), "name": city.name}
    waiting: list[dict[str, Any]] = []
    if user.can_edit_city(city_id):  # proposals accepted by a coordinator that await this city's answer
        waiting = _items(matches_data.matches_to_answer(db(), partner_id=city_id), user)
    return _page(
        "suggestions.html",
        city=city,
        items=items,
        score_set=result["score_set"],
        notes=result["notes"],
        markers=markers,
        home=home,
        land_path=LAND_PATH,
        can_propose=user.can_edit_city(city_id),
        open_matches=_open_matches(city_id),
        waiting=waiting,
        sectors=SECTORS,
        k=k,
    )


@bp.post("/matches")
@login_required
def propose() -> Any:
    user: auth.Principal = g.user
    try:
        city_id = int(request.form.get("city_id", ""))
        partner_id = int(request.form.get("partner_id", ""))
    except ValueError:
        return _error(422, "Choose a city and a partner.")
    valid = {k for k, _l, _d in SECTORS}
    sectors = [s for s in request.form.getlist("sectors") if s in valid]
    try:
        m = workflow.propose(
            db(),
            user,
            services().settings,
            city_id=city_id,
            partner_id=partner_id,
            message=request.form.get("message", "").strip()[:5000],
            sectors=sectors,
        )
    except Forbidden as e:
        return _error(403, e.message)
    except TwinningError as e:
        for cid in (city_id, partner_id):
            if _city(cid) is None:
                return _error(404, f"There is no city {cid}.")
        flash(e.message, "error")
        return redirect(url_for("console.suggestions", city_id=city_id))
    flash("Your proposal was sent to the coordinators.")
    return redirect(url_for("console.match", match_id=m.id))


# ---------------------------------------------------------------- matches, the review queue, one match
@bp.get("/matches")
@login_required
def matches() -> Any:
    user: auth.Principal = g.user
    session = db()
    workflow.expire_due(session, services().settings)
    queue = request.args.get("queue") == "1"
    status = request.args.get("status") or None
    country = (request.args.get("country") or "").strip().upper() or None
    if status not in (None, *workflow.STATUSES):
        status = None
    if country is not None and (len(country) != 2 or not country.isalpha()):
        country = None
    page = max(1, request.args.get("page", 1, type=int) or 1)
    rows, count = workflow.list_matches(
        session, user, status=[status] if status else None, country=country, queue=queue, page=page, per_page=25
    )
    items = _items(rows, user)
    return _page(
        "matches.html",
        items=items,
        count=count,
        queue=queue,
        status_filter=status or "",
        country=country or "",
        page=page,
        pages=max(1, (count + 24) // 25),
        statuses=workflow.STATUSES,
    )


def _items(rows: list[Match], user: auth.Principal) -> list[dict[str, Any]]:
    from api.web.routes.matches import match_public

    return match_public(rows, user)


@bp.get("/matches/<int:match_id>")
@login_required
def match(match_id: int) -> Any:
    user: auth.Principal = g.user
    session = db()
    try:
        m = workflow.get_match(session, match_id)
    except NotFound:
        return _error(404, f"There is no match {match_id}.")
    workflow.expire_due(session, services().settings, [match_id])
    session.refresh(m)
    if not workflow.may_see(user, m, workflow.pair_countries(session, m)):
        return _error(403, "You may not see this match.")
    from api.web.routes.matches import match_public

    item = match_public([m], user, with_history=True)[0]
    return _page("match.html", m=item)


@bp.post("/matches/<int:match_id>/decide")
@login_required
def decide(match_id: int) -> Any:
    user: auth.Principal = g.user
    action = request.form.get("action", "")
    note = request.form.get("note", "").strip()[:5000]
    version = request.form.get("expected_version", type=int)
    htmx = request.headers.get("HX-Request") == "true"
    if action not in workflow.ACTIONS:
        return _error(422, "Unknown action.")
    error = None
    try:
        m, _changed = workflow.decide(db(), user, services().settings, match_id, action, note, version)
        if m.status == "confirmed":
            services().matchers.invalidate()
    except NotFound as e:
        return _error(404, e.message)
    except TwinningError as e:
        error = e.message
        m = workflow.get_match(db(), match_id)
    if htmx and request.form.get("fragment") == "row":
        from api.web.routes.matches import match_public

        item = match_public([m], user)[0]
        return _page("_match_row.html", 409 if error else 200, it=item, row_error=error, queue=True)
    if error:
        flash(error, "error")
    else:
        flash(f"Done: {ACTION_LABELS[action].lower()}.")
    return redirect(url_for("console.match", match_id=match_id))


# ---------------------------------------------------------------- jobs
@bp.route("/jobs", methods=["GET", "POST"])
@login_required
def jobs() -> Any:
    user: auth.Principal = g.user
    if user.role not in ("admin", "coordinator"):
        return _error(403, "Only coordinators and admins run re-scoring jobs.")
    session = db()
    if request.method == "POST":
        scope = request.form.get("scope", "active")
        scope = scope if scope in ("active", "all") else "active"
        city_ids: list[int] | None = None
        names = [c.strip() for c in request.form.get("cities", "").split(",") if c.strip()]
        if names:
            try:
                city_ids = [crud.find_city(session, text=n).id for n in names[:1000]]
            except NotFound as e:
                flash(f"Could not start the job: {e}", "error")
                return redirect(url_for("console.jobs"))
        try:
            job = services().submit(session, kind="rescore", city_ids=city_ids, scope=scope)
        except Exception as e:  # the queue is down: say so on the page
            flash(f"Could not start the job: {e}", "error")
            return redirect(url_for("console.jobs"))
        return redirect(url_for("console.job", job_id=job.id))
    return _page("jobs.html", jobs=[job_public(j) for j in crud.recent_jobs(session, limit=15)])


def _job_or_none(job_id: str) -> dict[str, Any] | None:
    try:
        job = crud.get_job(db(), job_id=job_id)
    except NotFound:
        return None
    db().refresh(job)
    return job_public(job)


@bp.get("/jobs/<job_id>")
@login_required
def job(job_id: str) -> Any:
    data = _job_or_none(job_id[:36])
    if data is None:
        return _error(404, f"There is no job {job_id}.")
    return _page("job.html", job=data)


@bp.get("/jobs/<job_id>/progress")
@login_required
def job_progress(job_id: str) -> Any:
    data = _job_or_none(job_id[:36])
    if data is None:
        return _error(404, f"There is no job {job_id}.")
    return _page("_job_progress.html", job=data)
