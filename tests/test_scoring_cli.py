"""The grading commands run as a user would: in a subprocess, on a real build."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from conftest import solution_frame
from test_cli import run

from competition.manifest import read_manifest, verify_manifest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def comp(cod_build, tmp_path) -> Path:
    """A private copy of the real COD build (the grader writes its store inside)."""
    return Path(shutil.copytree(cod_build.out, tmp_path / "comp"))


def test_validate_ok_and_every_problem_listed(comp, tmp_path) -> None:
    ok = run("validate", str(comp / "public" / "sample_submission.csv"), "-c", str(comp),
             cwd=tmp_path)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "is a valid bravais submission" in ok.stdout
    sample = pd.read_csv(comp / "public" / "sample_submission.csv")
    broken = pd.concat([sample.iloc[1:], sample.iloc[[1]]])
    broken.loc[broken.index[0], "bravais_lattice"] = "cubic"
    broken.to_csv(tmp_path / "bad.csv", index=False)
    bad = run("validate", str(tmp_path / "bad.csv"), "-c", str(comp), cwd=tmp_path)
    assert bad.returncode == 1
    assert "3 problems" in bad.stderr and "missing ids" in bad.stderr and "cubic" in bad.stderr
    assert "Traceback" not in bad.stderr
    track = run("validate", str(comp / "public" / "sample_submission_spacegroup.csv"),
                "-c", str(comp), "--track", "spacegroup", cwd=tmp_path)  # fmt: skip
    assert track.returncode == 0, track.stderr


def test_submit_leaderboard_close_private(comp, tmp_path) -> None:
    key = solution_frame(comp)
    key[["id", "bravais_lattice"]].to_csv(tmp_path / "perfect.csv", index=False)
    first = run("submit", str(tmp_path / "perfect.csv"), "--team", "alpha", "-c", str(comp),
                "-m", "all right", "--details", cwd=tmp_path)  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert "Public score: accuracy 100.00 %" in first.stdout
    assert "Quota: 4 valid submissions left today; resets at" in first.stdout
    assert "Confusion matrix (Public rows)" in first.stdout and "Private" not in first.stdout
    sample = str(comp / "public" / "sample_submission.csv")
    assert run("submit", sample, "--team", "beta", "-c", str(comp), cwd=tmp_path).returncode == 0
    assert run("submit", sample, "--team", "majority", "--baseline", "-c", str(comp),
               cwd=tmp_path).returncode == 0  # fmt: skip
    invalid = run("submit", str(tmp_path / "perfect.csv"), "--team", "gamma", "-c", str(comp),
                  "--track", "spacegroup", cwd=tmp_path)  # fmt: skip
    assert invalid.returncode == 1 and "NOT valid" in invalid.stdout

    board = run("leaderboard", "-c", str(comp), cwd=tmp_path)
    assert board.returncode == 0, board.stderr
    lines = board.stdout.splitlines()
    assert any(line.split()[:2] == ["1", "alpha"] for line in lines)
    assert any("majority" in line and "baseline" in line for line in lines)
    assert "random guess: uniform" in board.stdout and "7.14" in board.stdout
    hidden = run("leaderboard", "-c", str(comp), "--private", cwd=tmp_path)
    assert hidden.returncode == 2 and "stays hidden" in hidden.stderr
    hidden = run("score", sample, "-c", str(comp), "--private", cwd=tmp_path)
    assert hidden.returncode == 2 and "stay hidden" in hidden.stderr

    for fmt in ("md", "csv", "html"):
        out = tmp_path / f"board.{fmt}"
        made = run("leaderboard", "-c", str(comp), "-f", fmt, "-o", str(out), cwd=tmp_path)
        assert made.returncode == 0 and out.stat().st_size > 0
    assert pd.read_csv(tmp_path / "board.csv")["Team"].tolist()[0] == "alpha"

    closed = run("close", "-c", str(comp), cwd=tmp_path)
    assert closed.returncode == 0 and "Closed at" in closed.stdout
    final = run("leaderboard", "-c", str(comp), "--private", cwd=tmp_path)
    assert final.returncode == 0 and "Public rank" in final.stdout and "Change" in final.stdout
    late = run("submit", sample, "--team", "delta", "-c", str(comp), cwd=tmp_path)
    assert "late submission is scored but not ranked" in late.stdout
    assert "delta" in run("leaderboard", "-c", str(comp), "--late", cwd=tmp_path).stdout
    scored = run("score", sample, "-c", str(comp), "--private", cwd=tmp_path)
    assert scored.returncode == 0 and "Private score" in scored.stdout
    again = run("rescore", "-c", str(comp), cwd=tmp_path)
    assert again.returncode == 0 and "Rescored 5 submissions: 0 changed." in again.stdout
    # The grader's store lives beside the build and leaves its manifest intact.
    assert (comp / "leaderboard" / "leaderboard.sqlite").is_file()
    assert verify_manifest(comp) == []


def test_select_rules_and_errors(comp, tmp_path) -> None:
    sample = str(comp / "public" / "sample_submission.csv")
    assert "daily quota: 5 valid" in run("rules", "-c", str(comp), cwd=tmp_path).stdout
    assert run("rules", "-c", str(comp), "--daily-quota", "1", cwd=tmp_path).returncode == 0
    assert run("submit", sample, "--team", "a", "-c", str(comp), cwd=tmp_path).returncode == 0
    refused = run("submit", sample, "--team", "a", "-c", str(comp), cwd=tmp_path)
    assert refused.returncode == 2 and "daily quota reached: 1 of 1" in refused.stderr
    picked = run("select", "1", "--team", "a", "-c", str(comp), cwd=tmp_path)
    assert picked.returncode == 0 and "selected submission(s) 1" in picked.stdout
    wrong = run("select", "7", "--team", "a", "-c", str(comp), cwd=tmp_path)
    assert wrong.returncode == 2 and "not valid on-time" in wrong.stderr
    nowhere = run("leaderboard", "-c", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert nowhere.returncode == 2 and "not a built competition" in nowhere.stderr
    (comp / "private" / "solution.csv").write_text("id,bravais_lattice,spacegroup_number,Usage\n")
    tampered = run("score", sample, "-c", str(comp), cwd=tmp_path)
    assert tampered.returncode == 2 and "changed after the build" in tampered.stderr
    assert "Traceback" not in tampered.stderr


def test_scoring_imports_without_pymatgen_torch_or_sklearn(comp) -> None:
    """Students install scoring alone: it and `xrd-bravais validate` need no heavy package."""
    code = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {{"pymatgen", "torch", "sklearn", "spglib", "xgboost",
                                           "matplotlib", "pyxtal"}}:
                    raise ImportError("blocked " + name)
        sys.meta_path.insert(0, Block())
        import scoring.submission, scoring.metrics, scoring.grade, scoring.leaderboard
        import scoring.render
        from typer.testing import CliRunner
        from xrd_bravais.cli import app
        sample = {str(comp / "public" / "sample_submission.csv")!r}
        result = CliRunner().invoke(app, ["validate", sample, "-c", {str(comp)!r}])
        assert result.exit_code == 0, result.output
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr


# -- issue 10: a real course on it ----------------------------------------------------


def test_amend_key_is_deliberate_recorded_and_rescored(comp, tmp_path) -> None:
    key = solution_frame(comp)
    key[["id", "bravais_lattice"]].to_csv(tmp_path / "perfect.csv", index=False)
    assert run("submit", str(tmp_path / "perfect.csv"), "--team", "alpha", "-c", str(comp),
               cwd=tmp_path).returncode == 0  # fmt: skip
    # Relabel one Public row, consistently: a cF row becomes cI (space group 229).
    fixed = key.copy()
    row = fixed.index[(fixed["Usage"] == "Public") & (fixed["bravais_lattice"] != "cI")][0]
    fixed.loc[row, ["bravais_lattice", "spacegroup_number"]] = ["cI", 229]
    fixed.to_csv(tmp_path / "fixed.csv", index=False)

    no_reason = run("amend-key", str(tmp_path / "fixed.csv"), "-c", str(comp), "--reason", " ",
                    cwd=tmp_path)  # fmt: skip
    assert no_reason.returncode == 2 and "say why" in no_reason.stderr
    broken = fixed.copy()
    broken.loc[row, "Usage"] = "Private"
    broken.loc[broken.index[1], "spacegroup_number"] = 2  # aP, not the row's lattice
    broken.to_csv(tmp_path / "broken.csv", index=False)
    refused = run("amend-key", str(tmp_path / "broken.csv"), "-c", str(comp), "--reason", "x",
                  cwd=tmp_path)  # fmt: skip
    assert refused.returncode == 2 and "change portion" in refused.stderr
    assert "does not imply" in refused.stderr and "Traceback" not in refused.stderr
    assert verify_manifest(comp) == []

    done = run("amend-key", str(tmp_path / "fixed.csv"), "-c", str(comp), "--reason",
               "row was a twinned cI crystal", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "1 Public" in done.stdout and "Rescored 1 submission: 1 changed." in done.stdout
    assert verify_manifest(comp) == []
    manifest = read_manifest(comp)
    record = manifest["amendments"][0]
    assert record["reason"] == "row was a twinned cI crystal"
    assert record["changed_rows"] == {"Public": 1, "Private": 0}
    assert (comp / record["archived"]).stat().st_mode & 0o077 == 0
    scored = run("score", str(tmp_path / "perfect.csv"), "-c", str(comp), cwd=tmp_path)
    assert scored.returncode == 0 and "accuracy 100.00 %" not in scored.stdout


def test_a_team_lists_its_own_submissions(comp, tmp_path) -> None:
    sample = str(comp / "public" / "sample_submission.csv")
    for message in ("first try", "second"):
        run("submit", sample, "--team", "alpha", "-c", str(comp), "-m", message, cwd=tmp_path)
    run("submit", sample, "--team", "beta", "-c", str(comp), cwd=tmp_path)
    listed = run("submissions", "--team", "alpha", "-c", str(comp), cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert [r[0] for r in rows if r and r[0].isdigit()] == ["1", "2"]
    assert "first try" in listed.stdout and "Private" not in listed.stdout
    unknown = run("submissions", "--team", "nobody", "-c", str(comp), cwd=tmp_path)
    assert unknown.returncode == 2 and "no team called 'nobody'" in unknown.stderr


def test_a_damaged_store_is_one_line_not_a_traceback(comp, tmp_path) -> None:
    store = comp / "leaderboard" / "leaderboard.sqlite"
    store.parent.mkdir()
    store.write_bytes(b"this is not an SQLite file" * 100)
    for args in (["leaderboard"], ["submit", str(comp / "public" / "sample_submission.csv"),
                                   "--team", "alpha"]):  # fmt: skip
        done = run(*args, "-c", str(comp), cwd=tmp_path)
        assert done.returncode == 2 and "not a readable leaderboard" in done.stderr
        assert "Traceback" not in done.stderr


def test_late_table_is_formatted(comp, tmp_path) -> None:
    sample = str(comp / "public" / "sample_submission.csv")
    run("submit", sample, "--team", "alpha", "-c", str(comp), cwd=tmp_path)
    assert run("close", "-c", str(comp), cwd=tmp_path).returncode == 0
    run("submit", sample, "--team", "late-comer", "-c", str(comp), cwd=tmp_path)
    late = run("leaderboard", "-c", str(comp), "--late", cwd=tmp_path)
    assert late.returncode == 0, late.stderr
    header = next(line for line in late.stdout.splitlines() if line.startswith("Submission"))
    assert "Public %" in header and "public_accuracy" not in late.stdout
    assert "late-comer" in late.stdout


def test_a_huge_header_is_not_echoed_or_stored_in_full(comp, tmp_path) -> None:
    sample = pd.read_csv(comp / "public" / "sample_submission.csv")
    header = "id,bravais_lattice," + ",".join(f"extra_column_{k}" for k in range(40_000))
    body = "\n".join(f"{i},{lab}" for i, lab in sample.itertuples(index=False))
    (tmp_path / "wide.csv").write_text(header + "\n" + body + "\n")
    assert len(header) > 600_000
    done = run("submit", str(tmp_path / "wide.csv"), "--team", "alpha", "-c", str(comp),
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1 and "extra columns" in done.stderr
    assert len(done.stderr) < 2_000
    with sqlite3.connect(comp / "leaderboard" / "leaderboard.sqlite") as con:
        (problems,) = con.execute("SELECT problems FROM submissions").fetchone()
    assert len(problems) < 2_000


def test_close_in_the_past_and_reopening_need_confirmation(comp, tmp_path) -> None:
    sample = str(comp / "public" / "sample_submission.csv")
    run("submit", sample, "--team", "alpha", "-c", str(comp), cwd=tmp_path)
    past = run("close", "-c", str(comp), "--at", "1970-01-01T00:00:00", cwd=tmp_path)
    assert past.returncode == 2 and "--retroactive" in past.stderr
    assert run("close", "-c", str(comp), cwd=tmp_path).returncode == 0
    reopen = run("close", "-c", str(comp), "--at", "2030-01-01T00:00:00", cwd=tmp_path)
    assert reopen.returncode == 2 and "--reopen" in reopen.stderr
    again = run("close", "-c", str(comp), cwd=tmp_path)
    assert again.returncode == 2 and "already closed" in again.stderr
    assert again.stderr.count("\n") == 1 and "Traceback" not in again.stderr
    done = run("close", "-c", str(comp), "--at", "2030-01-01T00:00:00", "--reopen", cwd=tmp_path)
    assert done.returncode == 0 and "will close at 2030-01-01" in done.stdout
    history = run("rules", "-c", str(comp), cwd=tmp_path).stdout
    assert "close" in history and "reopen" in history and "late_made_on_time" in history
