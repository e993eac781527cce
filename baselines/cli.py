"""``xrd-bravais baselines``: list, run and apply the reference models.

A thin layer over :mod:`baselines.runner.run` and :mod:`baselines.runner.report`.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Annotated, Any

import typer

from scoring.cli import CompetitionOption, TrackOption, resolve_track
from xrd_bravais.contract import layout
from xrd_bravais.contract.console import checked_output, fail
from xrd_bravais.contract.layout import Layout

app = typer.Typer(
    name="baselines",
    help="Reference models (random guess, random forest, SVM, XGBoost, 1D-CNN, their blend).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _needs_extra() -> None:
    """Exit with one line when the baselines' libraries are not installed."""
    import importlib.util

    missing = []
    for name in ("sklearn", "xgboost", "matplotlib"):
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    if missing:
        fail(
            f"the baselines need {', '.join(missing)}, which this installation lacks; "
            "install them with: pip install 'xrd-bravais[baselines]'"
        )


@app.callback()
def _baselines() -> None:
    """Reference models (random guess, random forest, SVM, XGBoost, 1D-CNN, their blend)."""
    _needs_extra()


@app.command("list")
def list_baselines() -> None:
    """List the baselines with their search spaces."""
    from baselines.lattice.blend import is_dropped
    from baselines.runner.run import registry

    for baseline in registry().values():
        grid = "; ".join(f"{k}={v}" for k, v in baseline.param_grid.items()) or (
            f"votes with {', '.join(baseline.members)}" if baseline.members else "nothing to search"
        )
        for track, params in baseline.track_params.items():
            dropped = [name for name in baseline.members if is_dropped(params.get(name))]
            if dropped:
                grid += f" ({track}: without {', '.join(dropped)})"
        typer.echo(f"{baseline.name:<14} {baseline.title:<30} {grid}")


@app.command()
def run(
    names: Annotated[
        list[str] | None, typer.Argument(help="Baselines to run (see `baselines list`), or all.")
    ] = None,
    competition: CompetitionOption = Path("."),
    track: TrackOption = None,
    sample: Annotated[
        int | None, typer.Option(help="Train on a stratified sample of this many rows.", min=2)
    ] = None,
    cv: Annotated[
        int, typer.Option(help="Folds of the parameter search; 0 fits the defaults.", min=0)
    ] = 3,
    search_on: Annotated[
        str | None,
        typer.Option(
            help="What the search scores held-out folds on: clean (the rows as they are) or "
            "realism (one realism copy of each row); default each baseline's own "
            "(realism for search-match, clean for the others).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seeds the sample, the folds and the models.")] = 0,
    record: Annotated[
        bool, typer.Option(help="Record each submission as a baseline row on the leaderboard.")
    ] = True,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Override a parameter before the search: NAME:PARAM=VALUE, e.g. "
            "cnn1d:epochs=10 or xgboost:model__n_estimators=100 (repeatable).",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
) -> None:
    """Search, fit and predict baselines; write submissions/, models and a report."""
    from xrd_bravais.contract.tasks import AGGREGATES_TASK_NAME, load_task

    if load_task(competition).name == AGGREGATES_TASK_NAME:
        _run_aggregates(competition, names, seed, record, set_, quiet)
        return
    from baselines.data import read_patterns
    from baselines.runner.report import write_report
    from baselines.runner.run import SEARCH_ON, resolve_names, run_baseline
    from scoring.leaderboard import LeaderboardError

    try:
        chosen = resolve_names(names or ["all"])
        overrides = parse_overrides(set_ or [], [b.name for b in chosen])
        if search_on is not None and search_on not in SEARCH_ON:
            raise ValueError(f"--search-on takes {' or '.join(SEARCH_ON)}, got {search_on!r}")
    except ValueError as err:
        fail(str(err))
    site = Layout(competition)
    if not site.train.is_file() or not site.test.is_file():
        fail(f"{competition} is not a built competition (no {layout.TRAIN} and {layout.TEST})")
    try:
        train = read_patterns(site.train)
        test = read_patterns(site.test)
    except (OSError, ValueError) as err:
        fail(str(err))
    spec = resolve_track(competition, track)
    if sample and sample >= len(train.ids):
        sample = None
    for baseline in chosen:
        typer.echo(f"== {baseline.title} ({baseline.name})", err=True)
        try:
            result = run_baseline(competition, baseline, track=spec.name, sample=sample,
                                  cv=cv, random_state=seed, train=train, test=test,
                                  record=record, verbose=not quiet,
                                  params=overrides.get(baseline.name),
                                  search_on=search_on)  # fmt: skip
        except ValueError as err:
            fail(f"{baseline.name}: {err}")
        except LeaderboardError as err:  # after the fit: what it saved stays
            fail(f"{baseline.name}: not recorded on the board: {err} (its model, submission "
                 "and result.json are saved)")  # fmt: skip
        typer.echo(_result_line(result))
    report = write_report(competition, spec.name)
    typer.echo(f"Report: {report}")


def _run_aggregates(competition: Path, names: list[str] | None, seed: int, record: bool,
                    set_: list[str] | None, quiet: bool) -> None:  # fmt: skip
    """``baselines run`` on an aggregates competition: random, forest, cnn2d."""
    from baselines.aggregates.models import NAMES, run_aggregate_baselines

    chosen = list(NAMES) if not names or names == ["all"] else names
    unknown = [n for n in chosen if n not in NAMES]
    if unknown:
        fail(f"unknown baseline(s) {', '.join(unknown)}; the aggregates task has "
             f"{', '.join(NAMES)}")  # fmt: skip
    try:
        overrides = parse_overrides(set_ or [], chosen)
        table = run_aggregate_baselines(competition, chosen, random_state=seed, record=record,
                                        verbose=not quiet, params=overrides)  # fmt: skip
    except ValueError as err:
        fail(str(err))
    for row in table.itertuples():
        public = (f"Public accuracy {100 * row.accuracy:.1f} %, macro-F1 {row.macro_f1:.3f}, "
                  if record else "")  # fmt: skip
        typer.echo(f"{row.name}: {public}fit {row.fit_seconds:.1f} s -> {row.submission}")


def parse_overrides(items: list[str], names: list[str]) -> dict[str, dict[str, Any]]:
    """Parse ``NAME:PARAM=VALUE`` items into parameters per baseline.

    Values are Python literals (``10``, ``0.5``, ``(16, 32)``, ``'log'``) or else
    plain strings.

    Raises
    ------
    ValueError
        On a malformed item or a baseline that is not being run.
    """
    overrides: dict[str, dict[str, Any]] = {}
    for item in items:
        name, sep, assignment = item.partition(":")
        param, equals, text = assignment.partition("=")
        if not (sep and equals and name and param):
            raise ValueError(f"--set takes NAME:PARAM=VALUE (e.g. cnn1d:epochs=10), got {item!r}")
        if name not in names:
            raise ValueError(f"--set {item!r}: {name} is not among the baselines being run")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        overrides.setdefault(name, {})[param] = value
    return overrides


def _result_line(result) -> str:  # type: ignore[no-untyped-def]
    on = " on realism copies" if result.extras.get("search_on") == "realism" else ""
    cv = "" if result.cv_accuracy is None else (
        f"CV accuracy{on} {100 * result.cv_accuracy:.1f} %, "
    )  # fmt: skip
    public = "" if not result.public else (
        f"Public accuracy {100 * result.public['accuracy']:.1f} %, "
        f"macro-F1 {result.public['macro_f1']:.3f}, "
    )  # fmt: skip
    return (
        f"{result.name}: {cv}{public}fit {result.fit_seconds:.1f} s on {result.n_train:,} rows "
        f"-> {result.submission}"
    )


@app.command()
def report(
    competition: CompetitionOption = Path("."),
    track: TrackOption = None,
) -> None:
    """Rewrite the baselines report from the saved results (after the close: with final scores)."""
    from baselines.runner.report import write_report

    spec = resolve_track(competition, track)
    try:
        typer.echo(f"Report: {write_report(competition, spec.name)}")
    except (OSError, ValueError) as err:
        fail(str(err))


@app.command()
def methods(
    competition: CompetitionOption = Path("."),
    track: TrackOption = None,
    sample: Annotated[
        int, typer.Option(help="Use a stratified sample of this many training rows (0: all).",
                          min=0),
    ] = 3000,
    cv: Annotated[int, typer.Option(help="Folds, grouped by compound.", min=2)] = 3,
    seed: Annotated[int, typer.Option(help="Seeds the sample, the folds and the models.")] = 0,
) -> None:
    """Learning and validation curves, PCA and k-means: the course's methods on this data."""
    from baselines.runner.methods import run_methods
    from baselines.runner.report import write_report

    spec = resolve_track(competition, track)
    try:
        summary = run_methods(competition, spec.name, sample=sample or None, cv=cv,
                              random_state=seed)  # fmt: skip
    except (OSError, ValueError) as err:
        fail(str(err))
    learning = summary["learning_curve"]
    validation = summary["validation_curve"]
    typer.echo(f"On {summary['rows']:,} training rows ({cv}-fold CV grouped by compound):")
    typer.echo("  learning curve (random forest): " + ", ".join(
        f"{n:,} rows {100 * v:.1f} %" for n, v in zip(learning["train_rows"],
                                                       learning["validation_accuracy"],
                                                       strict=True)))  # fmt: skip
    typer.echo("  validation curve (RBF-SVM): " + ", ".join(
        f"C={c:g} train {100 * t:.1f} % / validation {100 * v:.1f} %"
        for c, t, v in zip(validation["C"], validation["train_accuracy"],
                           validation["validation_accuracy"], strict=True)))  # fmt: skip
    typer.echo(f"  PCA: 2 components hold {100 * summary['explained_variance']:.1f} % of the "
               f"variance; k-means ARI {summary['ari']:.3f} (shuffled labels "
               f"{summary['ari_shuffled']:.3f})")  # fmt: skip
    try:
        typer.echo(f"Report: {write_report(competition, spec.name)}")
    except FileNotFoundError:
        typer.echo("Figures in baselines/<track>/methods/; run `baselines run` for the report.")


@app.command()
def predict(
    model: Annotated[Path, typer.Option("--model", "-m", help="A model.pkl from `baselines run`.")],
    input: Annotated[
        Path, typer.Option("--input", "-i", help="Parquet with id and y0 .. y{N-1} columns.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV to write.")] = Path(
        "predictions.csv"
    ),
    force: Annotated[
        bool, typer.Option("--force", help="Replace the file if it exists.")
    ] = False,
) -> None:
    """Predict any patterns on the model's grid; writes id,<label column>."""
    from baselines.data import read_patterns
    from baselines.runner.run import load_model, predict_patterns, write_predictions
    from xrd_bravais.contract.tasks import get_track
    if out.is_dir():
        fail(f"--out {out} is a folder; give the CSV file to write, e.g. {out / 'predictions.csv'}")
    checked_output(out, force=force)
    try:
        bundle = load_model(model)
        patterns = read_patterns(input)
        labels = predict_patterns(bundle, patterns)
    except (OSError, ValueError) as err:
        fail(str(err))
    column = bundle.get("column") or get_track(bundle["track"]).column
    try:
        write_predictions(patterns.ids, labels, column, out)
    except OSError as err:
        fail(f"cannot write {out}: {err.strerror or err}")
    typer.echo(f"Wrote {len(labels):,} predictions ({column}) to {out}.")


def register(parent: typer.Typer) -> None:
    """Add ``baselines`` to the ``xrd-bravais`` application."""
    parent.add_typer(app, name="baselines")
