"""The website's pictures: they load, and none shows a hidden figure before the close."""

from __future__ import annotations

import re
import shutil

import httpx
import pandas as pd
import pytest
from test_leaderboard import guess

pytest.importorskip("fastapi")


def _post(site, token: str, frame: pd.DataFrame) -> httpx.Response:
    return httpx.post(f"{site.url}/api/v1/submissions",
                      headers={"Authorization": f"Bearer {token}"},
                      files={"file": ("s.csv", frame.to_csv(index=False).encode(), "text/csv")},
                      data={"track": "bravais"}, timeout=60)  # fmt: skip


def _percents(svg: str) -> set[str]:
    """Every score a chart names (in its hover titles)."""
    return set(re.findall(r": (\d+\.\d) % at", svg))


def _login(site, token: str) -> httpx.Client:
    from test_website_api import _csrf

    client = httpx.Client(base_url=site.url, follow_redirects=False)
    client.post("/login", data={"token": token, "csrf_token": _csrf(client)})
    return client


def test_charts_show_public_scores_only_and_released_ones_under_the_ladder(site) -> None:
    site.cli("rules", "--public-board", "ladder", "--daily-quota", "10")
    alpha = site.token("alpha")
    model = guess(site.competition, 0.4, 0.9, seed=1)
    first = _post(site, alpha, model).json()
    # The same Public answers, every Private row right: not released, nothing shown of it.
    key = pd.read_csv(site.competition / "private" / "solution.csv")
    better = model.copy()
    private = (key["Usage"] == "Private").to_numpy()
    better.loc[private, "bravais_lattice"] = key.loc[private, "bravais_lattice"].to_numpy()
    hidden = _post(site, alpha, better).json()
    assert hidden["released"] is False
    board = httpx.get(f"{site.url}/leaderboard").text
    svg = board[board.index("<svg"):board.index("</svg>")]
    public = f"{100 * first['public']['accuracy']:.1f}"
    assert _percents(svg) == {public}  # the released score, at both submissions' times
    page = _login(site, alpha).get("/team").text
    mine = page[page.index("<svg"):page.index("</svg>")]
    assert _percents(mine) == {public}  # the unreleased score is not drawn
    assert private.any()
    for text in (svg, mine):  # nothing from the Private rows (90 % and 95 % right)
        assert not {p for p in _percents(text) if float(p) > 80}


def test_the_baselines_page_is_sorted_and_its_figure_loads(site) -> None:
    page = httpx.get(f"{site.url}/baselines").text
    names = re.findall(r'<td><a href="/baselines/bravais/[^"]+">([^<]+)</a></td>', page)
    scores = [float(s) for s in re.findall(r"</td>\s*<td>([\d.]+) %</td>\s*<td>[\d.]+</td>", page)]
    assert len(names) >= 2 and scores == sorted(scores, reverse=True)
    src = re.search(r'<img src="(/baselines/bravais/files/comparison\.png)"', page)
    assert src is not None
    image = httpx.get(site.url + src.group(1))
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"


def test_a_random_guess_appears_once_on_the_board(site) -> None:
    board = httpx.get(f"{site.url}/leaderboard").text
    # web_base runs the uniform guess as a baseline: its reference row is not repeated.
    assert board.count("random guess (uniform)") == 1
    assert "random guess: uniform" not in board
    assert "random guess: majority class" in board  # not run: its reference stays


@pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium (apt install chromium)")
def test_the_pictures_render_in_a_browser(site) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    from test_website_browser import CHROMIUM, FLAGS

    _post(site, site.token("alpha"), guess(site.competition, 0.5, 0.5, seed=1))
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page()
        failed: list[str] = []
        page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
        page.goto(f"{site.url}/leaderboard")
        box = page.locator("figure.chart svg").bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100
        for path, wanted in (("/baselines", "comparison.png"), ("/data", "overview.png")):
            page.goto(f"{site.url}{path}")
            loaded = page.evaluate(
                "() => [...document.images].map(i => [i.src, i.complete && i.naturalWidth > 0])"
            )
            assert loaded and all(ok for _, ok in loaded), loaded
            assert any(src.endswith(wanted) for src, _ in loaded), loaded
        browser.close()
    assert failed == []
