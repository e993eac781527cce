"""MkDocs hooks: add the pages generated from the code (``tools/docs_reference.py``).

The command-line and JSON API references are built from the Typer application and
the FastAPI router each time the site is built, so they never drift from the code
and nothing generated is kept in ``docs/``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mkdocs.structure.files import File, Files

from tools.docs_reference import api_reference, cli_reference


def on_files(files: Files, config: Any) -> Files:
    """Add ``reference/cli.md`` and ``reference/api.md``, written from the code."""
    for path, content in (("reference/cli.md", cli_reference()),
                          ("reference/api.md", api_reference())):  # fmt: skip
        files.append(File.generated(config, path, content=content))
    return files
