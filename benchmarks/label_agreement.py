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

Usage::

    .venv/bin/python -m benchmarks.label_agreement [--source cod_cifs|amcsd] [--n 600]
        [--markdown docs/labels.md]
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


def main() -> int:
    """Label every entry at both tolerances and print the agreement."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", choices=["cod_cifs", "amcsd"], default="cod_cifs")
    parser.add_argument("--n", type=int, default=600, help="entries (amcsd only)")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    args = parser.parse_args()
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
