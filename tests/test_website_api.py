"""The website and its JSON API, against a real server on 127.0.0.1 (``xrd-bravais serve``)."""

from __future__ import annotations

import io
import re
import sqlite3
import zipfile

import httpx
import pandas as pd
import pytest
from conftest import solution_frame

pytest.importorskip("fastapi")


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def _perfect(site) -> pd.DataFrame:
    return solution_frame(site.competition)[["id", "bravais_lattice"]]


def _private_only(site) -> pd.DataFrame:
    """Right on every Private row, wrong on every Public row: Public 0 %, Private 100 %."""
    key = solution_frame(site.competition)
    labels = key["bravais_lattice"].where(key["Usage"] != "Public",
                                          key["bravais_lattice"].map(lambda v: "aP" if v != "aP"
                                                                     else "cF"))  # fmt: skip
    return pd.DataFrame({"id": key["id"], "bravais_lattice": labels})


def _post(site, token: str | None, content: bytes, **fields: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{site.url}/api/v1/submissions", headers=headers,
                      files={"file": ("sub.csv", content, "text/csv")}, data=fields,
                      timeout=60)  # fmt: skip


def _rows(site) -> int:
    with sqlite3.connect(site.competition / "leaderboard" / "leaderboard.sqlite") as db:
        return int(db.execute("SELECT COUNT(*) FROM submissions").fetchone()[0])


# -- teams and tokens -------------------------------------------------------------------------


def test_tokens_are_stored_hashed_and_removal_revokes(site) -> None:
    token = site.token("alpha")
    assert re.fullmatch(r"xb1\.[0-9a-f]{16}\.[A-Za-z0-9_-]{43}", token)
    db = (site.competition / "leaderboard" / "leaderboard.sqlite").read_bytes()
    assert token.split(".")[2].encode() not in db and token.encode() not in db
    me = httpx.get(f"{site.url}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["team"] == "alpha"
    assert me.json()["quota"]["bravais"]["valid_left"] == 5
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert httpx.get(f"{site.url}/api/v1/me",
                     headers={"Authorization": f"Bearer {wrong}"}).status_code == 401  # fmt: skip
    assert "alpha" in site.cli("teams", "list")
    assert "kept in the store" in site.cli("teams", "remove", "alpha")
    assert httpx.get(f"{site.url}/api/v1/me",
                     headers={"Authorization": f"Bearer {token}"}).status_code == 401  # fmt: skip


def test_a_new_token_ends_the_old_one(site) -> None:
    old = site.token("beta")
    new = site.cli("teams", "token", "beta").strip().rsplit(" ", 1)[-1]
    auth = lambda t: {"Authorization": f"Bearer {t}"}  # noqa: E731
    assert httpx.get(f"{site.url}/api/v1/me", headers=auth(old)).status_code == 401
    assert httpx.get(f"{site.url}/api/v1/me", headers=auth(new)).status_code == 200


def test_look_alike_and_reserved_team_names_are_refused(site) -> None:
    from test_cli import run

    site.token("Gamma")
    for name in ("gamma", "random forest", "G\u0430mma"):
        done = run("teams", "add", name, "-c", str(site.competition), cwd=site.competition.parent)
        assert done.returncode == 2 and "Traceback" not in done.stderr, name


# -- submitting ---------------------------------------------------------------------------------


def test_submit_scores_public_rows_only_and_counts_the_quota(site) -> None:
    token = site.token("alpha")
    answer = _post(site, token, _csv(_perfect(site)), track="bravais", message="all right")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["valid"] and body["public"]["accuracy"] == 1.0 and body["problems"] == []
    assert body["quota"]["valid_left"] == 4
    assert {r["label"] for r in body["public"]["recall"]} <= set(
        solution_frame(site.competition).query("Usage == 'Public'")["bravais_lattice"])
    assert "private" not in answer.text.lower() and "measured" not in answer.text.lower()
    history = httpx.get(f"{site.url}/api/v1/submissions",
                        headers={"Authorization": f"Bearer {token}"}).json()  # fmt: skip
    assert [h["message"] for h in history] == ["all right"]


def test_invalid_file_lists_every_problem_and_uses_the_invalid_quota(site) -> None:
    token = site.token("alpha")
    broken = _perfect(site).iloc[1:].copy()
    broken.iloc[0, 1] = "cubic"
    broken = pd.concat([broken, broken.iloc[[3]]])
    answer = _post(site, token, _csv(broken))
    assert answer.status_code == 422
    problems = answer.json()["problems"]
    assert len(problems) == 3, problems
    assert any("cubic" in p for p in problems) and any("missing" in p for p in problems)
    assert answer.json()["quota"] == {**answer.json()["quota"], "valid_left": 5,
                                      "invalid_left": 19}  # fmt: skip


def test_quota_is_exact_and_refusals_store_nothing(site) -> None:
    token = site.token("alpha")
    site.cli("rules", "--daily-quota", "2")
    codes = [_post(site, token, _csv(_perfect(site)), message=str(i)).status_code
             for i in range(3)]  # fmt: skip
    assert codes == [201, 201, 429]
    assert _rows(site) == 2 + _baseline_rows(site)


def _baseline_rows(site) -> int:
    with sqlite3.connect(site.competition / "leaderboard" / "leaderboard.sqlite") as db:
        return int(db.execute(
            "SELECT COUNT(*) FROM submissions s JOIN teams t ON t.id = s.team_id "
            "WHERE t.baseline = 1").fetchone()[0])  # fmt: skip


def test_oversize_upload_is_refused_while_reading_and_not_stored(site) -> None:
    token = site.token("alpha")
    before = _rows(site)
    huge = b"id,bravais_lattice\n" + b"x" * (4 << 20)
    answer = _post(site, token, huge)
    assert answer.status_code == 413 and "larger than" in answer.json()["detail"]

    def chunks():  # no Content-Length: the limit holds while streaming
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\n"
        for _ in range(64):
            yield b"y" * (1 << 16)

    streamed = httpx.post(f"{site.url}/api/v1/submissions", content=chunks(), timeout=60,
                          headers={"Authorization": f"Bearer {token}",
                                   "Content-Type": "multipart/form-data; boundary=b"})  # fmt: skip
    assert streamed.status_code == 413
    assert _rows(site) == before


def test_requests_without_a_token_or_for_another_team_are_refused(site) -> None:
    alpha, beta = site.token("alpha"), site.token("beta")
    assert _post(site, None, _csv(_perfect(site))).status_code == 401
    sent = _post(site, alpha, _csv(_perfect(site))).json()["submission_id"]
    url = f"{site.url}/api/v1/submissions/{sent}"
    assert httpx.get(url, headers={"Authorization": f"Bearer {alpha}"}).status_code == 200
    assert httpx.get(url, headers={"Authorization": f"Bearer {beta}"}).status_code == 404
    pick = httpx.put(f"{site.url}/api/v1/selection", json={"submission_ids": [sent]},
                     headers={"Authorization": f"Bearer {beta}"})  # fmt: skip
    assert pick.status_code == 409 and "not valid on-time" in pick.json()["detail"]
    mine = httpx.put(f"{site.url}/api/v1/selection", json={"submission_ids": [sent]},
                     headers={"Authorization": f"Bearer {alpha}"})  # fmt: skip
    assert mine.status_code == 200 and mine.json()["submission_ids"] == [sent]
    close = httpx.post(f"{site.url}/api/v1/admin/close",
                       headers={"Authorization": f"Bearer {alpha}"})  # fmt: skip
    assert close.status_code == 403


# -- what is visible when ---------------------------------------------------------------------


_PAGES = ("/", "/leaderboard", "/leaderboard/private", "/data", "/rules", "/baselines",
          "/baselines/bravais/", "/baselines/bravais/random-forest", "/api", "/team",
          "/api/v1/leaderboard", "/api/v1/leaderboard/private", "/api/v1/submissions",
          "/api/v1/competition", "/api/v1/me")  # fmt: skip


def test_no_private_figure_is_served_before_close_and_the_board_after(site) -> None:
    token = site.token("leaky")
    sent = _post(site, token, _csv(_private_only(site)))
    assert sent.status_code == 201 and sent.json()["public"]["accuracy"] == 0.0
    admin = site.cli("teams", "admin").strip().rsplit(" ", 1)[-1]
    session = httpx.Client(base_url=site.url)
    session.post("/login", data={"token": token,
                                 "csrf_token": _csrf(session)})  # fmt: skip
    for path in (*_PAGES, f"/team/submissions/{sent.json()['submission_id']}",
                 f"/api/v1/submissions/{sent.json()['submission_id']}"):  # fmt: skip
        page = session.get(path, headers={"Authorization": f"Bearer {token}"})
        assert page.status_code in (200, 403), (path, page.status_code)
        text = page.text
        # The Private accuracy (100 %) in any of the site's spellings.
        assert not re.search(r"100\.0+ ?%|\b100\.0+\b|\"accuracy\": ?1\.0\b", text), path
        if path.endswith("/private"):
            assert page.status_code == 403 and "hidden until" in text
    closed = httpx.post(f"{site.url}/api/v1/admin/close",
                        headers={"Authorization": f"Bearer {admin}"})  # fmt: skip
    assert closed.status_code == 200 and closed.json()["closed"]
    board = httpx.get(f"{site.url}/api/v1/leaderboard/private").json()
    row = next(r for r in board["rows"] if r["Team"] == "leaky")
    assert row["Accuracy %"] == "100.00" and row["Change"] not in ("", None)
    assert "100.00" in httpx.get(f"{site.url}/leaderboard/private").text


def _csrf(client: httpx.Client, path: str = "/login") -> str:
    page = client.get(path)
    return re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text).group(1)


def test_forms_need_the_csrf_token_of_this_browser(site) -> None:
    token = site.token("alpha")
    client = httpx.Client(base_url=site.url, follow_redirects=False)
    assert client.post("/login", data={"token": token}).status_code == 403
    other = httpx.Client(base_url=site.url)
    forged = client.post("/login", data={"token": token, "csrf_token": _csrf(other)})
    assert forged.status_code == 403  # a token made for another browser's cookie
    ok = client.post("/login", data={"token": token, "csrf_token": _csrf(client)})
    assert ok.status_code == 303 and ok.headers["location"] == "/team"
    upload = client.post("/team/submit", data={"track": "bravais"},
                         files={"file": ("s.csv", _csv(_perfect(site)))})  # fmt: skip
    assert upload.status_code == 403 and _rows(site) == _baseline_rows(site)
    csrf = _csrf(client, "/team")
    upload = client.post("/team/submit", data={"track": "bravais", "csrf_token": csrf},
                         files={"file": ("s.csv", _csv(_perfect(site)))})  # fmt: skip
    assert upload.status_code == 201 and "Public accuracy" in upload.text


def test_team_names_are_escaped_and_exports_are_formula_safe(site) -> None:
    name = "<script>alert(1)</script>"
    token = site.token(name)
    formula = site.token("=HYPERLINK(1)")
    _post(site, token, _csv(_perfect(site)))
    _post(site, formula, _csv(_perfect(site)), message="=1+2")
    page = httpx.get(f"{site.url}/leaderboard").text
    assert name not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    admin = site.cli("teams", "admin").strip().rsplit(" ", 1)[-1]
    export = httpx.get(f"{site.url}/api/v1/admin/export",
                       headers={"Authorization": f"Bearer {admin}"})  # fmt: skip
    assert export.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(export.content))
    names = archive.namelist()
    assert any(n.endswith("leaderboard.sqlite") for n in names)
    table = archive.read(next(n for n in names if n.endswith("submissions_bravais.csv"))).decode()
    assert "'=HYPERLINK(1)" in table and "'=1+2" in table
    assert "\n=" not in table and ",=" not in table


def test_baseline_files_only_plots_and_tables(site) -> None:
    base = f"{site.url}/baselines/bravais/files"
    assert httpx.get(f"{base}/random-forest/confusion.png").status_code == 200
    assert httpx.get(f"{base}/random-forest/importances.csv").status_code == 200
    for path in ("random-forest/model.pkl", "random-forest/result.json",
                 "..%2F..%2Fprivate%2Fsolution.csv", "../../private/solution.csv",
                 "%2e%2e/%2e%2e/manifest.json"):  # fmt: skip
        answer = httpx.get(f"{base}/{path}")
        assert answer.status_code == 404, path
        assert "Traceback" not in answer.text
    report = httpx.get(f"{site.url}/baselines/bravais/").text
    assert 'src="/baselines/bravais/files/comparison.png"' in report


def test_nothing_is_lost_across_a_restart(site) -> None:
    token = site.token("alpha")
    client = httpx.Client(base_url=site.url)
    client.post("/login", data={"token": token, "csrf_token": _csrf(client)})
    sent = _post(site, token, _csv(_perfect(site)), message="before restart")
    site.restart()
    team_page = client.get("/team")  # the same session cookie, a new process
    assert team_page.status_code == 200 and "before restart" in team_page.text
    again = httpx.get(f"{site.url}/api/v1/submissions/{sent.json()['submission_id']}",
                      headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert again.status_code == 200 and again.json()["public"]["accuracy"] == 1.0


def test_errors_are_sentences_never_tracebacks(site) -> None:
    auth = {"Authorization": f"Bearer {site.token('alpha')}"}
    answers = [
        httpx.get(f"{site.url}/no/such/page"),
        httpx.get(f"{site.url}/leaderboard?track=nope"),
        httpx.get(f"{site.url}/api/v1/submissions/abc", headers=auth),
        httpx.post(f"{site.url}/api/v1/submissions", headers=auth, content=b"not multipart",
                   timeout=30),
    ]
    assert [a.status_code for a in answers] == [404, 404, 422, 422]
    for answer in answers:
        assert "Traceback" not in answer.text and "File \"" not in answer.text
    assert "no page at this address" in answers[0].text


def test_openapi_schema_documents_the_api(site) -> None:
    schema = httpx.get(f"{site.url}/openapi.json").json()
    assert {"/api/v1/submissions", "/api/v1/leaderboard", "/api/v1/selection",
            "/api/v1/me"} <= set(schema["paths"])  # fmt: skip
    page = httpx.get(f"{site.url}/api").text
    assert "curl -H" in page and "/api/v1/submissions" in page
    assert httpx.get(f"{site.url}/docs").status_code == 404  # no CDN-backed page


def test_equal_scores_are_marked_as_a_tie_and_ranked_by_time(site) -> None:
    first, second = site.token("First"), site.token("Second")
    content = _csv(_private_only(site))  # Public 0 %: below every baseline, ties only with itself
    _post(site, first, content)
    _post(site, second, content)
    rows = httpx.get(f"{site.url}/api/v1/leaderboard").json()["rows"]
    tied = {r["Team"]: r for r in rows if r["Team"] in ("First", "Second")}
    assert tied["First"]["tie"] and tied["Second"]["tie"]
    assert (int(tied["First"]["Rank"]), int(tied["Second"]["Rank"])) == (1, 2)
    page = httpx.get(f"{site.url}/leaderboard").text
    assert page.count('class="badge tie"') == 2


def test_the_starter_kit_downloads_leak_checked(site) -> None:
    answer = httpx.get(f"{site.url}/starter-kit.zip", timeout=300)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(answer.content)).namelist()
    assert any(n.endswith("README.md") for n in names)
    assert any(n.endswith("test.parquet") for n in names)
    assert not any("solution" in n or "private" in n for n in names)


def test_login_returns_to_the_page_asked_for_and_never_elsewhere(site) -> None:
    token = site.token("alpha")
    client = httpx.Client(base_url=site.url, follow_redirects=False)
    asked = client.get("/team?track=spacegroup")
    assert asked.status_code == 303
    assert asked.headers["location"] == "/login?next=%2Fteam%3Ftrack%3Dspacegroup"
    form = client.get(asked.headers["location"])
    assert 'value="/team?track=spacegroup"' in form.text
    back = client.post("/login", data={"token": token, "csrf_token": _csrf(client),
                                       "next": "/team?track=spacegroup"})  # fmt: skip
    assert back.headers["location"] == "/team?track=spacegroup"
    away = client.post("/login", data={"token": token, "csrf_token": _csrf(client),
                                       "next": "//evil.example/"})  # fmt: skip
    assert away.headers["location"] == "/team"


def test_the_close_form_needs_a_confirmation_and_a_second_close_changes_nothing(site) -> None:
    admin = site.cli("teams", "admin").strip().rsplit(" ", 1)[-1]
    client = httpx.Client(base_url=site.url, follow_redirects=False)
    client.post("/login", data={"token": admin, "csrf_token": _csrf(client)})
    unconfirmed = client.post("/admin/close", data={"csrf_token": _csrf(client, "/admin")})
    assert unconfirmed.status_code == 400 and "tick the box to confirm" in unconfirmed.text
    assert not httpx.get(f"{site.url}/api/v1/competition").json()["closed"]
    form = {"csrf_token": _csrf(client, "/admin"), "confirm": "close"}
    assert client.post("/admin/close", data=form).status_code == 303
    deadline = httpx.get(f"{site.url}/api/v1/competition").json()["deadline"]
    again = client.post("/admin/close", data=form)  # the double click
    assert again.status_code == 409 and "already closed" in again.text
    twice = httpx.post(f"{site.url}/api/v1/admin/close",
                       headers={"Authorization": f"Bearer {admin}"})  # fmt: skip
    assert twice.status_code == 409 and "changes nothing" in twice.json()["detail"]
    assert httpx.get(f"{site.url}/api/v1/competition").json()["deadline"] == deadline
