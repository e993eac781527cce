"""What users read: the README's size, no internal words, and the generated reference pages."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Words of the team's own tracking, which mean nothing to a user.
INTERNAL = re.compile(
    r"\bissues? #?\d+|\b(this|that) issue\b|\bissue's\b|still open|this session|"
    r"\bstop \d+\b|\bTODO\b|\bFIXME\b",
    re.IGNORECASE,
)


def _user_texts() -> dict[str, str]:
    """Every text a user reads, by name.

    The README, the docs, the kit's texts, the web pages, and the generated
    command-line and API references.
    """
    sys.path.insert(0, str(ROOT))
    from tools.docs_reference import api_reference, cli_reference

    paths = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")),
             *sorted((ROOT / "starter_kit").glob("*.md")),
             *sorted((ROOT / "xrd_bravais" / "web" / "templates").glob("*.html"))]  # fmt: skip
    texts = {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in paths}
    texts["reference/cli.md (generated)"] = cli_reference()
    texts["reference/api.md (generated)"] = api_reference()
    return texts


def test_no_internal_words_anywhere_users_read() -> None:
    found = [
        f"{name}:{text[: m.start()].count(chr(10)) + 1}: {m.group(0)!r}"
        for name, text in _user_texts().items()
        for m in INTERNAL.finditer(text)
    ]
    assert found == [], "\n".join(found)


def test_the_check_catches_internal_words() -> None:
    for sentence in ("as issue 31 asks", "The issue's target", "(still open)", "In this session",
                     "stop 38 landed"):  # fmt: skip
        assert INTERNAL.search(sentence), sentence
    for sentence in ("the issue of the day", "an open question", "a beamstop 2"):
        assert not INTERNAL.search(sentence), sentence


def test_the_readme_fits_on_a_screen_and_starts_with_the_two_commands() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150
    block = lines[lines.index("```bash") + 1:][:2]
    assert block[0].startswith("make demo") and block[1].startswith("make test")
    for link in re.findall(r"\]\((docs/[^)#]+)", "\n".join(lines)):
        assert (ROOT / link).is_file(), link


def test_the_cli_reference_has_every_command_and_its_options() -> None:
    import typer

    from tools.docs_reference import cli_reference
    from xrd_bravais.cli import app

    page = cli_reference()
    root = typer.main.get_command(app)
    ctx = root.make_context("xrd-bravais", [], resilient_parsing=True)
    for name in root.list_commands(ctx):
        assert f"## xrd-bravais {name}" in page, name
    assert "## xrd-bravais baselines run" in page and "## xrd-bravais teams add" in page
    section = page.split("## xrd-bravais integrity")[1].split("\n## ")[0]
    assert "`--shared-errors <float range>`" in section and "[default: 0.6" in section


def test_the_api_reference_lists_every_route() -> None:
    pytest.importorskip("fastapi")
    from tools.docs_reference import api_reference
    from xrd_bravais.web.api import router

    page = api_reference()
    for route in router.routes:
        for method in route.methods:  # type: ignore[attr-defined]
            assert f"| {method} | `{route.path}` |" in page, (method, route.path)  # type: ignore[attr-defined]
    assert "### Submission" in page and "`released`" in page


PACKAGES = ("scoring", "competition", "baselines", "starter_kit", "xrd_bravais", "benchmarks")


def test_every_role_in_a_docstring_names_an_object() -> None:
    """A renamed function, a typo or a name broken over two lines fails here and in make docs."""
    griffe = pytest.importorskip("griffe")
    sys.path.insert(0, str(ROOT))
    from tools.griffe_roles import unresolved_roles

    found = []
    for package in PACKAGES:
        found += unresolved_roles(griffe.load(package, search_paths=[str(ROOT)]))
    assert found == []


def test_the_role_check_catches_a_name_that_resolves_nowhere(tmp_path: Path) -> None:
    griffe = pytest.importorskip("griffe")
    sys.path.insert(0, str(ROOT))
    from tools.griffe_roles import SphinxRoles, unresolved_roles

    code = '''"""See :func:`helper`, :class:`Thing`, :meth:`Thing.run` and :func:`len`."""

def helper():
    """Calls :func:`scoring.grade.grade` and :func:`scoring.grade.nowhere`; :data:`LIMIT`."""


class Thing:
    """Run it with :meth:`run`, not :meth:`walk`; see :class:`SubmissionError`."""

    def run(self):
        """Like :meth:`~Thing.run`, broken over lines: :func:`scoring.grade.
        grade`."""
'''
    (tmp_path / "toy.py").write_text(code)
    module = griffe.load("toy", search_paths=[str(tmp_path)])
    assert unresolved_roles(module) == [
        "toy.helper: 'scoring.grade.nowhere'", "toy.helper: 'LIMIT'",
        "toy.Thing: 'walk'", "toy.Thing: 'SubmissionError'",
        "toy.Thing.run: 'scoring.grade.\\ngrade'",
    ]  # fmt: skip
    # On the site each role reads as code, short where the role asked for it.
    rewritten = griffe.load("toy", search_paths=[str(tmp_path)],
                            extensions=griffe.load_extensions(SphinxRoles))  # fmt: skip
    assert rewritten["Thing.run"].docstring.value.startswith("Like `run`, broken")
