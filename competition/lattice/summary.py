"""What a build produced: counts, rejects and timings, for the command line and for tests.

Its own module so that the build, the manifest and the data card can all use it
without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from xrd_bravais.contract.labels import BRAVAIS_LATTICES
from xrd_bravais.contract.layout import MEASURED_SPLIT, SPLITS


@dataclass
class BuildSummary:
    """What a build produced, for the command line and for tests."""

    out: Path
    n_input: int
    n_accepted: int
    counts: dict[str, dict[str, int]]
    rejected_by_stage: dict[str, int]
    label_agreement: dict[str, Any]
    n_cached: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    measured_test: dict[str, Any] | None = None
    """Where the Measured portion came from (``build --measured-test``), else ``None``."""
    train_generated: dict[str, Any] | None = None
    """Extra training structures (``build --train-generated``): source, ``n``, per lattice."""
    train_extra: list[dict[str, Any]] = field(default_factory=list)
    """Other sources of training structures (``build --train-extra``), in order: label,
    kind, description, tolerance, entries read, accepted, ``n`` kept, per lattice."""

    def class_table(self) -> pd.DataFrame:
        """Structures per lattice and portion, with totals (rows in canonical order).

        A ``measured`` column (real measurements) follows the three splits where
        the build has a Measured portion.
        """
        table = pd.DataFrame(self.counts).reindex(BRAVAIS_LATTICES).fillna(0).astype(int)
        splits = [*SPLITS, *([MEASURED_SPLIT] if MEASURED_SPLIT in self.counts else [])]
        table = table.reindex(columns=splits, fill_value=0)
        table["total"] = table.sum(axis=1)
        table.loc["total"] = table.sum(axis=0)
        return table
