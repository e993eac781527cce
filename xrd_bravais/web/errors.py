"""Error pages and JSON errors: a clear sentence, the right status, never a traceback."""

from __future__ import annotations

import logging
import secrets

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

log = logging.getLogger("xrd_bravais.website")

_TITLES = {400: "Bad request", 401: "Please log in", 403: "Not allowed", 404: "Not found",
           405: "Not allowed", 409: "Refused", 413: "Upload too large", 422: "Not valid",
           429: "Quota used", 500: "Server error", 503: "Not available"}  # fmt: skip


class PageError(Exception):
    """A request the site refuses, with the status and a sentence for the person."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _page(request: Request, status: int, message: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"detail": message}, status_code=status)
    if status == 401:
        from urllib.parse import quote

        # The page asked for, query included (?track=...), to come back to after login.
        wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/login?next=" + quote(wanted, safe=""), status_code=303)
    from xrd_bravais.web.rendering import render

    return render(request, "error.html", status=status, title=_TITLES.get(status, "Error"),
                  message=message)  # fmt: skip


def install(app: FastAPI) -> None:
    """Register the site's handlers for refusals, bad input and unexpected failures."""

    @app.exception_handler(PageError)
    async def page_error(request: Request, exc: PageError) -> Response:
        return _page(request, exc.status, exc.message)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "")
        if message == "Not Found":
            message = "there is no page at this address"
        response = _page(request, exc.status_code, str(message))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def bad_input(request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
            problems.append(f"{where}: {error.get('msg', 'not valid')}")
        if _wants_json(request):
            return JSONResponse({"detail": "the request is not valid", "problems": problems},
                                status_code=422)  # fmt: skip
        return _page(request, 400, "the form is not valid: " + "; ".join(problems))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # The traceback goes to the server's log, never to the person (it could show
        # paths or values); a reference ties the two together.
        reference = secrets.token_hex(4)
        log.exception("unexpected error %s on %s %s", reference, request.method, request.url.path)
        message = (f"something went wrong on the server (reference {reference}); the "
                   "organisers can find it in the server log")  # fmt: skip
        if _wants_json(request):
            return JSONResponse({"detail": message}, status_code=500)
        return HTMLResponse(
            "<!doctype html><meta charset=utf-8><title>Server error</title><h1>Server error</h1>"
            f"<p>{message}.</p>", status_code=500)  # fmt: skip
