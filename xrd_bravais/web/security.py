"""The site's guards: CSRF tokens, the upload size limit, and how a request says who it is.

CSRF uses a signed double-submit cookie: every browser gets a random ``xb_csrf``
cookie, and every form carries ``HMAC(server secret, cookie)``; a cross-site form can
neither read the cookie nor forge the signature. The JSON API takes a bearer token
instead of cookies, so it needs no CSRF token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

SESSION_COOKIE: Final = "xb_session"
CSRF_COOKIE: Final = "xb_csrf"
CSRF_FIELD: Final = "csrf_token"
MULTIPART_SLACK: Final = 64 * 1024
"""Bytes an upload may carry beyond the submission limit: multipart headers, the message."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def new_csrf_cookie() -> str:
    """A fresh random value for the CSRF cookie."""
    return secrets.token_urlsafe(24)


def csrf_token(secret: bytes, cookie: str) -> str:
    """The form field that goes with a CSRF cookie."""
    return hmac.new(secret, f"csrf|{cookie}".encode(), hashlib.sha256).hexdigest()


def csrf_ok(secret: bytes, cookie: str | None, field: str | None) -> bool:
    """Whether a form's CSRF field matches the browser's cookie (constant-time)."""
    if not cookie or not field:
        return False
    return hmac.compare_digest(csrf_token(secret, cookie), field)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if there is one."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


SMALL_BODY_LIMIT: Final = 64 * 1024
"""Bytes any request body but a submission upload may carry: a login form, a selection."""
BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyLimit:
    """Cap every request body before it is read, and check who sends an upload first.

    Upload routes (``paths``) take up to ``limit`` bytes (the grader's own submission
    limit plus :data:`MULTIPART_SLACK`), and only from a sender that ``authorised``
    accepts (a team's bearer token or session), checked before a byte of the body is
    read; every other request takes at most ``small_limit``. A declared
    ``Content-Length`` over the limit, or one byte more while reading, ends the
    request with 413 before anything is parsed, stored or spooled to disk.
    """

    def __init__(
        self,
        app: ASGIApp,
        paths: frozenset[str],
        limit: int,
        small_limit: int = SMALL_BODY_LIMIT,
        authorised: Callable[[Scope], Awaitable[bool]] | None = None,
    ) -> None:
        self.app = app
        self.paths = paths
        self.limit = limit
        self.small_limit = small_limit
        self.authorised = authorised

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on with its body read, or answer 401 or 413."""
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        upload = scope["method"] == "POST" and scope["path"] in self.paths
        limit = self.limit if upload else self.small_limit
        if upload and self.authorised is not None and not await self.authorised(scope):
            await self._answer(scope, send, 401, "Please log in",
                               "log in (or send your team token) before uploading a file")
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, send, limit, upload)
            return
        chunks, total, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            total += len(body)
            if total > limit:
                await self._refuse(scope, send, limit, upload)
                return
            chunks.append(body)
            more = bool(message.get("more_body", False))
        data, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": data, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, send: Send, limit: int, upload: bool) -> None:
        text = (
            f"the upload is larger than {limit:,} bytes, the most a submission for this test "
            "set can take; check that it is the submission CSV" if upload
            else f"the request body is larger than {limit:,} bytes, the most this address takes"
        )
        await self._answer(scope, send, 413, "Upload too large" if upload else "Too large", text)

    async def _answer(self, scope: Scope, send: Send, status: int, title: str,
                      text: str) -> None:  # fmt: skip
        if str(scope["path"]).startswith("/api/"):
            body, kind = json.dumps({"detail": text}).encode(), b"application/json"
        else:
            body = (
                f"<!doctype html><meta charset=utf-8><title>{title}</title>"
                f"<h1>{title}</h1><p>{text}.</p><p><a href=/team>Back</a></p>"
            ).encode()
            kind = b"text/html; charset=utf-8"
        await send({
            "type": "http.response.start", "status": status,
            "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close")],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": body})
