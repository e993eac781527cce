"""Rendering a page: the templates, the served site, who is asking, and the CSRF cookie.

Below both the pages and the error handlers, which render pages too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from scoring.leaderboard import utc_now
from scoring.teams import Identity
from xrd_bravais.web import security, views
from xrd_bravais.web.site import Site

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def site_of(request: Request) -> Site:
    """The served competition."""
    site: Site = request.app.state.site
    return site


def who(request: Request) -> Identity | None:
    """The logged-in team or admin, from the session cookie."""
    return site_of(request).from_session(request.cookies.get(security.SESSION_COOKIE))


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page, with the CSRF cookie set on a first visit and its form token in the context."""
    site = site_of(request)
    cookie = request.cookies.get(security.CSRF_COOKIE)
    fresh = cookie is None
    cookie = cookie or security.new_csrf_cookie()
    board = site.board()
    identity = context.pop("identity", None) or who(request)
    response = templates.TemplateResponse(request, template, {
        "site": site, "identity": identity, "csrf": security.csrf_token(site.secret, cookie),
        "rules": views.rules_view(board.rules, utc_now()), "tracks": site.task.track_names,
        **context,
    }, status_code=status)  # fmt: skip
    if fresh:
        response.set_cookie(security.CSRF_COOKIE, cookie, httponly=True, samesite="strict",
                            secure=site.secure_cookies)  # fmt: skip
    return response
