"""The application factory: ``create_app(competition)`` for uvicorn or any ASGI server."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from xrd_bravais.web import api, errors, pages, security
from xrd_bravais.web.site import Site

UPLOAD_PATHS = frozenset({"/team/submit", "/api/v1/submissions"})


def create_app(
    competition: str | os.PathLike[str], *, kit: str | os.PathLike[str] | None = None,
    secure_cookies: bool = False,
) -> FastAPI:  # fmt: skip
    """The website of one built competition.

    Parameters
    ----------
    competition : path
        The built competition (its store is created if the grader never opened it).
    kit : path, optional
        The starter-kit zip to offer; default: built beside the store on first request.
    secure_cookies : bool
        Mark cookies ``Secure`` (when served behind HTTPS).

    Returns
    -------
    fastapi.FastAPI
        No interactive docs page (it would load scripts from a CDN): the schema is
        at ``/openapi.json`` and described at ``/api``.
    """
    site = Site(Path(competition), kit=Path(kit) if kit else None, secure_cookies=secure_cookies)
    app = FastAPI(
        title=f"xrd-bravais: {site.name}",
        summary="Submit powder-XRD lattice predictions and follow the leaderboard.",
        docs_url=None, redoc_url=None,
    )  # fmt: skip
    app.state.site = site
    app.include_router(api.router)
    app.include_router(pages.router)
    static = Path(__file__).parent / "static"
    app.mount("/static", StaticFiles(directory=static), name="static")
    errors.install(app)
    async def authorised(scope: security.Scope) -> bool:
        """Whether an upload comes from a team: its bearer token or its session cookie."""
        from starlette.concurrency import run_in_threadpool
        from starlette.requests import Request

        request = Request(scope)
        token = security.bearer_token(request.headers.get("authorization"))
        session = request.cookies.get(security.SESSION_COOKIE)
        identity = await run_in_threadpool(
            lambda: site.from_token(token) if token else site.from_session(session)
        )
        return identity is not None

    app.add_middleware(security.BodyLimit, paths=UPLOAD_PATHS,
                       limit=site.upload_limit + security.MULTIPART_SLACK,
                       authorised=authorised)  # fmt: skip

    @app.middleware("http")
    async def headers(request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        # Everything is served from here: no script, style or font from elsewhere.
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    return app


def app_from_environment() -> FastAPI:
    """For ``uvicorn --factory xrd_bravais.web.app:app_from_environment`` (several workers)."""
    kit = os.environ.get("XRD_BRAVAIS_KIT") or None
    secure = os.environ.get("XRD_BRAVAIS_SECURE_COOKIES") == "1"
    return create_app(os.environ["XRD_BRAVAIS_COMPETITION"], kit=kit, secure_cookies=secure)
