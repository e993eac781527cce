"""The JSON API: the team pages' actions for scripts and notebooks (``/api/v1``).

Authenticate with ``Authorization: Bearer <team token>``. Before the deadline nothing
here carries a figure from the Private or Measured rows.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from scoring.leaderboard import LeaderboardError, QuotaExceeded, utc_now
from scoring.submission import SubmissionError
from scoring.teams import Identity
from xrd_bravais.contract.tasks import Track
from xrd_bravais.web import security, views
from xrd_bravais.web.errors import PageError
from xrd_bravais.web.site import Site

router = APIRouter(prefix="/api/v1", tags=["api"])


class Competition(BaseModel):
    """The competition and its rules."""

    name: str
    tracks: list[str]
    daily_quota: int
    invalid_daily_quota: int
    max_selected: int
    public_board: str = Field(description="plain, or ladder: a team's Public score is "
                              "released only when it beats its released one by more than the "
                              "noise (Blum and Hardt's Ladder).")
    public_board_meaning: str
    deadline: str | None
    closed: bool


class Board(BaseModel):
    """A leaderboard as shown on the site (strings, as on the page)."""

    track: str
    portion: str
    columns: list[str]
    rows: list[dict[str, Any]]


class QuotaLeft(BaseModel):
    """Submissions left today on a track."""

    valid_left: int
    invalid_left: int
    resets_at: str


class Me(BaseModel):
    """The team a token belongs to and its quota on each track."""

    team: str
    quota: dict[str, QuotaLeft]


class Recall(BaseModel):
    """Recall of one class on the Public rows (``n`` of them are of that class)."""

    label: str
    recall: float | None
    n: int


class PublicScores(BaseModel):
    """Figures on the Public rows.

    Accuracy with its Wilson interval, macro-F1 with a bootstrap interval, and
    recall per class present in those rows.
    """

    n: int
    accuracy: float | None
    macro_f1: float | None
    balanced_accuracy: float | None
    accuracy_ci: list[float | None]
    macro_f1_ci: list[float | None]
    recall: list[Recall]


class Submission(BaseModel):
    """One of the team's submissions: every validation problem, or its Public scores."""

    submission_id: int
    track: str
    sha256: str
    submitted_at: str
    message: str
    valid: bool
    problems: list[str]
    notices: list[str]
    public: PublicScores | None
    public_real: PublicScores | None = Field(
        None, description="Figures on the real measurements scored on the Public board, "
        "where the competition has some (build --measured-public-fraction)."
    )
    released: bool | None = Field(
        None, description="Under the Ladder: whether this submission's Public score was "
        "released (its public figures are null if not); null on a plain board."
    )
    released_public: PublicScores | None = Field(
        None, description="Under the Ladder: the Public figures the board showed for your "
        "team right after this submission."
    )
    released_submission_id: int | None = None
    selected: bool
    late: bool
    quota: QuotaLeft | None = None


class HistoryRow(BaseModel):
    """A line of your submission history."""

    submission_id: int
    submitted_at: str
    message: str
    valid: bool
    public_accuracy: float | None
    public_macro_f1: float | None
    selected: bool
    late: bool
    released: bool | None = Field(
        None, description="Under the Ladder: whether the Public score was released."
    )


class Selection(BaseModel):
    """Submissions that count for the private leaderboard (replaces earlier picks)."""

    track: str | None = None
    submission_ids: list[int] = Field(max_length=50)


class Selected(BaseModel):
    """The submissions now picked."""

    track: str
    submission_ids: list[int]


class Rescored(BaseModel):
    """How many submissions were graded again, and how many changed."""

    rescored: int
    changed: int


def _site(request: Request) -> Site:
    site: Site = request.app.state.site
    return site


def _identity(request: Request, authorization: str | None) -> Identity:
    identity = _site(request).from_token(security.bearer_token(authorization))
    if identity is None:
        raise PageError(401, "send a valid token: Authorization: Bearer <token>")
    return identity


def _team(request: Request, authorization: str | None) -> str:
    identity = _identity(request, authorization)
    if identity.team is None:
        raise PageError(403, "this call takes a team token")
    return identity.team


def _track(site: Site, name: str | None) -> Track:
    try:
        return site.task.track(name or None)
    except ValueError as err:
        raise PageError(404, str(err)) from None


AuthHeader = Annotated[str | None, Header(description="Bearer <token>")]


@router.get("/competition", summary="The competition, its tracks and rules")
def competition(request: Request) -> Competition:
    """The competition's name, tracks, rules and whether it is closed."""
    site = _site(request)
    rules = views.rules_view(site.board().rules, utc_now())
    return Competition(name=site.name, tracks=list(site.task.track_names), **rules)


@router.get("/leaderboard", summary="The public leaderboard of a track")
def leaderboard(request: Request, track: str | None = None) -> Board:
    """The public leaderboard of a track, as the site shows it."""
    site = _site(request)
    spec = _track(site, track)
    table = views.public_table(site, spec)
    return Board(track=spec.name, portion="Public", columns=table.columns, rows=table.to_json())


@router.get("/leaderboard/private", summary="The private leaderboard (after close only)")
def private_leaderboard(request: Request, track: str | None = None) -> Board:
    """The private leaderboard with the shake-up; 403 before close."""
    site = _site(request)
    spec = _track(site, track)
    try:
        table = views.private_tables(site, spec)["private"]
    except LeaderboardError:
        raise PageError(403, "the private leaderboard stays hidden until the competition "
                             "closes") from None  # fmt: skip
    return Board(track=spec.name, portion="Private", columns=table.columns, rows=table.to_json())


@router.get("/me", summary="Your team and the quota left on each track")
def me(request: Request, authorization: AuthHeader = None) -> Me:
    """The team the token belongs to, and its quota left today on each track."""
    team = _team(request, authorization)
    board = _site(request).board()
    return Me(team=team, quota={
        name: QuotaLeft(**views.quota_view(board.quota(team, name)))
        for name in _site(request).task.track_names})  # fmt: skip


@router.post("/submissions", summary="Submit a CSV", status_code=201,
             responses={422: {"description": "Stored as invalid: every problem listed"},
                        429: {"description": "Quota used: nothing stored"},
                        413: {"description": "File too large: nothing stored"}})  # fmt: skip
def submit(
    request: Request,
    file: Annotated[UploadFile, File(description="The submission CSV")],
    track: Annotated[str | None, Form()] = None,
    message: Annotated[str, Form(max_length=500)] = "",
    authorization: AuthHeader = None,
) -> Response:
    """Validate, score and store a submission within your quota.

    201 with the Public scores; 422 with every problem when the file is not valid
    (stored, counted against the invalid-file quota); 429 when today's quota is used.
    """
    team = _team(request, authorization)
    site = _site(request)
    spec = _track(site, track)
    board = site.board()
    try:
        receipt = board.submit(file.file.read(), team, spec, message,
                               answer_key=site.answer_key())  # fmt: skip
    except QuotaExceeded as err:
        raise PageError(429, str(err)) from None
    except SubmissionError as err:
        raise PageError(413, "; ".join(err.problems)) from None
    except LeaderboardError as err:
        raise PageError(409, str(err)) from None
    item = views.submission_view(board.team_submission(team, receipt.submission_id), spec,
                                 receipt.notices)  # fmt: skip
    item["quota"] = views.quota_view(board.quota(team, spec))
    return JSONResponse(Submission(**item).model_dump(),
                        status_code=201 if receipt.valid else 422)  # fmt: skip


@router.get("/submissions", summary="Your submissions on a track (Public scores)")
def submissions(
    request: Request, track: str | None = None, authorization: AuthHeader = None
) -> list[HistoryRow]:
    """Your submissions on a track, with Public scores only."""
    team = _team(request, authorization)
    site = _site(request)
    rows = views.history_rows(site.board(), team, _track(site, track))
    return [HistoryRow(**{k: v for k, v in row.items() if k != "text"}) for row in rows]


@router.get("/submissions/{submission_id}", summary="One of your submissions")
def submission(request: Request, submission_id: int, authorization: AuthHeader = None
               ) -> Submission:  # fmt: skip
    """One of your submissions: its problems, or its Public scores and recall."""
    team = _team(request, authorization)
    site = _site(request)
    try:
        item = site.board().team_submission(team, submission_id)
    except LeaderboardError as err:
        raise PageError(404, str(err)) from None
    return Submission(**views.submission_view(item, site.task.track(item.track)))


@router.put("/selection", summary="Choose your final submissions")
def select(request: Request, body: Selection, authorization: AuthHeader = None) -> Selected:
    """Choose up to the allowed number of submissions for the final ranking."""
    team = _team(request, authorization)
    site = _site(request)
    spec = _track(site, body.track)
    try:
        ids = site.board().select(team, body.submission_ids, spec)
    except LeaderboardError as err:
        raise PageError(409, str(err)) from None
    return Selected(track=spec.name, submission_ids=ids)


def _admin(request: Request, authorization: str | None) -> None:
    if not _identity(request, authorization).is_admin:
        raise PageError(403, "this call takes the admin token")


@router.post("/admin/close", summary="Close the competition now (admin)")
def close(request: Request, authorization: AuthHeader = None) -> Competition:
    """Close the competition now (admin token)."""
    _admin(request, authorization)
    try:
        _site(request).board().close()
    except LeaderboardError as err:
        raise PageError(409, str(err)) from None
    return competition(request)


@router.post("/admin/rescore", summary="Grade every submission again (admin)")
def rescore(request: Request, authorization: AuthHeader = None) -> Rescored:
    """Grade every stored submission again with the current answer key (admin token)."""
    _admin(request, authorization)
    site = _site(request)
    board = site.board()
    changes = board.rescore(site.reload_key())
    total = sum(len(board.submissions(name)) for name in site.task.track_names)
    return Rescored(rescored=total, changed=len(changes))


@router.get("/admin/export", summary="Download the store and every submission (admin)",
            response_class=Response)  # fmt: skip
def export(request: Request, authorization: AuthHeader = None) -> Response:
    """A zip of the store and one CSV of submissions per track (admin token)."""
    _admin(request, authorization)
    from xrd_bravais.web.export import export_zip

    site = _site(request)
    return Response(export_zip(site), media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{site.name}-export.zip"'})  # fmt: skip
