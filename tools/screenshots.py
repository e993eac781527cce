"""Take the website's screenshots for the docs through the real server and Chromium.

Run from the repository root after ``make demo`` (Debian's ``chromium`` installed)::

    .venv/bin/python tools/screenshots.py                 # from demo/ into docs/assets/screens/
    .venv/bin/python tools/screenshots.py --competition comp --out /tmp/screens

It copies the competition's public and private parts (and its baselines) to a
temporary folder, opens three teams that submit the baselines' files, slightly
changed, over two weeks, copies one of them into a fourth team (so the integrity
page has something to show), serves it with ``xrd-bravais serve`` on 127.0.0.1 and
saves what a student and an organiser see: the login page, the leaderboard, the data
page, the team page, a submission's result, the admin page and the integrity report.
The pictures are made from the pages as they are, so they stay true as the pages change.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: find the project
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from scoring.leaderboard import Leaderboard
from scoring.teams import admin_token, reissue_team_token
from xrd_bravais.contract import layout

FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
TEAMS = {"Crystal Gazers": "xgboost", "Bragg Peakers": "random-forest", "Team Laue": "svm"}


def _changed(frame: pd.DataFrame, share: float, rng: np.random.Generator) -> pd.DataFrame:
    """A submission with ``share`` of its rows given another row's label."""
    out = frame.copy()
    rows = rng.random(len(out)) < share
    column = out.columns[1]
    out.loc[rows, column] = rng.permutation(out[column].to_numpy())[rows]
    return out


def prepare(source: Path, root: Path) -> tuple[Path, dict[str, str], str]:
    """A copy of the competition with a short course on it: teams, submissions, tokens."""
    comp = root / "comp"
    comp.mkdir(parents=True)
    for name in ("public", "private", layout.BASELINES):
        if (source / name).exists():
            shutil.copytree(source / name, comp / name)
    shutil.copy2(source / layout.MANIFEST, comp / layout.MANIFEST)
    files = {name: pd.read_csv(source / "submissions" / f"{name}.csv", dtype=str)
             for name in set(TEAMS.values()) | {"blend"}}  # fmt: skip
    rng = np.random.default_rng(0)
    start = datetime.now(UTC) - timedelta(days=14)
    tokens = {}
    with Leaderboard.open(comp) as board:
        board.set_rules(daily_quota=10)
        for offset, (title, name) in enumerate((("random forest", "random-forest"),
                                                 ("XGBoost", "xgboost"))):  # fmt: skip
            board.submit(files[name], title, baseline=True, now=start + timedelta(minutes=offset))
        for day in range(12):
            for k, (team, model) in enumerate(TEAMS.items()):
                if (day + k) % 3:
                    continue
                # Better over the course: less of the file changed, the blend at the end.
                model = "blend" if day >= 9 and k == 0 else model
                share = max(0.0, 0.3 - 0.03 * day)
                board.submit(_changed(files[model], share, rng), team, message=f"day {day + 1}",
                             now=start + timedelta(days=day, hours=9 + k))  # fmt: skip
        copied = _changed(files["random-forest"], 0.03, rng)
        board.submit(copied, "Second Account", now=start + timedelta(days=12))
        for team in [*TEAMS, "Second Account"]:
            tokens[team] = reissue_team_token(board, team)
        admin = admin_token(board)
    return comp, tokens, admin


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main(argv: list[str] | None = None) -> None:
    """Prepare a course, serve it, and save the screenshots."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--competition", "-c", type=Path, default=Path("demo"))
    parser.add_argument("--out", "-o", type=Path, default=Path("docs/assets/screens"))
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args(argv)
    if not (args.competition / "submissions").is_dir():
        sys.exit(f"{args.competition} has no baselines' files: run `make demo` first")
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        comp, tokens, admin = prepare(args.competition, Path(tmp))
        port = _port()
        exe = Path(sys.executable).with_name("xrd-bravais")
        server = subprocess.Popen([str(exe), "serve", "-c", str(comp), "--port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    urllib.request.urlopen(url + "/rules", timeout=2).close()
                    break
                except OSError:
                    time.sleep(0.2)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=args.chromium, args=FLAGS)
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                shots = []

                def shot(name: str, path: str, full_page: bool = True) -> None:
                    page.goto(url + path)
                    target = args.out / f"{name}.png"
                    page.screenshot(path=str(target), full_page=full_page)
                    shots.append(target)

                shot("login", "/login")
                shot("leaderboard", "/leaderboard")
                shot("data", "/data", full_page=False)  # the figure; the card runs on
                page.goto(url + "/login")
                page.fill("input[name=token]", tokens["Crystal Gazers"])
                page.click("button:has-text('Log in')")
                shot("team", "/team")
                with Leaderboard.open(comp) as board:
                    last = int(board.team_history("Crystal Gazers")["submission_id"].iloc[-1])
                shot("submission", f"/team/submissions/{last}")
                page.context.clear_cookies()
                page.goto(url + "/login")
                page.fill("input[name=token]", admin)
                page.click("button:has-text('Log in')")
                shot("admin", "/admin")
                shot("integrity", "/admin/integrity")
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    for target in shots:
        print(f"wrote {target}")


if __name__ == "__main__":
    main()
