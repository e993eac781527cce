"""The website in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

Set ``CI=true`` to make a missing browser a failure instead of a skip.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import solution_frame

pytest.importorskip("fastapi")
playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    if os.environ.get("CI"):
        raise RuntimeError("CI needs Debian's chromium for the browser tests: apt install chromium")
    pytest.skip("no chromium on this machine (apt install chromium)", allow_module_level=True)

# Flags for a closed network: no background connections that would be refused.
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    tab = context.new_page()
    dialogs: list[str] = []
    tab.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    tab.dialogs = dialogs
    yield tab
    context.close()


def _write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def _login(page, site, token: str) -> None:
    page.goto(f"{site.url}/login")
    page.fill("input[name=token]", token)
    page.click("button:has-text('Log in')")


def test_a_team_logs_in_fixes_a_bad_file_and_sees_its_score(site, page, tmp_path) -> None:
    token = site.token("Crystal Gazers")
    key = solution_frame(site.competition)
    _login(page, site, token)
    assert page.url.endswith("/team")
    assert "Left today: 5" in page.inner_text(".quota")

    bad = key[["id", "bravais_lattice"]].iloc[2:].copy()
    bad.iloc[0, 1] = "hexagonal"
    page.set_input_files("input[name=file]", str(_write(bad, tmp_path / "bad.csv")))
    page.click("button:has-text('Upload and score')")
    problems = page.locator("ul.problems li").all_inner_texts()
    assert len(problems) == 2, problems  # missing ids and the unknown label, at once
    assert any("missing" in p for p in problems) and any("hexagonal" in p for p in problems)

    page.goto(f"{site.url}/team")
    good = key[["id", "bravais_lattice"]]
    page.set_input_files("input[name=file]", str(_write(good, tmp_path / "good.csv")))
    page.fill("input[name=message]", "the answer key, for the test")
    page.click("button:has-text('Upload and score')")
    assert "Public accuracy 100.00 %" in page.inner_text(".score")
    assert page.locator("table.recall tbody tr").count() >= 2
    assert "Left today: 4 scored submissions" in page.inner_text(".quota")

    page.click("text=Leaderboard")
    row = page.locator("table.board tr", has_text="Crystal Gazers")
    assert row.count() == 1 and "100.00" in row.inner_text()
    assert page.locator("tr.kind-baseline").count() >= 1  # the baselines, badged
    assert page.locator(".badge.baseline").count() >= 1

    page.goto(f"{site.url}/team")  # pick the scored one for the final ranking
    page.check("input[name=submission_id]")
    page.click("button:has-text('Save final picks')")
    assert "final picks are saved" in page.inner_text("main")
    assert page.is_checked("input[name=submission_id]")


def test_a_script_in_a_team_name_stays_text(site, page, tmp_path) -> None:
    name = "<img src=x onerror=alert('xss')>"
    token = site.token(name)
    _login(page, site, token)
    page.set_input_files("input[name=file]", str(_write(
        solution_frame(site.competition)[["id", "bravais_lattice"]], tmp_path / "s.csv")))
    page.fill("input[name=message]", "<script>alert('message')</script>")
    page.click("button:has-text('Upload and score')")
    for path in ("/leaderboard", "/team"):
        page.goto(site.url + path)
        assert name in page.inner_text("main")  # shown as the characters it is
        assert page.locator("main img[src=x]").count() == 0
    assert page.dialogs == []


def test_private_scores_appear_only_after_the_organisers_close(site, page, tmp_path) -> None:
    key = solution_frame(site.competition)
    # Right on every Private row only: Public 0 %, Private 100 %.
    wrong = key["bravais_lattice"].map(lambda v: "aP" if v != "aP" else "cF")
    labels = key["bravais_lattice"].where(key["Usage"] != "Public", wrong)
    submission = pd.DataFrame({"id": key["id"], "bravais_lattice": labels})
    _login(page, site, site.token("Late Bloomers"))
    page.set_input_files("input[name=file]", str(_write(submission, tmp_path / "s.csv")))
    page.click("button:has-text('Upload and score')")
    assert "Public accuracy 0.00 %" in page.inner_text(".score")
    for path in ("/leaderboard", "/team", "/"):
        page.goto(site.url + path)
        assert "100.00" not in page.content()
    page.goto(f"{site.url}/leaderboard/private")
    assert "hidden until the competition closes" in page.inner_text("main")
    page.click("button:has-text('Log out')")

    _login(page, site, site.cli("teams", "admin").strip().rsplit(" ", 1)[-1])
    assert page.url.endswith("/admin")
    page.click("button:has-text('Close the competition now')")
    # The confirmation box is required: the browser sends nothing without it.
    assert "The competition is open" in page.inner_text("main")
    page.check("input[name=confirm]")
    page.click("button:has-text('Close the competition now')")
    assert "closed at" in page.inner_text("main")
    page.click("nav >> text=Private leaderboard")
    row = page.locator("table.board tr", has_text="Late Bloomers")
    assert "100.00" in row.inner_text()
    page.goto(f"{site.url}/leaderboard")
    assert "see the private leaderboard" in page.inner_text("main")
