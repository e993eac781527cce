"""The HTML pages: server-rendered, usable without JavaScript, every form CSRF-checked."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from scoring.leaderboard import LeaderboardError, QuotaExceeded
from scoring.submission import SubmissionError
from scoring.teams import SESSION_LIFETIME, Identity, end_session, open_session
from xrd_bravais.contract.tasks import Track
from xrd_bravais.web import security, views
from xrd_bravais.web.errors import PageError
from xrd_bravais.web.rendering import render, site_of, who
from xrd_bravais.web.site import Site

log = logging.getLogger("xrd_bravais.website")
router = APIRouter(include_in_schema=False)


def track_of(site: Site, name: str | None) -> Track:
    """The named track (default: the first), or a 404 page."""
    try:
        return site.task.track(name or None)
    except ValueError as err:
        raise PageError(404, str(err)) from None


def check_csrf(request: Request, field: str | None) -> None:
    """Refuse a form whose CSRF token does not match this browser's cookie."""
    if not security.csrf_ok(site_of(request).secret, request.cookies.get(security.CSRF_COOKIE),
                            field):  # fmt: skip
        raise PageError(403, "this form has expired or did not come from this site; "
                             "reload the page and try again")  # fmt: skip


def require_team(request: Request) -> Identity:
    """The logged-in team; others are sent to the login page."""
    identity = who(request)
    if identity is None or identity.team is None:
        raise PageError(401, "log in with your team token to see this page")
    return identity


def require_admin(request: Request) -> Identity:
    """The logged-in organiser."""
    identity = who(request)
    if identity is None or not identity.is_admin:
        raise PageError(403, "this page is for the organisers (log in with the admin token)")
    return identity


# ---------------------------------------------------------------------------- public pages
@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    """The start page: what to do, in order."""
    return render(request, "home.html", baselines=views.baseline_results(site_of(request)))


@router.get("/leaderboard", response_class=HTMLResponse)
def leaderboard(request: Request, track: str | None = None) -> HTMLResponse:
    """The public leaderboard of a track (and the late table after close)."""
    site = site_of(request)
    spec = track_of(site, track)
    closed = site.board().is_closed()
    return render(request, "leaderboard.html", track=spec.name, closed=closed,
                  table=views.public_table(site, spec), chart=views.progress_chart(site, spec),
                  late=views.late_table(site, spec) if closed else None)  # fmt: skip


@router.get("/leaderboard/private", response_class=HTMLResponse)
def private_leaderboard(request: Request, track: str | None = None) -> HTMLResponse:
    """The private leaderboard with the shake-up: after close only."""
    site = site_of(request)
    spec = track_of(site, track)
    try:
        tables = views.private_tables(site, spec)
    except LeaderboardError:
        raise PageError(403, "the private leaderboard stays hidden until the competition "
                             "closes") from None  # fmt: skip
    return render(request, "private.html", track=spec.name, tables=tables,
                  late=views.late_table(site, spec))  # fmt: skip


@router.get("/data", response_class=HTMLResponse)
def data(request: Request) -> HTMLResponse:
    """The data card (``public/DATA.md``) with the build's pictures."""
    site = site_of(request)
    return render(request, "data.html", body=views.data_card(site),
                  figures=views.data_figures(site),
                  waits=views.measured_example_waits(site))  # fmt: skip


@router.get("/data/{name}.png")
def data_figure(request: Request, name: str) -> FileResponse:
    """A picture of the data: the overview, and after the close a real measurement."""
    path = views.data_figures(site_of(request)).get(name)
    if path is None:
        raise PageError(404, "no such picture (a real measurement is shown after the close)")
    return FileResponse(path, media_type="image/png")


@router.get("/rules", response_class=HTMLResponse)
def rules(request: Request) -> HTMLResponse:
    """The rules in force: quotas, picks, ranking, deadline."""
    return render(request, "rules.html")


@router.get("/baselines", response_class=HTMLResponse)
def baselines(request: Request) -> HTMLResponse:
    """Every baseline's CV and Public figures, per track."""
    site = site_of(request)
    results = views.baseline_results(site)
    figures = {track: views.baseline_figure(site, track) for track in results}
    return render(request, "baselines.html", results=results, figures=figures)


@router.get("/baselines/{track}/", response_class=HTMLResponse)
def baseline_report(request: Request, track: str) -> HTMLResponse:
    """A track's baselines report."""
    site = site_of(request)
    spec = track_of(site, track)
    body = views.baseline_report(site, spec.name)
    if body is None:
        raise PageError(404, f"no baselines have been run on the {spec.name} track")
    return render(request, "document.html", title=f"Baselines: {spec.name} track", body=body)


@router.get("/baselines/{track}/files/{relative:path}")
def baseline_file(request: Request, track: str, relative: str) -> FileResponse:
    """A plot or table of the baselines (never a model file)."""
    path = views.baseline_file(site_of(request), track, relative)
    if path is None:
        raise PageError(404, "no such plot or table")
    return FileResponse(path)


@router.get("/baselines/{track}/{name}", response_class=HTMLResponse)
def baseline_page(request: Request, track: str, name: str) -> HTMLResponse:
    """One baseline: its figures, its section of the report, its plots."""
    site = site_of(request)
    spec = track_of(site, track)
    results = {r["name"]: r for r in views.baseline_results(site).get(spec.name, [])}
    if name not in results:
        raise PageError(404, f"no baseline called {name!r} on the {spec.name} track")
    return render(request, "baseline.html", track=spec.name, result=results[name],
                  body=views.baseline_section(site, spec.name, name))  # fmt: skip


@router.get("/starter-kit.zip")
def starter_kit(request: Request) -> FileResponse:
    """The starter-kit zip (a kit the leak check refuses: its reason, to the organisers only)."""
    from starter_kit.kit import KitLeakError

    site = site_of(request)
    try:
        path = site.starter_kit()
    except KitLeakError as err:
        log.error("the starter kit was refused by the leak check: %s", err)
        identity = who(request)
        if identity is not None and identity.is_admin:
            raise PageError(503, f"the starter kit was refused by its leak check: {err}") from None
        raise PageError(503, "the starter kit is not available right now; the organisers "
                             "can see why on this page once logged in") from None  # fmt: skip
    return FileResponse(path, filename=f"{site.name}-starter-kit.zip",
                        media_type="application/zip")  # fmt: skip


@router.get("/api", response_class=HTMLResponse)
def api_page(request: Request) -> HTMLResponse:
    """The JSON API, described from the app's own OpenAPI schema."""
    schema = request.app.openapi()
    endpoints = [
        {"method": method.upper(), "path": path, "summary": op.get("summary", ""),
         "description": op.get("description", "")}
        for path, ops in schema["paths"].items() for method, op in ops.items()
    ]  # fmt: skip
    return render(request, "api.html", endpoints=endpoints,
                  base=str(request.base_url).rstrip("/"))  # fmt: skip


# ---------------------------------------------------------------------------- login
@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "") -> HTMLResponse:
    """The token login form (``next``: the page to return to)."""
    return render(request, "login.html", next=_local_path(next))


def _local_path(path: str) -> str:
    """``path`` if it is a page of this site, else empty (no open redirect)."""
    return path if path.startswith("/") and not path.startswith(("//", "/\\")) else ""


@router.post("/login")
def login(
    request: Request,
    token: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Check a team or admin token and start a session."""
    check_csrf(request, csrf_token)
    site = site_of(request)
    identity = site.from_token(token)
    if identity is None:
        return render(request, "login.html", status=401, next=_local_path(next),
                      error="That token is not valid (check it, or ask the organisers for "
                            "a new one).")  # fmt: skip
    session = open_session(site.board(), identity)
    home = "/admin" if identity.is_admin else "/team"
    response = RedirectResponse(_local_path(next) or home, status_code=303)
    response.set_cookie(security.SESSION_COOKIE, session, httponly=True, samesite="lax",
                        secure=site.secure_cookies,
                        max_age=int(SESSION_LIFETIME.total_seconds()))  # fmt: skip
    return response


@router.post("/logout")
def logout(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    """End the session."""
    check_csrf(request, csrf_token)
    session = request.cookies.get(security.SESSION_COOKIE)
    if session:
        end_session(site_of(request).board(), session)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(security.SESSION_COOKIE)
    return response


# ---------------------------------------------------------------------------- team pages
def _team_page(request: Request, identity: Identity, spec: Track, status: int = 200,
               **extra: Any) -> HTMLResponse:  # fmt: skip
    board = site_of(request).board()
    assert identity.team is not None
    return render(
        request, "team.html", status=status, identity=identity, track=spec.name,
        quota=views.quota_view(board.quota(identity.team, spec)),
        history=views.history_rows(board, identity.team, spec),
        chart=views.team_chart(board, identity.team, spec), **extra,
    )  # fmt: skip


def _team_form(request: Request, csrf_token: str, track: str) -> tuple[Identity, Site, Track]:
    """A team form's checks: its CSRF token, the login, the track."""
    check_csrf(request, csrf_token)
    identity = require_team(request)
    site = site_of(request)
    return identity, site, track_of(site, track)


@router.get("/team", response_class=HTMLResponse)
def team(request: Request, track: str | None = None) -> HTMLResponse:
    """The team page: quota, upload form, submissions and final picks."""
    identity = require_team(request)
    return _team_page(request, identity, track_of(site_of(request), track))


@router.post("/team/submit", response_class=HTMLResponse)
def submit(
    request: Request,
    file: Annotated[UploadFile | None, File()] = None,
    track: Annotated[str, Form()] = "",
    message: Annotated[str, Form(max_length=500)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """Score an upload: its Public figures, or every problem in the file."""
    identity, site, spec = _team_form(request, csrf_token, track)
    assert identity.team is not None
    if file is None or not file.filename:
        return _team_page(request, identity, spec, status=400,
                          error=["choose a CSV file to upload"])  # fmt: skip
    content = file.file.read()
    board = site.board()
    try:
        receipt = board.submit(content, identity.team, spec, message,
                               answer_key=site.answer_key())  # fmt: skip
    except QuotaExceeded as err:
        return _team_page(request, identity, spec, status=429, error=[str(err)])
    except SubmissionError as err:  # too large: neither stored nor counted
        return _team_page(request, identity, spec, status=413, error=list(err.problems))
    except LeaderboardError as err:
        return _team_page(request, identity, spec, status=409, error=[str(err)])
    item = board.team_submission(identity.team, receipt.submission_id)
    return render(request, "submission.html", status=201 if receipt.valid else 422,
                  identity=identity, just_sent=True, quota=views.quota_view(
                      board.quota(identity.team, spec)),
                  item=views.submission_view(item, spec, receipt.notices))  # fmt: skip


@router.get("/team/submissions/{submission_id}", response_class=HTMLResponse)
def submission(request: Request, submission_id: int) -> HTMLResponse:
    """One of the team's submissions (Public scores only)."""
    identity = require_team(request)
    site = site_of(request)
    assert identity.team is not None
    try:
        item = site.board().team_submission(identity.team, submission_id)
    except LeaderboardError as err:
        raise PageError(404, str(err)) from None
    return render(request, "submission.html", identity=identity, just_sent=False,
                  item=views.submission_view(item, site.task.track(item.track)))  # fmt: skip


@router.post("/team/select", response_class=HTMLResponse)
def select(
    request: Request,
    submission_id: Annotated[list[int] | None, Form()] = None,
    track: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Save the team's final picks for the private leaderboard."""
    identity, site, spec = _team_form(request, csrf_token, track)
    assert identity.team is not None
    try:
        site.board().select(identity.team, submission_id or [], spec)
    except LeaderboardError as err:
        return _team_page(request, identity, spec, status=409, error=[str(err)])
    return RedirectResponse(f"/team?track={spec.name}&saved=1", status_code=303)


# ---------------------------------------------------------------------------- admin
@router.get("/admin", response_class=HTMLResponse)
def admin(request: Request) -> HTMLResponse:
    """The organisers' page: close, rescore, download, teams."""
    identity = require_admin(request)
    from scoring.teams import list_teams

    teams = list_teams(site_of(request).board()).to_dict("records")
    return render(request, "admin.html", identity=identity, teams=teams)


@router.get("/admin/integrity", response_class=HTMLResponse)
def admin_integrity(request: Request, track: str | None = None) -> HTMLResponse:
    """Pairs of teams whose wrong answers agree beyond chance (organisers only)."""
    identity = require_admin(request)
    site = site_of(request)
    spec = track_of(site, track)
    report = site.board().integrity(spec, answer_key=site.answer_key())
    return render(request, "integrity.html", identity=identity, track=spec.name,
                  **views.integrity_view(report))  # fmt: skip


@router.post("/admin/close", response_class=HTMLResponse)
def admin_close(
    request: Request,
    csrf_token: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Close the competition now, once the organiser has confirmed it."""
    check_csrf(request, csrf_token)
    identity = require_admin(request)
    site = site_of(request)
    if confirm != "close":
        from scoring.teams import list_teams

        return render(request, "admin.html", status=400, identity=identity,
                      teams=list_teams(site.board()).to_dict("records"),
                      error="Nothing was closed: tick the box to confirm. Closing is final: "
                            "the private leaderboard appears and later submissions are "
                            "never ranked.")  # fmt: skip
    try:
        site.board().close()
    except LeaderboardError as err:
        raise PageError(409, str(err)) from None
    log.info("competition closed from the admin page")
    return RedirectResponse("/admin?closed=1", status_code=303)


@router.post("/admin/rescore", response_class=HTMLResponse)
def admin_rescore(request: Request, csrf_token: Annotated[str, Form()] = "") -> HTMLResponse:
    """Grade every stored submission again with the current answer key."""
    check_csrf(request, csrf_token)
    identity = require_admin(request)
    site = site_of(request)
    changes = site.board().rescore(site.reload_key())
    from scoring.teams import list_teams

    return render(request, "admin.html", identity=identity, rescored=len(changes),
                  teams=list_teams(site.board()).to_dict("records"))  # fmt: skip


@router.get("/admin/export.zip")
def admin_export(request: Request) -> Response:
    """Download the store and every submission."""
    require_admin(request)
    from xrd_bravais.web.export import export_zip

    site = site_of(request)
    return Response(export_zip(site), media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{site.name}-export.zip"'})  # fmt: skip
