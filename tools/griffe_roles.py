"""A griffe extension: Sphinx roles in docstrings read as code, and each must resolve.

The docstrings follow numpydoc and name objects with Sphinx roles
(``:func:`~scoring.grade.grade```). mkdocstrings does not read roles, so the site
would show them raw; this turns each into inline code of the name as a reader
would write it (``grade`` for ``~scoring.grade.grade``).

A role whose target names nothing (a renamed function, a typo, a name broken over
two lines) is logged as a warning, which fails ``mkdocs build --strict``;
:func:`unresolved_roles` gives the same list for a test over every package.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import logging
import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|data|attr|obj|exc|const):`(~?)([^`]+)`")
_TITLED = re.compile(r"^.*<([^>]+)>$", re.DOTALL)
log = logging.getLogger("mkdocs.plugins.griffe_roles")


def _plain(match: re.Match[str]) -> str:
    short, name = match.group(1), _target(match.group(2))
    return f"`{name.rsplit('.', 1)[-1] if short else name}`"


def _target(text: str) -> str:
    """The dotted name a role points at (``title <target>`` gives ``target``)."""
    titled = _TITLED.match(text)
    return (titled.group(1) if titled else text).strip()


def _imports(path: str) -> bool:
    """Whether ``path`` names a module, or an attribute (or annotated field) in one."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for k, part in enumerate(parts[cut:], start=cut):
            if not hasattr(found, part):
                # A dataclass field or an annotated attribute without a default.
                return k == len(parts) - 1 and part in getattr(found, "__annotations__", {})
            found = getattr(found, part)
        return True
    return False


def _in_collection(obj: griffe.Object, path: str) -> bool:
    """Whether griffe has loaded an object at ``path`` (members it found statically)."""
    try:
        obj.modules_collection[path]
    except (KeyError, ValueError, AttributeError, griffe.AliasResolutionError):
        return False
    return True


def resolves(obj: griffe.Object, text: str) -> bool:
    """Whether a role's target, read from ``obj``'s docstring, names a Python object.

    Tried in order: a builtin; the name as written from the top; its first part
    resolved in ``obj``'s scope (its imports and members, then its parents'); the
    name relative to ``obj`` and to each object that contains it.
    """
    name = _target(text)
    if not re.fullmatch(r"[A-Za-z_][\w.]*", name):
        return False
    if name in dir(builtins):
        return True
    head, _, rest = name.partition(".")
    candidates = [name]
    # griffe raises several kinds of error for a name outside its scope.
    with contextlib.suppress(Exception):
        candidates.append(obj.resolve(head) + (f".{rest}" if rest else ""))
    scope: griffe.Object | None = obj
    while scope is not None:
        candidates.append(f"{scope.path}.{name}")
        scope = scope.parent
    return any(_in_collection(obj, path) or _imports(path) for path in candidates)


def roles(docstring: str) -> list[str]:
    """The targets of every role in a docstring, as written."""
    return [match.group(2) for match in _ROLE.finditer(docstring)]


def unresolved_roles(obj: griffe.Object) -> list[str]:
    """Each role in the docstrings of ``obj`` and its members that names nothing.

    As ``"path: 'target'"``, where ``path`` is the object whose docstring has it.
    """
    found = []
    if obj.docstring is not None:
        found += [f"{obj.path}: {text!r}" for text in roles(obj.docstring.value)
                  if not resolves(obj, text)]  # fmt: skip
    for member in obj.members.values():
        if not member.is_alias:
            found += unresolved_roles(member)
    return found


class SphinxRoles(griffe.Extension):
    """Check each role of a docstring griffe loads, then rewrite it as inline code."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Warn about the roles of one object's docstring that name nothing; rewrite them all."""
        if obj.docstring is None:
            return
        for text in roles(obj.docstring.value):
            if not resolves(obj, text):
                log.warning("%s: the docstring names %r, which does not resolve", obj.path, text)
        obj.docstring.value = _ROLE.sub(_plain, obj.docstring.value)
