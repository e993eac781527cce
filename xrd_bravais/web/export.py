"""Everything an organiser downloads: a consistent copy of the store and readable tables."""

from __future__ import annotations

import io
import os
import sqlite3
import tempfile
import zipfile
from datetime import datetime

from scoring.render import csv_safe
from xrd_bravais.contract.io import zip_member
from xrd_bravais.web.site import Site


def export_zip(site: Site) -> bytes:
    """A zip of ``leaderboard.sqlite`` (an online backup) and one CSV of submissions per track.

    The CSVs hold every column, hidden scores included (the organisers' view), with
    spreadsheet formulas defused in team names and messages; submissions of teams the
    organisers removed are included, marked in the ``removed`` column. Every member is
    stored owner-only (0600).
    """
    board = site.board()
    buffer = io.BytesIO()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = f"{site.name}-{stamp}"
    # Every member holds hidden scores (the store also the site's secret): owner-only.
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with tempfile.TemporaryDirectory() as tmp:
            copy = os.path.join(tmp, "leaderboard.sqlite")
            target = sqlite3.connect(copy)
            try:
                board.connection.backup(target)
            finally:
                target.close()
            with open(copy, "rb") as handle:
                archive.writestr(zip_member(f"{folder}/leaderboard.sqlite", private=True),
                                 handle.read())  # fmt: skip
        for track in site.task.track_names:
            frame = board.submissions(track, removed=True).drop(columns=["scores"])
            frame = frame.map(csv_safe)
            archive.writestr(zip_member(f"{folder}/submissions_{track}.csv", private=True),
                             frame.to_csv(index=False))  # fmt: skip
    return buffer.getvalue()
