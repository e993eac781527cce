"""The Ladder: its release rule, the store's replay, and what a team sees under it."""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_leaderboard import guess as predictions  # right on a share of each portion

from scoring.ladder import PUBLIC_BOARDS, check_public_board, ladder
from scoring.leaderboard import Leaderboard, LeaderboardError

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# -- the release rule --------------------------------------------------------------------


def test_golden_release_decisions() -> None:
    first = [1, 0, 0, 1]
    better_by_one_row = [1, 1, 0, 1]  # +0.25, but s/sqrt(n) = 0.5/2 = 0.25: not above
    all_right = [1, 1, 1, 1]  # +0.5 over the first; differences (0,1,1,0): s/2 = 0.289
    steps = ladder([first, better_by_one_row, all_right])
    assert [s.released for s in steps] == [True, False, True]
    assert [s.released_accuracy for s in steps] == [0.5, 0.5, 1.0]
    assert [s.best_index for s in steps] == [0, 0, 2]
    assert steps[1].margin == pytest.approx(0.25)
    assert steps[2].margin == pytest.approx(np.std([0, 1, 1, 0], ddof=1) / 2)
    assert steps[0].margin == 0.0


def test_the_same_hits_are_never_released_twice_and_a_worse_score_never() -> None:
    hits = np.random.default_rng(0).random(400) < 0.6
    worse = hits.copy()
    worse[np.flatnonzero(hits)[:30]] = False
    steps = ladder([hits, hits, worse])
    assert [s.released for s in steps] == [True, False, False]
    assert steps[2].accuracy < steps[2].released_accuracy


def test_one_more_right_row_in_400_is_noise_and_forty_are_progress() -> None:
    rng = np.random.default_rng(1)
    hits = rng.random(400) < 0.5
    one = hits.copy()
    one[np.flatnonzero(~hits)[0]] = True
    forty = hits.copy()
    forty[np.flatnonzero(~hits)[:40]] = True
    assert [s.released for s in ladder([hits, one])] == [True, False]
    assert [s.released for s in ladder([hits, forty])] == [True, True]


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="one order of Public rows"):
        ladder([[1, 0, 1], [1, 0]])
    with pytest.raises(ValueError, match="no Public rows"):
        ladder([[]])
    assert ladder([]) == []
    with pytest.raises(ValueError, match="plain, ladder"):
        check_public_board("Ladder")
    assert set(PUBLIC_BOARDS) == {"plain", "ladder"}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.booleans(), min_size=12, max_size=12), min_size=1, max_size=15))
def test_released_scores_only_rise_and_belong_to_a_released_submission(rows) -> None:
    steps = ladder(rows)
    previous = -math.inf
    for index, step in enumerate(steps):
        assert step.released_accuracy >= previous
        assert steps[step.best_index].released
        assert step.released_accuracy == pytest.approx(np.mean(rows[step.best_index]))
        if step.released:
            assert step.best_index == index
            assert step.accuracy > previous + step.margin or index == 0
        else:
            assert step.accuracy <= step.released_accuracy + step.margin
        previous = step.released_accuracy


# -- the store under the Ladder -------------------------------------------------------------


@pytest.fixture
def ladder_board(synthetic):
    with Leaderboard.open(synthetic) as board:
        board.set_rules(daily_quota=50, public_board="ladder")
        yield board


def test_a_team_sees_only_released_public_scores(ladder_board, synthetic) -> None:
    board = ladder_board
    first = board.submit(predictions(synthetic, 0.5, 0.5, 1), "alpha", now=at(1))
    assert first.released is True and first.public is not None
    assert first.released_submission_id == first.submission_id
    # A little better on the Public rows: inside the noise of 420 rows.
    nudge = board.submit(predictions(synthetic, 0.52, 0.5, 2), "alpha", now=at(2))
    assert nudge.released is False
    assert nudge.public is None and nudge.measured_public is None
    assert nudge.released_public == first.public
    assert nudge.released_submission_id == first.submission_id
    progress = board.submit(predictions(synthetic, 0.8, 0.8, 3), "alpha", now=at(3))
    assert progress.released is True and progress.public is not None

    table = board.public_board()
    row = table[table["team"] == "alpha"].iloc[0]
    assert row["submission_id"] == progress.submission_id
    assert row["entries"] == 3
    history = board.team_history("alpha")
    assert history["released"].tolist() == [True, False, True]
    assert history["public_accuracy"].isna().tolist() == [False, True, False]
    hidden = board.team_submission("alpha", nudge.submission_id)
    assert hidden.released is False and hidden.public is None
    assert hidden.released_public == first.public


def test_the_board_keeps_the_released_score_not_the_best(ladder_board, synthetic) -> None:
    board = ladder_board
    board.submit(predictions(synthetic, 0.6, 0.6, 1), "alpha", now=at(1))
    lucky = board.submit(predictions(synthetic, 0.615, 0.6, 4), "alpha", now=at(2))
    assert lucky.released is False
    shown = board.public_board()
    first_score = shown.loc[shown["team"] == "alpha", "accuracy"].iloc[0]
    best_own = board.submissions().query("team == 'alpha'")["public_accuracy"].max()
    assert first_score < best_own  # the plain board would show the lucky one
    board.set_rules(public_board="plain")
    plain = board.public_board()
    assert plain.loc[plain["team"] == "alpha", "accuracy"].iloc[0] == best_own
    assert board.submit(predictions(synthetic, 0.6, 0.6, 5), "alpha", now=at(3)).released is None


def test_switching_to_the_ladder_mid_course_replays_it(synthetic) -> None:
    with Leaderboard.open(synthetic) as board:
        board.set_rules(daily_quota=50)
        for seed, share in enumerate((0.5, 0.51, 0.9)):
            board.submit(predictions(synthetic, share, 0.5, seed), "alpha", now=at(seed))
        board.submit(predictions(synthetic, 0.7, 0.7, 9), "rf", baseline=True, now=at(5))
        board.connection.execute("DELETE FROM public_hits")  # a store from before the Ladder
        board.set_rules(public_board="ladder")
        history = board.team_history("alpha")
        assert history["released"].tolist() == [True, False, True]
        assert "rf" in set(board.public_board()["team"])  # baselines stay plain rows
        log = board.audit_log()
        assert "public board" in set(log["action"])


def test_the_private_board_is_the_same_under_both(synthetic, tmp_path) -> None:
    import shutil

    boards = {}
    for kind in ("plain", "ladder"):
        root = tmp_path / kind
        shutil.copytree(synthetic, root)
        with Leaderboard.open(root) as board:
            board.set_rules(daily_quota=50, public_board=kind)
            for seed, share in enumerate((0.5, 0.52, 0.7, 0.71)):
                board.submit(predictions(root, share, share - 0.1, seed), "alpha", now=at(seed))
                board.submit(predictions(root, 0.6, 0.6, 10 + seed), "beta", now=at(seed))
            board.close(at(10), retroactive=True)
            boards[kind] = board.private_board(now=at(11))
            # After the close nothing is hidden any more.
            assert board.team_history("alpha")["public_accuracy"].notna().all()
    pd.testing.assert_frame_equal(boards["plain"], boards["ladder"])


def test_an_amended_key_recomputes_the_hits(ladder_board, synthetic) -> None:
    board = ladder_board
    board.submit(predictions(synthetic, 0.5, 0.5, 1), "alpha", now=at(1))
    stored = board.connection.execute("SELECT answer_key_sha256 FROM public_hits").fetchall()
    assert len(stored) == 1
    board.rescore()
    again = board.connection.execute("SELECT COUNT(*) FROM public_hits").fetchone()[0]
    assert again == 1


def test_unknown_board_kind_is_refused(synthetic) -> None:
    with Leaderboard.open(synthetic) as board, pytest.raises(LeaderboardError, match="ladder"):
        board.set_rules(public_board="bogus")


# -- the command line and the kit -------------------------------------------------------------


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xrd_bravais", *args], capture_output=True,
                          text=True, check=check)  # fmt: skip


def test_rules_and_submit_through_the_cli(synthetic, tmp_path) -> None:
    c = str(synthetic)
    assert "public board: plain" in cli("rules", "-c", c).stdout
    shown = cli("rules", "-c", c, "--public-board", "ladder").stdout
    assert "public board: ladder (a team's Public score is released only when" in shown
    refused = cli("rules", "-c", c, "--public-board", "steps", check=False)
    assert refused.returncode == 2 and "--public-board" in refused.stderr
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    predictions(synthetic, 0.5, 0.5, 1).to_csv(first, index=False)
    predictions(synthetic, 0.51, 0.5, 2).to_csv(second, index=False)
    out = cli("submit", str(first), "--team", "alpha", "-c", c).stdout
    assert "released; the board now shows this submission" in out
    assert "Public score" in out or "Public:" in out
    out = cli("submit", str(second), "--team", "alpha", "-c", c).stdout
    assert "not released" in out and "(submission 1)" in out
    public_lines = [line for line in out.splitlines() if line.startswith("Public") and "%" in line
                    and "released" not in line]  # fmt: skip
    assert public_lines == []  # this submission's own Public score is not printed
    history = cli("submissions", "--team", "alpha", "-c", c).stdout
    assert "The Public board is the Ladder" in history and "not above your released" in history
    board = cli("leaderboard", "-c", c).stdout
    assert "Ladder" in board


def test_the_kit_and_the_exports_say_which_board_is_in_force(cod_build, tmp_path) -> None:
    import shutil

    from starter_kit.kit import render_readme

    root = tmp_path / "comp"
    shutil.copytree(cod_build.out, root, ignore=shutil.ignore_patterns("leaderboard"))
    assert "**Public board: plain.** Every valid submission's Public score" in render_readme(root)
    with Leaderboard.open(root) as board:
        board.set_rules(public_board="ladder")
    text = render_readme(root)
    assert "**Public board: ladder.**" in text and "Blum and Hardt" in text
    hosted = render_readme(root, host="Kaggle")
    assert "Public board: plain (on Kaggle)" in hosted and "Ladder" not in hosted
    from xrd_bravais.contract.tasks import load_task
    from xrd_bravais.platforms.common import participant_pages

    pages = participant_pages(root, load_task(root).default, 30.0, host="Codabench")
    assert "Codabench's leaderboard shows every submission's Public score" in pages["rules.md"]
    assert "would run a Ladder" in pages["rules.md"] and "Codabench cannot" in pages["rules.md"]
    assert "Public board: plain (on Codabench)" in pages["overview.md"]


# -- the website ---------------------------------------------------------------------------


def test_the_website_releases_scores_under_the_ladder(site) -> None:
    httpx = pytest.importorskip("httpx")
    from test_website_api import _csrf, _csv, _post

    site.cli("rules", "--public-board", "ladder")
    competition = httpx.get(f"{site.url}/api/v1/competition").json()
    assert competition["public_board"] == "ladder"
    token = site.token("alpha")
    model = predictions(site.competition, 0.5, 0.5, 1)
    first = _post(site, token, _csv(model), track="bravais")
    assert first.status_code == 201 and first.json()["released"] is True
    # The same answers in another row order: no better, so nothing is released.
    nudge = _post(site, token, _csv(model.iloc[::-1]), track="bravais")
    body = nudge.json()
    assert body["released"] is False and body["public"] is None and body["public_real"] is None
    assert body["released_submission_id"] == first.json()["submission_id"]
    history = httpx.get(f"{site.url}/api/v1/submissions",
                        headers={"Authorization": f"Bearer {token}"}).json()  # fmt: skip
    assert [h["released"] for h in history] == [True, False]
    assert history[1]["public_accuracy"] is None
    rules = httpx.get(f"{site.url}/rules").text
    assert "The Public board is a Ladder." in rules
    assert "released" in httpx.get(f"{site.url}/leaderboard").text
    client = httpx.Client(base_url=site.url, follow_redirects=False)
    client.post("/login", data={"token": token, "csrf_token": _csrf(client)})
    page = client.get(f"/team/submissions/{body['submission_id']}").text
    assert "not released" in page and "Recall per class" not in page
    assert "Released (Ladder)" in client.get("/team").text


def test_the_admin_integrity_page_flags_a_copy(site) -> None:
    httpx = pytest.importorskip("httpx")
    from test_website_api import _csrf, _csv, _post

    model = predictions(site.competition, 0.5, 0.5, 1)
    _post(site, site.token("alpha"), _csv(model), track="bravais")
    _post(site, site.token("beta"), _csv(model), track="bravais")
    _post(site, site.token("gamma"), _csv(predictions(site.competition, 0.5, 0.5, 2)),
          track="bravais")  # fmt: skip
    token = site.token("delta")
    client = httpx.Client(base_url=site.url, follow_redirects=False)
    client.post("/login", data={"token": token, "csrf_token": _csrf(client)})
    assert client.get("/admin/integrity").status_code == 403  # a team may not see it
    admin = site.cli("teams", "admin").strip().rsplit(" ", 1)[-1]
    client = httpx.Client(base_url=site.url, follow_redirects=False)
    client.post("/login", data={"token": admin, "csrf_token": _csrf(client)})
    page = client.get("/admin/integrity")
    assert page.status_code == 200
    flagged = page.text.split("<h2>Other pairs</h2>")[0]
    assert "identical file" in flagged and "alpha" in flagged and "beta" in flagged
    assert "gamma" not in flagged
    assert "/admin/integrity" in client.get("/admin").text
