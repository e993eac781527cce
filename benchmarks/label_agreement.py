"""How often spglib's space group agrees with the one declared in the CIF, per tolerance.

Parses every file once, runs spglib at each tolerance, and prints:

* agreement of the space group and of the Bravais lattice at each ``symprec``;
* every disagreement, classed by comparing the point-group orders of the group
  spglib found and the group the file declares:
  ``higher``  spglib found more symmetry (a supergroup: pseudo-symmetry within the
              tolerance, or a declared group lower than the atoms support),
  ``lower``   spglib found less (the atoms break the declared symmetry at this
              tolerance, typically disorder or a rounded coordinate),
  ``same``    same point-group order, different group (another centring or an
              enantiomorphic pair).

With ``--archive FILE`` (computed structures, which declare no group) it labels
every CIF of the archive at both tolerances instead, on ``--workers`` processes,
and prints per Bravais lattice (the label at 0.1, the archive source's default)
how many entries spglib puts in another lattice or space group at 0.01, and the
commonest changes.

Usage::

    .venv/bin/python -m benchmarks.label_agreement [--source cod_cifs|amcsd] [--n 600]
        [--markdown docs/labels.md]
    .venv/bin/python -m benchmarks.label_agreement --archive ../shared/data/mp/mp_cifs.tar.xz \
        [--n 0] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections import Counter
from functools import cache
from pathlib import Path

from competition.sources.catalog import RawEntry, amcsd_source, cod_dir_source
from competition.sources.structures import RejectError, parse_structure
from xrd_bravais.contract.labels import bravais_lattice

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TOLERANCES = (0.01, 0.1)


@cache
def point_group_order(number: int) -> int:
    """Order of the point group of space group ``number``."""
    from pymatgen.symmetry.groups import PointGroup, SpaceGroup

    return len(PointGroup(SpaceGroup.from_int_number(number).point_group).symmetry_ops)


def classify(found: int, declared: int) -> str:
    """Whether spglib found a higher, lower or the same symmetry as declared."""
    a, b = point_group_order(found), point_group_order(declared)
    return "higher" if a > b else "lower" if a < b else "same"


def spglib_number(structure, symprec: float) -> int | None:
    """The space group spglib finds for ``structure`` at ``symprec``, or None."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return int(SpacegroupAnalyzer(structure, symprec=symprec).get_space_group_number())
    except Exception:
        return None


def _both_tolerances(entry: RawEntry) -> tuple[str, int | None, int | None] | None:
    """``(entry id, group at 0.01, group at 0.1)`` of one CIF, or None if it does not parse."""
    from competition.lattice.worker import init_worker

    init_worker()
    try:
        parsed = parse_structure(entry.text, max_sites=500)
    except RejectError:
        return None
    low, high = (spglib_number(parsed.structure, tol) for tol in TOLERANCES)
    return entry.entry_id, low, high


def archive_table(archive: Path, n: int, workers: int) -> str:
    """Per lattice at 0.1: entries, and how many change lattice or group at 0.01."""
    import itertools
    import multiprocessing

    from competition.sources.archive import archive_source

    entries = (e for e in archive_source(archive).entries() if isinstance(e, RawEntry))
    if n:
        entries = itertools.islice(entries, n)
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        found = [r for r in pool.imap(_both_tolerances, entries, chunksize=64) if r]
    labelled = [(low, high) for _, low, high in found if low is not None and high is not None]
    per: dict[str, Counter] = {}
    changes: Counter = Counter()
    for low, high in labelled:
        lattice, other = bravais_lattice(high), bravais_lattice(low)
        counts = per.setdefault(lattice, Counter())
        counts["n"] += 1
        counts["group"] += low != high
        counts["lattice"] += other != lattice
        if other != lattice:
            changes[(other, lattice)] += 1
    from xrd_bravais.contract.labels import BRAVAIS_LATTICES

    lines = [
        f"Archive {archive.name}: {len(found)} structures parsed, {len(labelled)} labelled at "
        "both tolerances.", "",
        "| lattice at 0.1 | entries | other lattice at 0.01 | other space group at 0.01 |",
        "|---|---:|---:|---:|",
    ]  # fmt: skip
    total = Counter()
    for lattice in BRAVAIS_LATTICES:
        c = per.get(lattice, Counter())
        total.update(c)
        share = f"{100 * c['lattice'] / c['n']:.1f} %" if c["n"] else "-"
        lines.append(f"| {lattice} | {c['n']} | {c['lattice']} ({share}) | {c['group']} |")
    lines.append(f"| all | {total['n']} | {total['lattice']} "
                 f"({100 * total['lattice'] / max(total['n'], 1):.1f} %) | {total['group']} "
                 f"({100 * total['group'] / max(total['n'], 1):.1f} %) |")  # fmt: skip
    lines += ["", "Commonest changes (lattice at 0.01 -> at 0.1): " + ", ".join(
        f"{a}->{b} {k}" for (a, b), k in changes.most_common(8))]  # fmt: skip
    return "\n".join(lines)


def main() -> int:
    """Label every entry at both tolerances and print the agreement."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", choices=["cod_cifs", "amcsd"], default="cod_cifs")
    parser.add_argument("--n", type=int, default=600, help="entries (amcsd; archive: 0 = all)")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    parser.add_argument("--archive", type=Path, help="an archive of computed CIFs instead")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.archive is not None:
        text = archive_table(args.archive, args.n, args.workers)
        print(text)
        if args.markdown:
            args.markdown.write_text(text + "\n", encoding="utf-8")
        return 0
    source = (
        cod_dir_source(SHARED / "cod_cifs")
        if args.source == "cod_cifs"
        else amcsd_source().head(args.n)
    )
    rows = []
    for entry in source.entries():
        if not isinstance(entry, RawEntry):
            continue
        try:
            parsed = parse_structure(entry.text, max_sites=500)
        except RejectError:
            continue
        if parsed.declared_spacegroup is None:
            continue
        found = {tol: spglib_number(parsed.structure, tol) for tol in TOLERANCES}
        rows.append((entry.entry_id, parsed.structure.composition.reduced_formula,
                     parsed.declared_spacegroup, found))  # fmt: skip

    lines = [
        f"Source: {args.source}, {len(rows)} parseable entries that declare a space group.",
        "",
        "| symprec (A) | space group agrees | lattice agrees "
        "| spglib higher | lower | same order |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    details = []
    for tol in TOLERANCES:
        ok = [r for r in rows if r[3][tol] is not None]
        same_group = sum(r[3][tol] == r[2] for r in ok)
        same_lattice = sum(bravais_lattice(r[3][tol]) == bravais_lattice(r[2]) for r in ok)
        classes = Counter(classify(r[3][tol], r[2]) for r in ok if r[3][tol] != r[2])
        n = len(rows)
        lines.append(
            f"| {tol:g} | {same_group}/{n} ({100 * same_group / n:.1f} %) "
            f"| {same_lattice}/{n} ({100 * same_lattice / n:.1f} %) "
            f"| {classes['higher']} | {classes['lower']} | {classes['same']} |"
        )
        if len(ok) < n:
            lines.append(f"|  | spglib failed on {n - len(ok)} |  |  |  |  |")
    details += [
        "",
        "| entry | formula | declared | spglib 0.01 | spglib 0.1 | class at 0.1 |",
        "|---|---|---:|---:|---:|---|",
    ]
    for entry_id, formula, declared, found in rows:
        if found[0.01] != declared or found[0.1] != declared:
            at = found[0.1]
            cls = (
                "agrees" if at == declared else ("failed" if at is None else classify(at, declared))
            )
            details.append(
                f"| {entry_id} | {formula} | {declared} | {found[0.01]} | {at} | {cls} |"
            )
    text = "\n".join(lines + details)
    print(text)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
