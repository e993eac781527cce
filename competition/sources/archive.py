"""CIFs read straight from an archive: ``.tar.xz``, ``.tar.gz``, ``.tar.bz2``, ``.tar``, ``.zip``.

Large CIF collections travel packed: the Materials Project archive of
``../shared/data/mp`` (154,921 files in 51 MB), a packed COD mirror, a group's own
collection. :func:`archive_source` streams the members one at a time, never
unpacking to disk and never holding the archive in memory (a tar is read as a
stream, a zip member by member through its central directory), so a build of
any size reads it in the memory of one file.

Every ``*.cif`` or ``*.cif.gz`` member is an entry, ``archive:<member name>``;
other members (a README, folders) are passed over. A member that
cannot be read (a corrupt zip member, a broken gzip) is a reject with its reason
and the build goes on. An archive cut short (an interrupted download) stops the
source where it breaks: the members read so far are built and cached, and the
build then fails with one line (:attr:`competition.sources.catalog.Source.failure`),
so a rerun on the completed archive resumes from the cache.

A folder given as the archive is read as ``cod-dir`` reads one.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from competition.sources.catalog import (
    RawEntry,
    Rejected,
    Source,
    SourceError,
    SourceKind,
    cod_dir_source,
    cod_id_from,
    decode_cif_bytes,
)

SUFFIXES: Final = (".tar.xz", ".txz", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar", ".zip")
"""Archive names the source opens (a folder is read as ``cod-dir``)."""
MAX_MEMBER_BYTES: Final = 64 * 1024 * 1024
"""Largest member read: a CIF of 64 MB is a protein's, far beyond ``--max-sites``."""
_CIF_NAMES: Final = (".cif", ".cif.gz")
_BROKEN: Final = (tarfile.TarError, EOFError, lzma.LZMAError, zlib.error, OSError)


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """The sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _entry(name: str, data: bytes, where: str) -> RawEntry | Rejected:
    entry_id = f"archive:{name}"
    try:
        text = decode_cif_bytes(data)
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as err:
        return Rejected(entry_id, where, "read", f"cannot read member {name}: {err}")
    return RawEntry(entry_id, cod_id_from(text, Path(name)), where, text)


def _screen(name: str, is_file: bool, size: int, where: str) -> bool | Rejected:
    """Whether to read a member: ``True``, ``False`` (not a CIF) or a reject (too large)."""
    if not is_file or not name.lower().endswith(_CIF_NAMES):
        return False
    if size > MAX_MEMBER_BYTES:
        return Rejected(f"archive:{name}", where, "read",
                        f"member {name} is {size / 2**20:.0f} MiB; at most "
                        f"{MAX_MEMBER_BYTES / 2**20:.0f} MiB is read")  # fmt: skip
    return True


TOLERANCE_CHANGES: Final = {
    "54adbb8376285f26e4ab9e8734bb499f7ef8b975764342759116fef760018094": {
        "name": "the Materials Project archive (mp_cifs.tar.xz)",
        "labelled": 154908, "lattice": 4915, "spacegroup": 5950,
    },
}
"""Archives whose labels were computed at both spglib tolerances, by sha256: structures
labelled, and how many spglib at 0.01 A puts in another Bravais lattice or space group
than at 0.1 A (``python -m benchmarks.label_agreement --archive FILE --n 0``, measured
over the whole archive); DATA.md quotes them for a build from that archive."""


def _tar_entries(path: Path, state: dict[str, object]) -> Iterator[RawEntry | Rejected]:
    """Members of a tar (any compression), as a stream; a break is kept in ``state``."""
    n_read = 0
    try:
        with tarfile.open(path, "r|*") as tar:
            for member in tar:
                where = f"{path}#{member.name}"
                verdict = _screen(member.name, member.isfile(), member.size, where)
                if verdict is not True:
                    yield from [verdict] if isinstance(verdict, Rejected) else []
                    continue
                handle = tar.extractfile(member)
                data = handle.read() if handle is not None else b""
                n_read += 1
                # tarfile keeps every member's header it has read (tar.members): 155,000
                # of them would be memory that grows with the archive, and a stream
                # never goes back to them.
                tar.members.clear()
                yield _entry(member.name, data, where)
    except _BROKEN as err:
        state["failure"] = (
            f"--input {path}: the archive breaks after {n_read} CIF member(s) "
            f"({type(err).__name__}: {err}); those were built and cached, so rerunning "
            "the same command on the complete archive resumes from them"
        )


def _zip_entries(path: Path, state: dict[str, object]) -> Iterator[RawEntry | Rejected]:
    """Members of a zip in the order of its directory; a corrupt member is a reject."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        state["failure"] = f"--input {path}: not a readable zip ({err}): is it complete?"
        return
    with archive:
        for info in archive.infolist():
            where = f"{path}#{info.filename}"
            verdict = _screen(info.filename, not info.is_dir(), info.file_size, where)
            if verdict is not True:
                yield from [verdict] if isinstance(verdict, Rejected) else []
                continue
            try:
                data = archive.read(info)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as err:
                yield Rejected(f"archive:{info.filename}", where, "read",
                               f"corrupt member {info.filename}: {err}")  # fmt: skip
                continue
            yield _entry(info.filename, data, where)


def archive_source(path: str | Path) -> Source:
    """Every CIF member of an archive (or every CIF below a folder), streamed.

    Parameters
    ----------
    path : path
        A ``.tar.xz``, ``.tar.gz``, ``.tar.bz2``, ``.tar`` or ``.zip`` file, or a
        folder.

    Returns
    -------
    Source
        Of kind ``archive``; its description holds the archive's path, sha256 and
        size, and its ``failure()`` says where an archive cut short broke.

    Raises
    ------
    SourceError
        If ``path`` does not exist or is not an archive the source opens.
    """
    path = Path(path)
    if path.is_dir():
        folder = cod_dir_source(path)
        folder.description = {**folder.description, "kind": SourceKind.archive.value,
                              "read_as": SourceKind.cod_dir.value}  # fmt: skip
        folder.kind = SourceKind.archive
        return folder
    if not path.is_file():
        raise SourceError(f"--input {path} does not exist; give an archive of CIFs or a folder")
    name = path.name.lower()
    if not name.endswith(SUFFIXES):
        raise SourceError(
            f"--input {path}: not an archive this source opens ({', '.join(SUFFIXES)}); "
            "unpacked CIFs go in a folder"
        )
    is_zip = name.endswith(".zip")
    state: dict[str, object] = {}
    size = None
    if is_zip:
        try:
            with zipfile.ZipFile(path) as archive:
                names = [i.filename.lower() for i in archive.infolist() if not i.is_dir()]
        except (zipfile.BadZipFile, OSError) as err:
            message = f"--input {path}: not a readable zip ({err}): is it complete?"
            raise SourceError(message) from None
        size = sum(name.endswith(_CIF_NAMES) for name in names)

    def entries() -> Iterator[RawEntry | Rejected]:
        state.clear()
        yield from (_zip_entries(path, state) if is_zip else _tar_entries(path, state))

    def failure() -> str | None:
        value = state.get("failure")
        return None if value is None else str(value)

    kind = SourceKind.archive
    description = {
        "kind": kind.value,
        "path": str(path.resolve()),
        "sha256": sha256_of(path),
        "bytes": path.stat().st_size,
    }
    return Source(kind, description, entries, size, failure=failure)
