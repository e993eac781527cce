"""Where crystal structures come from: the first stage of a build.

Each source yields :class:`RawEntry` objects (an id, the COD id where known, the
place it came from and the CIF text). Five sources exist:

``amcsd``
    The ~9,300 mineral structures of the American Mineralogist Crystal Structure
    Database shipped inside the ``larixite`` package as an SQLite file, opened
    read-only (the embedded default: no network, no extra data).
``cod-dir``
    Any folder tree of ``*.cif`` files, a local COD mirror included.
``cod-ids``
    COD ids listed in a text file, downloaded from a COD server with an on-disk
    cache, retries with back-off and limited concurrency.
``generated``
    Random crystals for chosen space groups from pyxtal, seeded.
``archive``
    CIFs streamed from a ``.tar.xz``/``.tar.gz``/``.tar.bz2``/``.zip`` (or a folder):
    :mod:`competition.sources.archive`.

Over 400 lines: one module for every kind of source, because they share the
``Source`` and ``RawEntry`` types and the reject bookkeeping, and a reader looks
for a source here.
"""

from __future__ import annotations

import dataclasses
import gzip
import itertools
import json
import re
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from xrd_bravais.contract.io import atomic_write_bytes, sha256_file
from xrd_bravais.contract.layout import GENERATED_ENTRY_PREFIX


class SourceKind(StrEnum):
    """The kinds of source a build reads structures from (``--source``)."""

    amcsd = "amcsd"
    cod_dir = "cod-dir"
    cod_ids = "cod-ids"
    generated = "generated"
    archive = "archive"


DEFAULT_COD_URL: Final = "https://www.crystallography.net/cod"

_COD_CODE = re.compile(r"^\s*_cod_database_code\s+['\"]?(\d+)", re.MULTILINE)
_COD_FILE_STEM = re.compile(r"^\d{7}$")


class SourceError(RuntimeError):
    """A source cannot be read at all (missing folder, COD server unreachable ...)."""


@dataclass(frozen=True)
class RawEntry:
    """One structure as it comes from a source, before any parsing.

    Parameters
    ----------
    entry_id : str
        Unique within a build and stable across builds: ``amcsd:0000157``,
        ``cod:1000027``, ``file:sub/dir/name.cif`` or ``generated:sg225-0003``.
    cod_id : int or None
        The COD id where one is known.
    source_file : str
        Where the text came from (a path, or a database and row).
    text : str
        The CIF text.
    """

    entry_id: str
    cod_id: int | None
    source_file: str
    text: str


@dataclass(frozen=True)
class Rejected:
    """An input that was skipped, with the stage and the reason (a rejects.csv row)."""

    entry_id: str
    source_file: str
    stage: str
    reason: str
    kept_id: str = ""


@dataclass
class Source:
    """A named collection of raw entries.

    ``entries()`` may yield :class:`Rejected` for inputs that failed before
    parsing (a download that returned 404, say), so nothing is lost silently.
    It can be called any number of times; each call reads the source afresh.
    """

    kind: str
    description: dict[str, Any]
    _entries: Callable[[], Iterable[RawEntry | Rejected]]
    size: int | None = field(default=None)
    failure: Callable[[], str | None] = field(default=lambda: None)
    """After ``entries()`` is exhausted: why the source stopped early (an archive
    cut short), in one line, or ``None``; the entries before the break were yielded."""

    def entries(self) -> Iterator[RawEntry | Rejected]:
        """Yield every entry (or early rejection) of the source, in a stable order."""
        yield from self._entries()

    def head(self, n: int) -> Source:
        """The same source cut to its first ``n`` entries (for quick demos and tests)."""
        size = n if self.size is None else min(n, self.size)
        description = {**self.description, "limit": n}
        return Source(self.kind, description, lambda: itertools.islice(self.entries(), n), size,
                      self.failure)  # fmt: skip

    def prefixed(self, prefix: str) -> Source:
        """The same source with ``prefix`` before every entry id (``train-extra:mp-1.cif``).

        Keeps the ids of two sources apart in one build (two archives may both hold
        a ``1000000.cif``).
        """

        def entries() -> Iterator[RawEntry | Rejected]:
            for entry in self.entries():
                yield dataclasses.replace(entry, entry_id=f"{prefix}:{entry.entry_id}")

        description = {**self.description, "prefix": prefix}
        return Source(self.kind, description, entries, self.size, self.failure)

    @property
    def label(self) -> str:
        """A short name of the source for each row: its kind, and its file or folder's name."""
        where = next((self.description[k] for k in ("path", "root") if k in self.description),
                     None)  # fmt: skip
        return f"{self.kind}:{Path(where).name}" if where else str(self.kind)


def decode_cif_bytes(data: bytes) -> str:
    """Decode a CIF file: gunzip if compressed, UTF-8 if valid, else Latin-1.

    Old COD entries are Latin-1; CIF 2.0 is UTF-8. Latin-1 decodes any byte string,
    so this never fails; a file that is not a CIF is rejected by the parser.
    """
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def cod_id_from(text: str, path: Path | None = None) -> int | None:
    """COD id from ``_cod_database_code``, else from a file name such as ``1000027.cif``."""
    match = _COD_CODE.search(text)
    if match:
        return int(match.group(1))
    if path is not None and _COD_FILE_STEM.match(path.stem):
        return int(path.stem)
    return None


# --------------------------------------------------------------------------- cod-dir


def cod_dir_source(root: str | Path) -> Source:
    """Every ``*.cif`` (or ``*.cif.gz``) below ``root``, in sorted path order.

    Works on a local COD mirror (``cif/1/00/00/1000000.cif``) as on any folder.

    Raises
    ------
    SourceError
        If ``root`` is not a folder or holds no CIF file.
    """
    root = Path(root)
    if not root.is_dir():
        raise SourceError(f"--input {root} is not a folder; give a folder that holds *.cif files")
    paths = sorted(
        p for p in root.rglob("*") if p.is_file() and p.name.lower().endswith((".cif", ".cif.gz"))
    )
    if not paths:
        raise SourceError(f"no *.cif file found below {root}")

    def entries() -> Iterator[RawEntry | Rejected]:
        for path in paths:
            rel = path.relative_to(root).as_posix()
            try:
                text = decode_cif_bytes(path.read_bytes())
            except (OSError, EOFError, gzip.BadGzipFile) as err:
                yield Rejected(f"file:{rel}", str(path), "read", f"cannot read file: {err}")
                continue
            yield RawEntry(f"file:{rel}", cod_id_from(text, path), str(path), text)

    kind = SourceKind.cod_dir
    return Source(kind, {"kind": kind.value, "root": str(root.resolve())}, entries, len(paths))


# --------------------------------------------------------------------------- amcsd


def amcsd_database_path() -> Path:
    """Path of the AMCSD SQLite file shipped by ``larixite``, found without importing it.

    Importing larixite pulls in sqlalchemy and xraydb; only the file is needed.
    """
    from importlib.util import find_spec

    spec = find_spec("larixite")
    if spec is None or spec.origin is None:
        raise SourceError(
            "the amcsd source needs the larixite package: pip install 'xrd-bravais[build]'"
        )
    path = Path(spec.origin).parent / "amcsd_cif1.db"
    if not path.is_file():
        raise SourceError(f"larixite is installed but its database {path} is missing")
    return path


def open_readonly(path: Path) -> sqlite3.Connection:
    """Open an SQLite file read-only (``mode=ro``): the installed file is never altered."""
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    return con


_AMCSD_QUERY: Final = """
SELECT cif.*, minerals.name AS mineral, spacegroups.hm_notation AS hm,
       spacegroups.symmetry_xyz AS symops
FROM cif
LEFT JOIN minerals ON minerals.id = cif.mineral_id
LEFT JOIN spacegroups ON spacegroups.id = cif.spacegroup_id
ORDER BY cif.id
"""


def amcsd_source(db_path: Path | None = None) -> Source:
    """The AMCSD mineral structures shipped by larixite, as CIF text, by AMCSD id.

    Parameters
    ----------
    db_path : Path, optional
        Another copy of the database; default the one inside larixite.
    """
    path = db_path or amcsd_database_path()
    con = open_readonly(path)
    try:
        size = con.execute("SELECT count(*) FROM cif").fetchone()[0]
    finally:
        con.close()

    def entries() -> Iterator[RawEntry | Rejected]:
        con = open_readonly(path)
        try:
            for row in con.execute(_AMCSD_QUERY):
                entry_id = f"amcsd:{row['id']:07d}"
                where = f"{path.name}#cif.id={row['id']}"
                try:
                    text = amcsd_row_to_cif(row)
                except (ValueError, TypeError, KeyError) as err:
                    yield Rejected(entry_id, where, "read", f"cannot decode database row: {err}")
                    continue
                yield RawEntry(entry_id, None, where, text)
        finally:
            con.close()

    description = {"kind": "amcsd", "database": str(path), "sha256": sha256_file(path)}
    return Source(SourceKind.amcsd, description, entries, size)


def _cif_value(value: Any) -> str:
    text = str(value).strip()
    if text in ("", "<missing>", "None"):
        return "?"
    return f"'{text}'" if re.search(r"\s", text) else text


def amcsd_row_to_cif(row: sqlite3.Row) -> str:
    """Write one AMCSD database row as a CIF 1.1 data block.

    Coordinates and displacement parameters (isotropic ``U``, and the diagonal of
    the anisotropic tensor where a row has one) are stored packed; larixite's
    ``get_optarray`` unpacks them.
    """
    from larixite.amcsd_utils import get_optarray

    labels = json.loads(row["atoms_sites"]) if row["atoms_sites"] not in (None, "0") else []
    columns = {"fract_x": "atoms_x", "fract_y": "atoms_y", "fract_z": "atoms_z"}
    optional = {"occupancy": "atoms_occupancy", "U_iso_or_equiv": "atoms_u_iso"}
    values = {tag: get_optarray(row[col]) for tag, col in columns.items()}
    values |= {
        tag: get_optarray(row[col]) for tag, col in optional.items() if row[col] not in (None, "0")
    }
    lines = [
        f"data_amcsd_{row['id']:07d}",
        f"_database_code_amcsd {row['id']:07d}",
        f"_chemical_name_mineral {_cif_value(row['mineral'])}",
        f"_chemical_formula_sum {_cif_value(row['formula'])}",
    ]
    for tag in ("a", "b", "c"):
        lines.append(f"_cell_length_{tag} {_cif_value(row[tag])}")
    for tag in ("alpha", "beta", "gamma"):
        lines.append(f"_cell_angle_{tag} {_cif_value(row[tag])}")
    lines.append(f"_symmetry_space_group_name_H-M {_cif_value(row['hm'].split('%var')[0])}")
    lines += ["loop_", "_space_group_symop_operation_xyz"]
    lines += [f"'{op}'" for op in json.loads(row["symops"])]
    lines += ["loop_", "_atom_site_label", *(f"_atom_site_{tag}" for tag in values)]
    for i, label in enumerate(labels):
        lines.append(" ".join([_cif_value(label), *(str(v[i]) for v in values.values())]))
    lines += _aniso_loop(row)
    return "\n".join(lines) + "\n"


def _aniso_loop(row: sqlite3.Row) -> list[str]:
    """The anisotropic displacement loop of a row (the Debye-Waller factor of its sites)."""
    from larixite.amcsd_utils import get_optarray

    if row["atoms_aniso_u11"] in (None, "0") or row["atoms_aniso_label"] in (None, "0"):
        return []
    labels = json.loads(row["atoms_aniso_label"])
    tensor = [get_optarray(row[f"atoms_aniso_u{ij}"]) for ij in ("11", "22", "33")]
    if not isinstance(labels, list) or any(len(t) != len(labels) for t in tensor):
        return []
    lines = ["loop_", "_atom_site_aniso_label",
             *(f"_atom_site_aniso_U_{ij}" for ij in ("11", "22", "33"))]  # fmt: skip
    lines += [" ".join([_cif_value(label), *(str(t[i]) for t in tensor)])
              for i, label in enumerate(labels)]  # fmt: skip
    return lines


# --------------------------------------------------------------------------- cod-ids


def read_cod_ids(path: str | Path) -> list[int]:
    """COD ids from a text file: one per line (or separated by commas or spaces).

    Blank lines and ``#`` comments are ignored; duplicates are dropped, first kept.

    Raises
    ------
    SourceError
        If the file is missing, holds something that is not a 7-digit id, or no id.
    """
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"--input {path} is not a file; give a text file with one COD id a line")
    ids: dict[int, None] = {}
    bad: list[str] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        for token in re.split(r"[\s,;]+", line.split("#", 1)[0].strip()):
            if not token:
                continue
            if token.isdigit() and len(token) == 7:
                ids.setdefault(int(token), None)
            else:
                bad.append(token)
    if bad:
        raise SourceError(
            f"{path} holds {len(bad)} token(s) that are not 7-digit COD ids "
            f"(first 3: {', '.join(bad[:3])}); write one id such as 1000027 a line"
        )
    if not ids:
        raise SourceError(f"{path} lists no COD id")
    return list(ids)


@dataclass(frozen=True)
class DownloadSettings:
    """How CIFs are fetched from a COD server.

    Parameters
    ----------
    url : str
        Base URL; a file is fetched from ``{url}/{cod_id}.cif``.
    cache_dir : Path
        Downloaded files are kept here and never fetched twice.
    workers : int
        Concurrent downloads (be gentle with the public server).
    retries : int
        Extra attempts after a connection error, time-out or HTTP 5xx/429.
    backoff : float
        Seconds before the first retry; doubled at each further one.
    timeout : float
        Seconds per request.
    """

    url: str = DEFAULT_COD_URL
    cache_dir: Path = Path(".cache/cod")
    workers: int = 4
    retries: int = 3
    backoff: float = 1.0
    timeout: float = 30.0


class _Unreachable(Exception):
    """The server could not be reached at all (connection refused, DNS, time-out)."""


def _fetch(url: str, settings: DownloadSettings) -> bytes:
    """GET ``url`` with retries; raise HTTPError for 4xx, _Unreachable when all tries fail."""
    delay = settings.backoff
    for attempt in range(settings.retries + 1):
        try:
            with urllib.request.urlopen(url, timeout=settings.timeout) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as err:
            if err.code < 500 and err.code != 429:
                raise
            last: Exception = err
        except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
            last = err
        if attempt < settings.retries:
            time.sleep(delay)
            delay *= 2
    if isinstance(last, urllib.error.HTTPError):
        raise last
    raise _Unreachable(str(getattr(last, "reason", last)))


def download_cod_cif(cod_id: int, settings: DownloadSettings) -> Path:
    """Fetch one COD CIF into the cache (atomically) unless it is there already.

    Returns
    -------
    Path
        The cached file.

    Raises
    ------
    urllib.error.HTTPError
        For a client error such as 404 (not retried).
    _Unreachable
        When the server cannot be reached after all retries.
    """
    target = Path(settings.cache_dir) / f"{cod_id}.cif"
    if target.is_file():
        return target
    data = _fetch(f"{settings.url.rstrip('/')}/{cod_id}.cif", settings)
    atomic_write_bytes(target, data)
    return target


def cod_ids_source(
    ids: Sequence[int], settings: DownloadSettings, progress: bool = True
) -> Source:
    """COD entries downloaded by id (cached on disk), as a source.

    Files are downloaded up front with ``settings.workers`` threads, under a
    progress bar unless ``progress`` is false; an id the server does not have
    (HTTP 404) becomes a rejection, not an error.

    Raises
    ------
    SourceError
        If none of the ids that had to be downloaded (those not in the cache)
        could reach the server: the message names the URL, so that an offline
        machine fails fast instead of building from its cache alone. When only
        some requests fail, those ids become rejections.
    """
    from tqdm.auto import tqdm

    def one(cod_id: int) -> tuple[int, Path | None, str | None, bool]:
        """(id, cached file or None, error, whether the server was unreachable)."""
        try:
            return cod_id, download_cod_cif(cod_id, settings), None, False
        except urllib.error.HTTPError as err:
            return cod_id, None, f"download failed: HTTP {err.code} {err.reason}", False
        except _Unreachable as err:
            return cod_id, None, f"download failed: server unreachable ({err})", True

    cache_dir = Path(settings.cache_dir)
    needed = {cod_id for cod_id in ids if not (cache_dir / f"{cod_id}.cif").is_file()}

    with ThreadPoolExecutor(max_workers=max(1, settings.workers)) as pool:
        results = list(
            tqdm(
                pool.map(one, ids), total=len(ids), desc="download", unit="cif", leave=False,
                disable=not progress,
            )
        )
    attempted = [r for r in results if r[0] in needed]
    if attempted and all(unreachable for *_, unreachable in attempted):
        raise SourceError(
            f"cannot reach the COD server at {settings.url} ({attempted[0][2]}); "
            f"{len(attempted)} of {len(ids)} ids are not cached. Check the network or "
            "--cod-url, or use --source cod-dir on a local mirror"
        )

    def entries() -> Iterator[RawEntry | Rejected]:
        for cod_id, path, error, _ in results:
            where = f"{settings.url.rstrip('/')}/{cod_id}.cif"
            if path is None:
                yield Rejected(f"cod:{cod_id}", where, "download", error or "download failed")
                continue
            text = decode_cif_bytes(path.read_bytes())
            yield RawEntry(f"cod:{cod_id}", cod_id, where, text)

    description = {"kind": "cod-ids", "url": settings.url, "n_ids": len(ids)}
    return Source(SourceKind.cod_ids, description, entries, len(ids))


# --------------------------------------------------------------------------- generated

# Two space groups per Bravais lattice, chosen to be quick for pyxtal.
DEFAULT_GENERATED_SPACEGROUPS: Final = (
    1, 2, 4, 14, 5, 12, 19, 62, 20, 63, 23, 71, 22, 69,
    76, 129, 79, 139, 146, 166, 152, 194, 198, 221, 197, 229, 196, 225,
)  # fmt: skip

_GENERATED_SPECIES: Final = (("Na", "Cl"), ("Mg", "O"), ("Si", "O"), ("Ti", "O"), ("Zn", "S"))


DEFAULT_N_GENERATED: Final = 56
"""Generated crystals by default: two per default space group."""


def generated_source(
    n: int = DEFAULT_N_GENERATED,
    spacegroups: Sequence[int] = DEFAULT_GENERATED_SPACEGROUPS,
    seed: int = 0,
    prefix: str = "generated",
) -> Source:
    """Random crystals from pyxtal, cycling through ``spacegroups``, seeded.

    Entry ids are ``<prefix>:sgNNN-KKKK``.

    Entry ``k`` uses space group ``spacegroups[k % len(spacegroups)]``, a binary
    composition from a fixed list and the random state ``seed * 100003 + k``, so
    the same arguments give the same crystals. pyxtal sometimes fails to place the
    atoms; such an entry is reported as rejected.
    """
    if n < 1:
        raise SourceError("--n-generated must be at least 1")

    def entries() -> Iterator[RawEntry | Rejected]:
        for k in range(n):
            group = int(spacegroups[k % len(spacegroups)])
            entry_id = f"{prefix}:sg{group:03d}-{k:04d}"
            try:
                text = generated_cif(group, k, seed)
            except Exception as err:  # pyxtal raises many kinds of errors
                yield Rejected(entry_id, "pyxtal", "generate", f"pyxtal failed: {err}")
                continue
            yield RawEntry(entry_id, None, "pyxtal", text)

    description = {"kind": "generated", "n": n, "spacegroups": list(spacegroups), "seed": seed}
    if prefix != "generated":
        description["prefix"] = prefix
    return Source(SourceKind.generated, description, entries, n)


RARE_LATTICES: Final = ("aP", "oS", "oI", "oF")
"""The lattices with the fewest minerals in AMCSD (and in COD): ``--train-generated``'s default."""


def rare_lattice_source(n: int, lattices: Sequence[str] = RARE_LATTICES, seed: int = 0) -> Source:
    """Random crystals (pyxtal) for the training split, the same number per lattice.

    Entry ``k`` belongs to lattice ``lattices[k % len(lattices)]`` and cycles through
    that lattice's space groups, so a lattice with two groups (aP) gets as many
    crystals as one with fifteen. The seed is offset from the build's so that a
    generated main source and its extras never share a crystal.
    """
    from xrd_bravais.contract.labels import BRAVAIS_LATTICES, SPACEGROUP_NUMBERS, bravais_lattice

    unknown = [lattice for lattice in lattices if lattice not in BRAVAIS_LATTICES]
    if unknown or not lattices:
        raise SourceError(
            f"--train-generated-lattices takes Bravais lattices ({' '.join(BRAVAIS_LATTICES)}), "
            f"got {', '.join(unknown) or 'none'}"
        )
    groups = {lattice: [g for g in SPACEGROUP_NUMBERS if bravais_lattice(g) == lattice]
              for lattice in lattices}  # fmt: skip
    longest = max(len(g) for g in groups.values())
    order = [groups[lattice][j % len(groups[lattice])]
             for j in range(longest) for lattice in lattices]  # fmt: skip
    return generated_source(n=n, spacegroups=order, seed=seed + 1, prefix=GENERATED_ENTRY_PREFIX)


def generated_cif(group: int, k: int, seed: int) -> str:
    """CIF text of one random pyxtal crystal (see :func:`generated_source`)."""
    import numpy as np
    from pymatgen.io.cif import CifWriter
    from pyxtal import pyxtal
    from pyxtal.symmetry import Group

    species = list(_GENERATED_SPECIES[k % len(_GENERATED_SPECIES)])
    rng = np.random.default_rng(seed * 100003 + k)
    # Atom counts are drawn from the group's smallest Wyckoff multiplicities, which
    # keeps the cells small; pyxtal rejects a combination it cannot place.
    small = sorted({w.multiplicity for w in Group(group).Wyckoff_positions})[:3]
    crystal = pyxtal()
    for _ in range(20):
        counts = [int(c) for c in rng.choice(small, size=2)]
        try:
            crystal.from_random(3, group, species, counts, random_state=rng)
        except Exception:
            continue
        if crystal.valid:
            break
    else:
        raise RuntimeError(f"could not place {species} in space group {group}")
    text = str(CifWriter(crystal.to_pymatgen()))
    # CifWriter writes the full cell in P1 with its atoms listed one by one; declare
    # the generating group instead, as a CIF from a database would (the listed
    # x,y,z operator and atoms still give the same structure), so that the data
    # card's label agreement compares spglib with the group pyxtal used.
    symbol = Group(group).symbol
    text = re.sub(r"(?m)^_symmetry_Int_Tables_number\s+1$",
                  f"_symmetry_Int_Tables_number   {group}", text)  # fmt: skip
    return re.sub(r"(?m)^_symmetry_space_group_name_H-M\s+'P 1'$",
                  f"_symmetry_space_group_name_H-M   '{symbol}'", text)  # fmt: skip
