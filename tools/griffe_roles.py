"""A griffe extension: Sphinx roles in docstrings read as code on the docs site.

The docstrings follow numpydoc and name objects with Sphinx roles
(``:func:`~scoring.grade.grade```). mkdocstrings does not read roles, so the site
would show them raw; this turns each into inline code of the name as a reader
would write it (``grade`` for ``~scoring.grade.grade``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|data|attr|obj|exc|const|ref):`(~?)([^`]+)`")


def _plain(match: re.Match[str]) -> str:
    short, name = match.group(1), match.group(2)
    return f"`{name.rsplit('.', 1)[-1] if short else name}`"


class SphinxRoles(griffe.Extension):
    """Rewrite ``:role:`name``` as ```name``` in every docstring griffe loads."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite the roles of one object's docstring."""
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(_plain, obj.docstring.value)
