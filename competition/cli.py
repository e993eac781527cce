"""``xrd-bravais build``: the builder's command, a thin layer over :mod:`competition.lattice.build`.

It parses options and calls library functions with the same names; user errors
exit non-zero with one line on stderr, no traceback. The ``xrd-bravais``
application that registers it beside the other commands is :mod:`xrd_bravais.cli`.

Over 400 lines: most of it is the options of ``build`` (typer declares each with
its help), which stay together so ``build --help`` and the code read alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer

from competition.config import PRESETS, BuildConfig, symprec_for
from competition.sources.catalog import DEFAULT_COD_URL, DEFAULT_N_GENERATED, SourceKind
from xrd_bravais.contract.console import fail
from xrd_bravais.contract.labels import SPACEGROUP_NUMBERS

_AGG = "--task aggregates"

if TYPE_CHECKING:
    from competition.lattice.summary import BuildSummary
    from competition.sources.catalog import Source

# Option defaults come from BuildConfig, the one place that sets them.
DEFAULTS = BuildConfig()

def _parse_spacegroups(text: str) -> list[int]:
    try:
        numbers = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        fail(f"--spacegroups takes numbers separated by commas, got {text!r}")
    bad = [n for n in numbers if n not in SPACEGROUP_NUMBERS]
    if bad or not numbers:
        fail(f"--spacegroups must list numbers in 1..230, got {text!r}")
    return numbers


def _pattern_settings(preset: str, grid: str | None, fwhm: float | None) -> dict[str, object]:
    """``preset`` (and ``pattern``) for BuildConfig from --preset, --grid and --fwhm."""
    from dataclasses import replace

    from competition.config import CUSTOM_PRESET, PatternConfig

    if grid is None and fwhm is None:
        return {"preset": preset}
    if preset not in PRESETS:
        fail(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    pattern: PatternConfig = PRESETS[preset]
    if grid is not None:
        try:
            low, high, step = (float(part) for part in grid.split(":"))
        except ValueError:
            fail(f"--grid takes MIN:MAX:STEP in degrees, e.g. 10:80:0.05, got {grid!r}")
        pattern = replace(pattern, two_theta_min=low, two_theta_max=high, step=step)
    if fwhm is not None:
        pattern = replace(pattern, fwhm=fwhm)
    return {"preset": CUSTOM_PRESET, "pattern": pattern}


def _parse_ladder(text: str | None) -> tuple[float, ...]:
    if not text:
        return ()
    try:
        return tuple(float(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        fail(f"--symprec-ladder takes tolerances separated by commas, got {text!r}")


_EXTRA_KINDS: Final = ("archive", "cod-dir", "cod-ids")


def _parse_extra(text: str) -> tuple[SourceKind, Path]:
    """``KIND:PATH`` of ``--train-extra`` as a source kind and a path that exists."""
    kind, sep, path = text.partition(":")
    if not sep or kind not in _EXTRA_KINDS or not path:
        fail(f"--train-extra takes KIND:PATH with KIND one of {', '.join(_EXTRA_KINDS)} "
             f"(e.g. archive:mp_cifs.tar.xz), got {text!r}")  # fmt: skip
    if not Path(path).exists():
        fail(f"--train-extra {text}: {path} does not exist")
    return SourceKind(kind), Path(path)


def _make_source(
    kind: SourceKind,
    input_path: Path | None,
    limit: int | None,
    cod_url: str,
    cache_dir: Path,
    n_generated: int,
    spacegroups: str | None,
    seed: int,
    progress: bool = True,
) -> Source:
    from competition.sources import catalog as sources

    if kind in (SourceKind.cod_dir, SourceKind.cod_ids, SourceKind.archive) and input_path is None:
        fail(f"--source {kind.value} needs --input PATH")
    if kind is SourceKind.amcsd:
        source = sources.amcsd_source()
    elif kind is SourceKind.archive:
        from competition.sources.archive import archive_source

        source = archive_source(input_path)  # type: ignore[arg-type]
    elif kind is SourceKind.cod_dir:
        source = sources.cod_dir_source(input_path)  # type: ignore[arg-type]
    elif kind is SourceKind.cod_ids:
        ids = sources.read_cod_ids(input_path)  # type: ignore[arg-type]
        settings = sources.DownloadSettings(url=cod_url, cache_dir=cache_dir / "cod")
        # Cut the id list before downloading, not after.
        return sources.cod_ids_source(ids[:limit] if limit else ids, settings, progress)
    else:
        groups = _parse_spacegroups(spacegroups) if spacegroups else None
        kwargs = {"spacegroups": groups} if groups else {}
        source = sources.generated_source(n=n_generated, seed=seed, **kwargs)
    return source.head(limit) if limit else source


def build(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the competition to.")],
    source: Annotated[
        SourceKind, typer.Option(help="Where structures come from.")
    ] = SourceKind.amcsd,
    input_path: Annotated[
        Path | None,
        typer.Option(
            "--input", "-i",
            help="Folder of CIFs (cod-dir), file of COD ids (cod-ids), or an archive of CIFs "
            "(archive: .tar.xz, .tar.gz, .tar.bz2, .zip, or a folder).",
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Use only the first N entries of the source.")
    ] = None,
    cod_url: Annotated[
        str, typer.Option(help="COD server for --source cod-ids.")
    ] = DEFAULT_COD_URL,
    n_generated: Annotated[
        int, typer.Option(min=1, help="Crystals to generate with --source generated.")
    ] = DEFAULT_N_GENERATED,
    spacegroups: Annotated[
        str | None, typer.Option(help="Space groups for --source generated, e.g. '14,62,225'.")
    ] = None,
    preset: Annotated[
        str, typer.Option(help=f"Pattern grid: {', '.join(PRESETS)}.")
    ] = DEFAULTS.preset,
    profile: Annotated[
        str,
        typer.Option(
            help="Patterns: clean (ideal Gaussian peaks) or measured (drawn through the "
            "realism model: K-alpha doublet, peak shapes, shifts, texture, background, noise).",
        ),
    ] = DEFAULTS.profile,
    draws: Annotated[
        int,
        typer.Option(
            min=1,
            help="With --profile measured: patterns per training structure, each drawn "
            "with its own instrument, sample and noise (test structures are drawn once).",
        ),
    ] = DEFAULTS.draws,
    engine: Annotated[
        str,
        typer.Option(
            help="What computes the reflections: vectorised (array code, the default) or "
            "pymatgen (its XRDCalculator, the reference; same patterns within 1e-3).",
        ),
    ] = DEFAULTS.engine,
    reader: Annotated[
        str,
        typer.Option(
            help="How a CIF block becomes a structure: arrays (pymatgen's rules in array "
            "code, the default) or pymatgen (its CifParser throughout; same structures).",
        ),
    ] = DEFAULTS.reader,
    grid: Annotated[
        str | None,
        typer.Option(
            help="A grid of your own, MIN:MAX:STEP in degrees 2theta (e.g. 10:80:0.05); "
            "replaces the preset's.",
        ),
    ] = None,
    fwhm: Annotated[
        float | None,
        typer.Option(help="Peak width (FWHM, degrees) instead of the preset's.", min=0.0),
    ] = None,
    symprec: Annotated[
        float | None,
        typer.Option(
            help="spglib tolerance in Angstrom (default: 0.01; 0.1 for --source archive, the "
            "Materials Project's own for relaxed computed cells: give 0.01 for a packed COD "
            "mirror).",
            min=0.0,
        ),
    ] = None,
    symprec_ladder: Annotated[
        str | None,
        typer.Option(
            help="Larger tolerances to try where --symprec misses the declared space group, "
            "e.g. '0.05,0.1' for relaxed computed structures (default: none).",
        ),
    ] = None,
    max_sites: Annotated[
        int, typer.Option(help="Reject cells with more sites.")
    ] = DEFAULTS.max_sites,
    timeout: Annotated[
        float, typer.Option(help="Seconds allowed per structure.")
    ] = DEFAULTS.timeout,
    per_class: Annotated[
        int, typer.Option(help="At most this many structures per lattice.")
    ] = DEFAULTS.per_class,
    test_fraction: Annotated[
        float, typer.Option(help="Share of structures in the test set.")
    ] = DEFAULTS.test_fraction,
    public_fraction: Annotated[
        float, typer.Option(help="Share of the test set on the public leaderboard.")
    ] = DEFAULTS.public_fraction,
    min_test_per_lattice: Annotated[
        int,
        typer.Option(
            min=0,
            help="Test rows per lattice in each of Public and Private, as far as the "
            "source has them: a scarce lattice sends up to half its structures to the "
            "test set (all of them where --train-extra gives it 2N); 0: plain shares.",
        ),
    ] = DEFAULTS.min_test_per_lattice,
    measured_public_fraction: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0,
            help="With --measured-test: the share of each lattice's real measurements "
            "scored on the Public board during the course (the rest stay hidden until "
            "close); 0: all hidden.",
        ),
    ] = DEFAULTS.measured_public_fraction,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = DEFAULTS.seed,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes.", show_default="all CPUs")
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Run the per-structure work on a dask cluster: a scheduler address "
            "(tcp://HOST:PORT) or local:N to start N local workers. Same output as the "
            "local process pool.",
        ),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder of the resumable result cache.",
            show_default="$XDG_CACHE_HOME/xrd-bravais",
        ),
    ] = None,
    measured_test: Annotated[
        Path | None,
        typer.Option(
            help="Folder of your own measured patterns (.xy/.txt/.csv of 2theta, intensity) "
            "with a labels.csv of file,spacegroup_number: a third test portion, Measured, "
            "scored apart and hidden until close.",
        ),
    ] = None,
    train_generated: Annotated[
        int,
        typer.Option(
            min=0,
            help="Add N pyxtal crystals of the rare lattices to the training split only "
            "(the test set keeps real structures only; DATA.md says how many).",
        ),
    ] = 0,
    train_generated_lattices: Annotated[
        str,
        typer.Option(help="Lattices of the --train-generated crystals, equal shares."),
    ] = "aP,oS,oI,oF",
    train_extra: Annotated[
        list[str] | None,
        typer.Option(
            help="KIND:PATH: structures of another source for the training split only "
            "(archive:FILE.tar.xz, cod-dir:DIR, cod-ids:FILE; repeatable). The test set "
            "still comes from --source; a test compound or a repeat is never added; each "
            "is labelled at its own kind's symprec (archive 0.1).",
        ),
    ] = None,
    train_extra_limit: Annotated[
        int | None,
        typer.Option(min=1, help="Read only the first N structures of each --train-extra."),
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Recompute everything.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Rebuild over a competition in use: delete its leaderboard, baselines, "
            "submissions and added files.",
        ),
    ] = False,
    task: Annotated[
        str,
        typer.Option(help="lattice (classify XRD patterns) or aggregates (count particles "
                          "from scattering images)."),
    ] = "lattice",
    size: Annotated[int, typer.Option(help="Image side in pixels.", rich_help_panel=_AGG)] = 64,
    radius: Annotated[
        str, typer.Option(help="Particle radius in pixels, or MIN:MAX.", rich_help_panel=_AGG)
    ] = "4",
    counts: Annotated[
        str, typer.Option(help="Particle counts, e.g. 1..5 or 1,2,4.", rich_help_panel=_AGG)
    ] = "1..5",
    overlap: Annotated[
        str, typer.Option(help="touching or overlapping.", rich_help_panel=_AGG)
    ] = "touching",
    view: Annotated[
        str, typer.Option(help="What students get: scattering, image or both.",
                          rich_help_panel=_AGG),
    ] = "scattering",
    beamstop: Annotated[
        float, typer.Option(help="Beamstop radius in frequency pixels (0: none).",
                            rich_help_panel=_AGG, min=0.0),
    ] = 0.0,
    photons: Annotated[
        float | None, typer.Option(help="Expected photons per pattern: Poisson noise.",
                                   rich_help_panel=_AGG),
    ] = None,
    per_count: Annotated[
        int, typer.Option(help="Aggregates per count.", rich_help_panel=_AGG, min=4)
    ] = 400,
) -> None:
    """Build a competition: XRD patterns of crystal structures, or particle aggregates.

    The lattice task (default) uses the embedded AMCSD minerals unless told otherwise;
    --task aggregates draws scattering images of aggregates of 1..5 particles.
    """
    from competition.lattice.build import BuildError, build_competition
    from competition.lattice.cache import DEFAULT_CACHE_DIR
    from competition.sources import catalog as sources
    from competition.sources.catalog import SourceError
    from xrd_bravais.contract.io import protected_part

    inside = protected_part(out)
    if inside is not None:
        fail(f"refusing to build into {out}: it is inside {inside}, which holds a "
             "competition's answer key, submissions or manifest; give another folder")
    if task == "aggregates":
        _build_aggregates(
            out, size, radius, counts, overlap, view, beamstop, photons,
            per_count, test_fraction, public_fraction, seed, quiet, force,
        )  # fmt: skip
        return
    if task != "lattice":
        fail(f"--task must be lattice or aggregates, got {task!r}")

    try:
        config = BuildConfig(
            **_pattern_settings(preset, grid, fwhm),
            symprec=symprec_for(source) if symprec is None else symprec,
            max_sites=max_sites, timeout=timeout,
            symprec_ladder=_parse_ladder(symprec_ladder), profile=profile, draws=draws,
            engine=engine, reader=reader,
            per_class=per_class, test_fraction=test_fraction,
            public_fraction=public_fraction, seed=seed,
            min_test_per_lattice=min_test_per_lattice,
            measured_public_fraction=measured_public_fraction,
        )  # fmt: skip
    except ValueError as err:
        fail(str(err))
    cache_root = cache_dir or DEFAULT_CACHE_DIR
    try:
        src = _make_source(
            source, input_path, limit, cod_url, cache_root, n_generated, spacegroups, seed,
            progress=not quiet,
        )
        extra = [
            _make_source(*_parse_extra(text), train_extra_limit, cod_url, cache_root,
                         n_generated, None, seed, progress=not quiet)
            for text in train_extra or []
        ]  # fmt: skip
        if train_generated:
            lattices = [x for x in train_generated_lattices.replace(" ", "").split(",") if x]
            extra.append(sources.rare_lattice_source(train_generated, lattices, seed))
        summary = build_competition(
            src, out, config, workers=workers,
            cache_dir=None if no_cache else cache_root, progress=not quiet, force=force,
            measured_test=measured_test, scheduler=scheduler, train_extra=extra,
        )  # fmt: skip
    except (SourceError, BuildError) as err:
        fail(str(err))
    except KeyboardInterrupt:
        fail("interrupted; run the same command again to resume from the cache", code=130)
    _print_summary(summary, config)


def _parse_counts(text: str) -> tuple[int, ...]:
    try:
        if ".." in text:
            low, high = (int(v) for v in text.split(".."))
            return tuple(range(low, high + 1))
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        fail(f"--counts must look like 1..5 or 1,2,4, got {text!r}")


def _parse_radius(text: str) -> tuple[float, float]:
    try:
        values = [float(v) for v in text.split(":")]
    except ValueError:
        fail(f"--radius must be a number or MIN:MAX, got {text!r}")
    if len(values) not in (1, 2):
        fail(f"--radius must be a number or MIN:MAX, got {text!r}")
    return (values[0], values[-1])


def _build_aggregates(out: Path, size: int, radius: str, counts: str, overlap: str, view: str,
                      beamstop: float, photons: float | None, per_count: int,
                      test_fraction: float, public_fraction: float, seed: int, quiet: bool,
                      force: bool) -> None:  # fmt: skip
    """``build --task aggregates``: draw, split, write, print the rows per count."""
    from competition.aggregates.build import build_aggregates
    from competition.aggregates.draw import AggregateConfig
    from competition.outdir import BuildError

    try:
        config = AggregateConfig(
            size=size, radius=_parse_radius(radius), counts=_parse_counts(counts),
            overlap=overlap, view=view,  # type: ignore[arg-type]
            beamstop=beamstop, photons=photons,
            per_count=per_count, test_fraction=test_fraction, public_fraction=public_fraction,
            seed=seed,
        )  # fmt: skip
    except ValueError as err:
        fail(str(err))
    try:
        summary = build_aggregates(out, config, progress=not quiet, force=force)
    except BuildError as err:
        fail(str(err))
    typer.echo(f"\nBuilt {summary.out}: {summary.n_rows:,} aggregates "
               f"({config.size} x {config.size} pixels, {config.view}).")  # fmt: skip
    typer.echo("\nAggregates per particle count:")
    typer.echo(_count_table(summary.counts).to_string())
    seconds = ", ".join(f"{k} {v:.1f} s" for k, v in summary.seconds.items())
    typer.echo(f"Time: {seconds} ({summary.n_rows / max(summary.seconds['draw'], 1e-9):,.0f} "
               "aggregates/s drawn).")  # fmt: skip


def _count_table(counts: dict[str, dict[str, int]]) -> object:
    """Rows per count (index) and split (columns), with totals."""
    import pandas as pd

    table = pd.DataFrame(counts)
    table.loc["total"] = table.sum()
    return table


def _print_summary(summary: BuildSummary, config: BuildConfig) -> None:
    table = summary.class_table()
    echo = typer.echo
    cached = f" ({summary.n_cached} results from the cache)" if summary.n_cached else ""
    echo(
        f"\nBuilt {summary.out}: {summary.n_accepted} of {summary.n_input} entries "
        f"accepted{cached}."
    )
    echo("\nStructures per Bravais lattice:")
    echo(table.to_string())
    rejected = ", ".join(f"{stage} {n}" for stage, n in summary.rejected_by_stage.items())
    echo(f"\nSkipped (see reports/rejects.csv): {rejected or 'none'}")
    agreement = summary.label_agreement
    if agreement["n_declared"]:
        echo(
            f"spglib (symprec={config.symprec:g}) agrees with the declared space group for "
            f"{agreement['n_spacegroup_agree']} of {agreement['n_declared']} entries "
            f"({100 * agreement['spacegroup_agreement']:.1f} %), "
            f"lattice {100 * agreement['lattice_agreement']:.1f} %."
        )
    seconds = ", ".join(f"{k} {v:.1f} s" for k, v in summary.seconds.items())
    echo(f"Time: {seconds}.")


def register(app: typer.Typer) -> None:
    """Add ``build`` to the ``xrd-bravais`` application."""
    app.command()(build)
