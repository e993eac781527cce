"""The leaderboard store: ranking, quotas, selection, close, leaks and concurrency."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import solution_frame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring.leaderboard import Leaderboard, LeaderboardError, QuotaExceeded
from scoring.render import display_frame, render

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def guess(competition, public_right: float, private_right: float, seed: int = 0) -> pd.DataFrame:
    """A submission right on a given share of each portion (the rest predicts a wrong class)."""
    key = solution_frame(competition)
    rng = np.random.default_rng(seed)
    out = key[["id", "bravais_lattice"]].copy()
    share = np.where(key["Usage"] == "Public", public_right, private_right)
    wrong = rng.random(len(key)) >= share
    out.loc[wrong, "bravais_lattice"] = np.where(
        out.loc[wrong, "bravais_lattice"] == "aP", "cF", "aP"
    )
    return out


@pytest.fixture
def board(synthetic):
    with Leaderboard.open(synthetic) as opened:
        opened.set_rules(daily_quota=50)
        yield opened


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def test_ranking_ties_go_to_the_earlier_submission_and_failures_come_last(
    board, synthetic
) -> None:
    same = guess(synthetic, 0.8, 0.8, seed=1)
    board.submit(guess(synthetic, 0.9, 0.5), "first", now=minutes(1))
    board.submit(same, "tie-early", now=minutes(2))
    board.submit(same, "tie-late", now=minutes(3))
    board.submit(guess(synthetic, 0.5, 0.5), "fourth", now=minutes(4))
    board.submit(b"id,bravais_lattice\n", "broken", now=minutes(5))
    board.submit(guess(synthetic, 0.95, 0.95), "rf", baseline=True, now=minutes(6))
    table = board.public_board()
    assert table["team"].tolist() == ["rf", "first", "tie-early", "tie-late", "fourth", "broken"]
    # Equal accuracy and macro-F1: the earlier submission ranks first, as the rules say.
    assert table["rank"].tolist()[1:5] == [1, 2, 3, 4]
    assert table["rank"].isna().tolist() == [True, False, False, False, False, True]
    assert np.isnan(table["accuracy"].iloc[-1])


def test_macro_f1_breaks_accuracy_ties(board, synthetic) -> None:
    key = solution_frame(synthetic)
    public = key["Usage"] == "Public"
    a = key[["id", "bravais_lattice"]].copy()
    b = a.copy()
    # Two wrong rows each: a spreads its errors over two classes, b over one.
    rows = key.index[public & (key["bravais_lattice"] == "cF")][:2]
    a.loc[rows[0], "bravais_lattice"] = "aP"
    a.loc[rows[1], "bravais_lattice"] = "mP"
    b.loc[rows, "bravais_lattice"] = "aP"
    board.submit(a, "spread", now=minutes(1))
    board.submit(b, "focused", now=minutes(2))
    table = board.public_board()
    assert table["accuracy"].iloc[0] == table["accuracy"].iloc[1]
    assert table["macro_f1"].iloc[0] > table["macro_f1"].iloc[1]
    assert table["rank"].tolist() == [1, 2]


def test_a_team_shows_its_best_public_submission(board, synthetic) -> None:
    board.submit(guess(synthetic, 0.6, 0.6), "alpha", now=minutes(1))
    best = board.submit(guess(synthetic, 0.9, 0.6), "alpha", now=minutes(2))
    board.submit(guess(synthetic, 0.7, 0.6), "alpha", now=minutes(3))
    row = board.public_board().iloc[0]
    assert row["submission_id"] == best.submission_id and row["entries"] == 3


def test_quota_counts_valid_submissions_per_utc_day(synthetic) -> None:
    with Leaderboard.open(synthetic) as board:
        board.set_rules(daily_quota=2, invalid_daily_quota=1)
        good = guess(synthetic, 0.5, 0.5)
        end_of_day = datetime(2026, 11, 20, 23, 59, 59, 999999, tzinfo=UTC)
        assert board.submit(good, "a", now=end_of_day - timedelta(hours=1)).quota_left == 1
        receipt = board.submit(good, "a", now=end_of_day)
        assert receipt.quota_left == 0
        assert receipt.quota_resets_at == datetime(2026, 11, 21, tzinfo=UTC)
        with pytest.raises(QuotaExceeded, match="2 of 2 valid submissions today"):
            board.submit(good, "a", now=end_of_day)
        # Invalid files have their own cap and do not use the valid quota.
        assert not board.submit(b"", "a", now=end_of_day).valid
        with pytest.raises(QuotaExceeded, match="too many invalid submissions"):
            board.submit(b"", "a", now=end_of_day)
        # One microsecond later is a new UTC day.
        assert board.submit(good, "a", now=end_of_day + timedelta(microseconds=1)).quota_left == 1
        # Other tracks, other teams and baselines have their own counts.
        sg = solution_frame(synthetic)[["id", "spacegroup_number"]]
        assert board.submit(sg, "a", "spacegroup", now=end_of_day).quota_left == 1
        assert board.submit(good, "b", now=end_of_day).quota_left == 1
        for _ in range(3):
            assert board.submit(good, "ref", baseline=True, now=end_of_day).quota_left is None
        assert len(board.submissions()) == 8


def test_selection_and_fallback_to_two_best_public(board, synthetic) -> None:
    # alpha: best public overfits; its second-best public is best on private.
    a1 = board.submit(guess(synthetic, 0.95, 0.40), "alpha", now=minutes(1))
    a2 = board.submit(guess(synthetic, 0.90, 0.85), "alpha", now=minutes(2))
    board.submit(guess(synthetic, 0.50, 0.99), "alpha", now=minutes(3))
    b1 = board.submit(guess(synthetic, 0.80, 0.80), "beta", now=minutes(4))
    b2 = board.submit(guess(synthetic, 0.60, 0.95), "beta", now=minutes(5))
    assert board.select("beta", [b2.submission_id]) == [b2.submission_id]
    with pytest.raises(LeaderboardError, match="at most 2"):
        board.select("beta", [1, 2, 3])
    with pytest.raises(LeaderboardError, match="not valid on-time bravais submissions"):
        board.select("beta", [a1.submission_id])
    board.close(at=minutes(10))
    final = board.private_board(now=minutes(11)).set_index("team")
    assert final.loc["alpha", "submission_id"] == a2.submission_id  # fallback: 2 best public
    assert final.loc["beta", "submission_id"] == b2.submission_id  # the pick, not the best public
    assert final.loc["beta", "submission_id"] != b1.submission_id
    assert final.loc["alpha", "entries"] == 3 and final.loc["beta", "entries"] == 2
    with pytest.raises(LeaderboardError, match="closed"):
        board.select("alpha", [a1.submission_id], now=minutes(12))


def test_close_shakeup_and_late_table(board, synthetic) -> None:
    board.submit(guess(synthetic, 0.95, 0.50), "overfit", now=minutes(1))
    board.submit(guess(synthetic, 0.80, 0.80), "steady", now=minutes(2))
    with pytest.raises(LeaderboardError, match="stays hidden"):
        board.private_board(now=minutes(3))
    board.close(at=minutes(5))
    late = board.submit(guess(synthetic, 1.0, 1.0), "latecomer", now=minutes(6))
    assert late.late
    final = board.private_board(now=minutes(7))
    assert final["team"].tolist() == ["steady", "overfit"]
    assert final["public_rank"].tolist() == [2, 1]
    assert final["change"].tolist() == [1, -1]
    assert final.set_index("team").loc["overfit", "gap"] > 0.3
    assert "latecomer" not in board.public_board()["team"].tolist()
    late_rows = board.late_board(now=minutes(7))
    assert late_rows["team"].tolist() == ["latecomer"] and "private_accuracy" in late_rows


def test_closing_later_in_time_reclassifies_submissions(board, synthetic) -> None:
    board.submit(guess(synthetic, 0.5, 0.5), "a", now=minutes(1))
    board.submit(guess(synthetic, 0.6, 0.6), "a", now=minutes(3))
    board.close(at=minutes(2), retroactive=True)  # in the past: it must be confirmed
    assert board.submissions()["late"].tolist() == [0, 1]


def test_nothing_from_private_rows_reaches_a_student_before_close(tmp_path) -> None:
    """Two competitions differ only in a submission's Private part: identical student views."""
    from synthetic import make_synthetic_competition

    views = []
    for private_right in (0.1, 0.99):
        comp = make_synthetic_competition(tmp_path / str(private_right), n_test=700, seed=4)
        with Leaderboard.open(comp) as board:
            other = board.submit(guess(comp, 0.7, 0.7), "other", now=minutes(1))
            receipt = board.submit(guess(comp, 0.7, private_right), "probe", now=minutes(2))
            public = board.public_board()
            history = board.team_history("probe")
            with pytest.raises(LeaderboardError):
                board.private_board(now=minutes(3))
        shown = display_frame(public)
        views.append((
            receipt.public, receipt.notices, receipt.quota_left, other.public,
            [render(shown, fmt) for fmt in ("table", "md", "csv", "html")],
            history.to_dict("list"),
        ))  # fmt: skip
    assert views[0] == views[1]


def test_rescore_reports_changes(board, synthetic) -> None:
    board.submit(guess(synthetic, 0.7, 0.7), "a", now=minutes(1))
    assert board.rescore() == []
    with sqlite3.connect(synthetic / "leaderboard" / "leaderboard.sqlite") as db:
        db.execute("UPDATE submissions SET public_accuracy = 0.1, grader_version = 'old'")
    (change,) = board.rescore()
    assert change.before["public_accuracy"] == 0.1
    assert change.after["public_accuracy"] == pytest.approx(board.public_board()["accuracy"][0])
    assert board.submissions()["grader_version"].iloc[0] != "old"


def test_files_are_stored_once_by_content_and_labels_never(board, synthetic) -> None:
    same = guess(synthetic, 0.7, 0.7)
    first = board.submit(same, "a", now=minutes(1))
    second = board.submit(same, "b", now=minutes(2))
    assert first.sha256 == second.sha256
    assert board.file(first.sha256) == same.to_csv(index=False).encode()
    with sqlite3.connect(synthetic / "leaderboard" / "leaderboard.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM files").fetchone()[0] == 1
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        columns = {t: [r[1] for r in db.execute(f"PRAGMA table_info({t})")] for t in tables}
    assert not any("Usage" in cols or "bravais_lattice" in cols for cols in columns.values())


def test_team_names_are_checked(board, synthetic) -> None:
    with pytest.raises(LeaderboardError, match="1 to 64"):
        board.submit(guess(synthetic, 0.5, 0.5), "   ", now=minutes(1))
    with pytest.raises(LeaderboardError, match="control"):
        board.submit(guess(synthetic, 0.5, 0.5), "a\x1bb", now=minutes(1))
    board.submit(guess(synthetic, 0.5, 0.5), "rf", baseline=True, now=minutes(1))
    with pytest.raises(LeaderboardError, match="already a baseline"):
        board.submit(guess(synthetic, 0.5, 0.5), "rf", now=minutes(2))


def test_html_escapes_team_names(board, synthetic) -> None:
    board.submit(guess(synthetic, 0.5, 0.5), "<script>alert(1)</script>", now=minutes(1))
    page = render(display_frame(board.public_board(), {"uniform": 1 / 14}), "html")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert page.startswith("<!DOCTYPE html>") and "random guess: uniform" in page


def _submit_many(args: tuple[Path, str, int]) -> tuple[int, int]:
    competition, team, worker = args
    accepted = refused = 0
    with Leaderboard.open(competition) as board:
        from scoring.grade import load_answer_key

        key = load_answer_key(competition)
        for k in range(50):
            content = guess(competition, 0.5, 0.5, seed=worker * 1000 + k)
            try:
                board.submit(content, team, answer_key=key, message=f"{worker}-{k}")
                accepted += 1
            except QuotaExceeded:
                refused += 1
    return accepted, refused


def test_eight_processes_lose_nothing_and_quotas_stay_exact(tmp_path) -> None:
    from synthetic import make_synthetic_competition

    comp = make_synthetic_competition(tmp_path / "comp", n_test=280, n_train=140, seed=5)
    with Leaderboard.open(comp) as board:
        board.set_rules(daily_quota=70)
    # Two processes per team; each team tries 100 submissions against a quota of 70
    # (the test runs within one UTC day unless it straddles midnight; then 140).
    jobs = [(comp, f"team{w // 2}", w) for w in range(8)]
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        outcomes = pool.map(_submit_many, jobs)
    with Leaderboard.open(comp) as board:
        stored = board.submissions()
    per_team = stored.groupby("team").size()
    accepted = sum(a for a, _ in outcomes)
    assert accepted + sum(r for _, r in outcomes) == 400
    assert len(stored) == accepted
    assert stored["message"].is_unique
    per_worker = stored["message"].str.split("-").str[0].astype(int).value_counts()
    assert all(per_worker.get(w, 0) == a for w, (a, _) in enumerate(outcomes))
    assert stored["submission_id"].is_unique and stored["valid"].all()
    days = stored["submitted_at"].str[:10].nunique()
    assert (per_team == min(100, 70 * days)).all(), per_team


def test_missing_or_oversize_files_are_refused_unstored(board, synthetic, tmp_path) -> None:
    from scoring.submission import SubmissionError, size_limit

    with pytest.raises(SubmissionError, match="not found"):
        board.submit(tmp_path / "nope.csv", "a", now=minutes(1))
    big = tmp_path / "big.csv"
    big.write_bytes(b"x" * (size_limit(1400) + 1))
    with pytest.raises(SubmissionError, match="over the limit"):
        board.submit(big, "a", now=minutes(1))
    assert board.submissions().empty


# -- issue 10: careless and hostile users -----------------------------------------------


@pytest.mark.parametrize(
    "name", ["=cmd|' /C calc'!A0", "+SUM(1,2)", "-2+3", "@HYPERLINK(\"x\")"]
)
def test_csv_export_neutralises_formulas(board, synthetic, name) -> None:
    board.submit(guess(synthetic, 0.5, 0.5), name, now=minutes(1))
    text = render(display_frame(board.public_board()), "csv")
    cells = [line.split(",", 2)[1] for line in text.splitlines()[1:]]
    assert all(not cell.lstrip('"').startswith(("=", "+", "-", "@", "\t")) for cell in cells)
    assert any(cell.lstrip('"').startswith("'") for cell in cells)


def test_markdown_export_shows_markup_as_text(board, synthetic) -> None:
    for k, name in enumerate(["<script>alert(1)</script>", "<img src=x onerror=alert(2)>",
                              "[click](http://evil.example) **bold**"]):  # fmt: skip
        board.submit(guess(synthetic, 0.5, 0.5, seed=k), name, now=minutes(k))
    text = render(display_frame(board.public_board()), "md", "Board")
    assert "<script" not in text and "<img" not in text and "](http" not in text
    assert "&lt;script&gt;" in text and "\\*\\*bold\\*\\*" in text


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Random Forest", "looks like 'random forest'"),
        ("random guess: uniform", "baseline or reference row"),
        ("XGB00ST", "looks like 'xgboost'"),
        ("r\u0430ndom f\u043erest", "mixes Latin letters with CYRILLIC"),
        ("Alpha", "looks like 'alpha' (another team)"),
        ("\u0430\u04cf\u0440\u04bb\u0430", "looks like 'alpha' (another team)"),  # all Cyrillic
    ],
)
def test_look_alike_team_names_are_refused(board, synthetic, name, message) -> None:
    board.submit(guess(synthetic, 0.5, 0.5), "alpha", now=minutes(1))
    with pytest.raises(LeaderboardError, match=re.escape(message)):
        board.submit(guess(synthetic, 0.5, 0.5), name, now=minutes(2))
    assert name not in board.team_names()


def test_a_team_may_write_its_name_in_another_script(board, synthetic) -> None:
    board.submit(guess(synthetic, 0.5, 0.5), "\u041a\u043e\u043c\u0430\u043d\u0434\u0430",
                 now=minutes(1))  # fmt: skip
    assert len(board.public_board()) == 1


def test_a_past_deadline_must_be_confirmed(board, synthetic) -> None:
    board.submit(guess(synthetic, 0.5, 0.5), "alpha", now=minutes(1))
    with pytest.raises(LeaderboardError, match="would make 1 on-time submission late"):
        board.close(datetime(1970, 1, 1, tzinfo=UTC), now=minutes(10))
    assert board.rules.deadline is None and len(board.public_board()) == 1
    board.close(datetime(1970, 1, 1, tzinfo=UTC), retroactive=True, now=minutes(10))
    assert board.public_board().empty


def test_reopening_a_closed_competition_must_be_confirmed(board, synthetic) -> None:
    board.submit(guess(synthetic, 0.5, 0.5), "alpha", now=minutes(1))
    board.close(minutes(5), now=minutes(10))
    assert board.is_closed(minutes(10))
    with pytest.raises(LeaderboardError, match=r"would reopen it\. Confirm with --reopen"):
        board.close(datetime(2030, 1, 1, tzinfo=UTC), now=minutes(10))
    assert board.is_closed(minutes(10))
    board.close(datetime(2030, 1, 1, tzinfo=UTC), reopen=True, now=minutes(10))
    assert not board.is_closed(minutes(10))


# ---------------------------------------------------------------- the final ranking stands
def test_a_second_close_changes_nothing_and_a_late_submission_stays_off_the_final_board(
    board, synthetic
) -> None:
    board.submit(guess(synthetic, 0.6, 0.6), "early", now=minutes(1))
    board.close(now=minutes(5))
    late = board.submit(guess(synthetic, 1.0, 1.0), "latecomer", now=minutes(6))
    assert late.late
    before = board.private_board(now=minutes(7))
    with pytest.raises(LeaderboardError, match=r"already closed .* changes nothing"):
        board.close(now=minutes(8))  # the double click
    assert board.rules.deadline == minutes(5)
    assert board.submissions().set_index("team").loc["latecomer", "late"] == 1
    after = board.private_board(now=minutes(9))
    assert after["team"].tolist() == before["team"].tolist() == ["early"]


def test_a_passed_deadline_moves_only_by_an_explicit_reopen_that_is_logged(
    board, synthetic
) -> None:
    board.submit(guess(synthetic, 0.6, 0.6), "early", now=minutes(1))
    board.close(now=minutes(5))
    board.submit(guess(synthetic, 1.0, 1.0), "latecomer", now=minutes(6))
    with pytest.raises(LeaderboardError, match="only by reopening"):
        board.set_rules(deadline=minutes(60))
    with pytest.raises(LeaderboardError, match="Confirm with --reopen"):
        board.close(minutes(60), now=minutes(7))
    assert board.submissions().set_index("team").loc["latecomer", "late"] == 1
    board.close(minutes(60), reopen=True, now=minutes(7))
    log = board.audit_log()
    assert log["action"].tolist() == ["close", "reopen"]
    detail = json.loads(log["detail"].iloc[-1])
    assert detail["late_made_on_time"] == 1
    assert detail["closed_at"].startswith("2026-11-20T12:05")
    assert board.submissions().set_index("team").loc["latecomer", "late"] == 0


def test_the_finalists_are_fixed_when_a_deadline_set_in_advance_passes(board, synthetic) -> None:
    """Changing the number of picks after the deadline leaves the final ranking as it was."""
    board.set_rules(max_selected=2)
    for n, right in enumerate((0.9, 0.5, 0.7)):
        board.submit(guess(synthetic, right, 1.0 - right, seed=n), "alpha", now=minutes(n + 1))
    board.close(minutes(10), now=minutes(5))  # in advance: it passes by the clock
    assert not board.is_closed(minutes(9))
    first = board.private_board(now=minutes(11))
    board.set_rules(max_selected=3)
    board.rescore()
    again = board.private_board(now=minutes(12))
    pd.testing.assert_frame_equal(first, again)
    assert [a for a in board.audit_log()["action"]] == ["schedule", "rescore"]


def test_a_rescore_that_makes_an_invalid_file_valid_adds_nothing_to_the_final_board(
    board, synthetic
) -> None:
    """A grader fix after the close (rescore) revalidates a file: it stays off the board."""
    board.submit(guess(synthetic, 0.7, 0.7), "alpha", now=minutes(1))
    beta = board.submit(guess(synthetic, 0.9, 0.9), "beta", now=minutes(2))
    # As an older grader would have stored it: refused.
    with board._write() as db:
        db.execute("UPDATE submissions SET valid = 0, scores = NULL, public_accuracy = NULL, "
                   "private_accuracy = NULL WHERE id = ?", (beta.submission_id,))  # fmt: skip
    board.close(now=minutes(5))
    final = board.private_board(now=minutes(6))
    assert final.dropna(subset=["rank"])["team"].tolist() == ["alpha"]
    assert len(board.rescore()) == 1
    assert board.submissions().set_index("team").loc["beta", "valid"] == 1
    after = board.private_board(now=minutes(7))
    assert after.dropna(subset=["rank"])["team"].tolist() == ["alpha"]
    assert np.isnan(after.set_index("team").loc["beta", "accuracy"])


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(
    st.one_of(
        st.tuples(st.just("submit"), st.sampled_from(["a", "b", "c"]),
                  st.floats(0.0, 1.0), st.floats(0.0, 1.0)),
        st.tuples(st.just("close"), st.integers(-3, 3)),
        st.tuples(st.just("select"), st.sampled_from(["a", "b", "c"]), st.integers(0, 3)),
        st.tuples(st.just("rescore")),
        st.tuples(st.just("quota"), st.integers(1, 3)),
    ),
    min_size=1, max_size=14,
))  # fmt: skip
def test_the_private_board_never_gains_a_submission_after_the_first_close(
    synthetic, tmp_path_factory, steps
) -> None:
    """Any sequence of submit / close / close / select / rescore: the final set only shrinks."""
    import shutil

    comp = tmp_path_factory.mktemp("prop") / "comp"
    shutil.copytree(synthetic, comp, ignore=shutil.ignore_patterns("leaderboard"))
    clock = T0
    final: set[int] | None = None
    with Leaderboard.open(comp) as store:
        store.set_rules(daily_quota=100)
        for step in steps:
            clock += timedelta(minutes=1)
            with contextlib.suppress(LeaderboardError):
                if step[0] == "submit":
                    _, team, public, private = step
                    store.submit(guess(comp, public, private, seed=int(public * 100)), team,
                                 now=clock)  # fmt: skip
                elif step[0] == "close":
                    store.close(clock + timedelta(minutes=step[1]), retroactive=True,
                                now=clock)  # fmt: skip
                elif step[0] == "select":
                    _, team, n = step
                    own = store.submissions().query("team == @team and valid == 1 and late == 0")
                    store.select(team, own["submission_id"].tolist()[:n], now=clock)
                elif step[0] == "rescore":
                    store.rescore()
                else:
                    store.set_rules(max_selected=step[1])
            if store.is_closed(clock):
                board = store.private_board(now=clock)
                ranked = set(board.dropna(subset=["rank"])["submission_id"].astype(int))
                if final is None:
                    final = ranked
                assert ranked <= final, (steps, ranked, final)
