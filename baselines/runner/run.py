"""Run the reference baselines on a built competition, the way the course asked students to.

For each baseline: search its parameters by stratified, compound-grouped K-fold
cross-validation on ``public/train.parquet`` (optionally on a seeded sample),
refit the best on all the training rows used, predict ``public/test.parquet``,
write ``submissions/<name>.csv``, check it with the grader's own validator,
record it as a flagged reference row on the leaderboard (where ``private/`` is)
and save the fitted model. Everything lands beside the built folders:

    <competition>/submissions/<name>.csv                (spacegroup track: <name>_spacegroup.csv)
    <competition>/baselines/<track>/<name>/model.pkl    the fitted estimator and its grid
    <competition>/baselines/<track>/<name>/result.json  parameters, scores, times
    <competition>/baselines/<track>/<name>/search.csv   every candidate of the search
    <competition>/baselines/<track>/report.md           with PNG figures beside it

Over 400 lines: the run of a baseline is one sequence (search, refit, predict,
write, validate, record, save), read top to bottom.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from baselines.data import Patterns, own_source_rows, read_patterns, stratified_sample
from xrd_bravais.contract import layout
from xrd_bravais.contract.grid import Grid, GridError, require_grid
from xrd_bravais.contract.moved import load_pickle
from xrd_bravais.contract.references import GUESS_TITLES
from xrd_bravais.contract.tasks import Track

MODEL_FORMAT: Final = 1
"""Version of the ``model.pkl`` bundle layout."""


@dataclass(frozen=True)
class Baseline:
    """One reference model: how to make it and where to search.

    Attributes
    ----------
    name : str
        Command-line name and file stem (``random-forest``).
    title : str
        Its row on the leaderboard.
    make : callable
        ``make(grid, random_state) -> estimator``: the grid of the competition's
        patterns (:class:`xrd_bravais.contract.grid.Grid`) goes in explicitly.
    param_grid : dict
        The search space (pipeline parameter names); empty: nothing to search.
    track_params : dict
        Parameters set on one track's model before any ``--set`` override, by track
        name (the CNN's class weights on the space-group track).
    members : tuple of str
        For a blend (:class:`baselines.lattice.blend.SoftVote`): the baselines it votes
        with, by name. A member that this competition has already fitted on the
        same training rows is reused, not fitted again.
    fit_groups : str, optional
        The ``fit`` parameter that takes the training rows' compounds
        (search-match's ``match__groups``: its temperature holds out whole
        compounds); a blend passes them on to such members.
    fit_own_source : str, optional
        The ``fit`` parameter that takes which training rows are of the build's own
        source (:func:`baselines.data.own_source_rows`; search-match's
        ``match__own_source``: its ``symmetry_window="auto"`` is chosen on them;
        xgboost-realism's and cnn1d-realism's ``own_source``: its sample of
        ``REALISM_MAX_ROWS``, each of its epochs, takes them first), given where the
        build has other sources; a blend passes it on likewise.
    track_titles : dict
        The leaderboard row on one track where it differs from ``title`` (a blend
        that leaves a member out there).
    search_on : {"clean", "realism"}
        What the parameter search scores its held-out folds on: the rows as they are,
        or one realism copy of each (:class:`baselines.lattice.augment.RealismAccuracy`),
        for a baseline meant for measured patterns. ``run_baseline(search_on=...)``
        and ``baselines run --search-on`` override it.
    revision : int
        Bumped when a change makes a model saved by an earlier version predict
        otherwise than one fitted now would; a blend fits such a saved member anew
        rather than voting with it. A model saved without one is revision 1.
    """

    name: str
    title: str
    make: Callable[[Grid, int], Any]
    param_grid: dict[str, list[Any]] = field(default_factory=dict)
    track_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    members: tuple[str, ...] = ()
    fit_groups: str | None = None
    fit_own_source: str | None = None
    track_titles: dict[str, str] = field(default_factory=dict)
    search_on: str = "clean"
    revision: int = 1


SEARCH_ON: Final = ("clean", "realism")
"""What a parameter search may score held-out folds on (``Baseline.search_on``)."""


def _guess(kind: str) -> Callable[[Grid, int], Any]:
    def make(grid: Grid, random_state: int) -> Any:
        from baselines.lattice.random_guess import make_random_guess

        return make_random_guess(kind, random_state)

    return make


def _forest(grid: Grid, random_state: int) -> Any:
    from baselines.lattice.forest import make_forest

    return make_forest(grid, random_state, n_jobs=-1)


def _svm(grid: Grid, random_state: int) -> Any:
    from baselines.lattice.svm import make_svm

    return make_svm(grid, random_state)


def _boosting(grid: Grid, random_state: int) -> Any:
    from baselines.lattice.boosting import make_boosting

    return make_boosting(grid, random_state)


def _boosting_realism(grid: Grid, random_state: int) -> Any:
    from sklearn.pipeline import Pipeline

    from baselines.lattice.augment import RealismAugmented
    from baselines.lattice.boosting import make_boosting
    from baselines.lattice.features import Smooth, SubtractBackground

    model = Pipeline([("smooth", Smooth(9)), ("background", SubtractBackground(50)),
                      *make_boosting(grid, random_state).steps])  # fmt: skip
    return RealismAugmented(model, grid=grid, draws=2, max_rows=REALISM_MAX_ROWS,
                            random_state=random_state)  # fmt: skip


def _search_match(grid: Grid, random_state: int) -> Any:
    from baselines.lattice.search_match import make_search_match

    return make_search_match(grid)


def _cnn(grid: Grid, random_state: int) -> Any:
    from baselines.lattice.cnn1d import CNN1DClassifier

    return CNN1DClassifier(grid=grid, random_state=random_state)


def _cnn_realism(grid: Grid, random_state: int) -> Any:
    from baselines.lattice.cnn1d import CNN1DClassifier

    return CNN1DClassifier(grid=grid, augment="realism", smooth=9, background=50,
                           precision="bfloat16", max_minutes=CNN_REALISM_MINUTES,
                           rows_per_epoch=CNN_REALISM_ROWS_PER_EPOCH,
                           random_state=random_state)  # fmt: skip


# cnn1d-realism's time budget: its 60 epochs took 7.3 minutes on the AMCSD build
# (5,432 rows; 7 s an epoch in bfloat16 on 2026-12-05) and fit in it on the whole
# archive (30,000-row epochs of 30-45 s); where a busy machine or a larger epoch would
# run past it, the budget keeps the epochs that fit, so a course's largest build trains
# within the 45 minutes a baseline may take on 2 cores
# (`--set cnn1d-realism:max_minutes=...`).
CNN_REALISM_MINUTES: Final = 40

# cnn1d-realism's epochs on a larger build: about as many rows as the AMCSD + archive
# build's (29,262, where the budget runs about 30 epochs), the build's own rows in every
# one, so the whole archive (153,536 rows) no longer leaves it two epochs of 3.5 %
# minerals. Builds of up to this many rows train on every row, every epoch.
CNN_REALISM_ROWS_PER_EPOCH: Final = 30_000


# xgboost-realism draws its copies from at most this many training rows (a stratified
# sample, the build's own rows first): three times 10,000 rows fit in 10 minutes and
# 7.3 GB on 2 cores, where the 29,262 rows of an AMCSD + archive build would take about
# 21 GB. The AMCSD build (5,432 rows) uses every row.
REALISM_MAX_ROWS: Final = 10_000

# The blend's members, in registry order: the two strongest baselines, which read the
# pattern differently (convolutions over it; trees over pooled bins and peak positions).
BLEND_MEMBERS: Final = ("xgboost", "cnn1d")
# The measured-pattern blend: the three baselines trained or built for measured
# patterns, each reading the pattern its own way (the nearest reference pattern;
# trees over pooled bins of cleaned realism copies; convolutions over realism draws).
BLEND_REALISM_MEMBERS: Final = ("search-match", "xgboost-realism", "cnn1d-realism")


def _vote(names: tuple[str, ...], pool: bool = False, centring: bool = False
          ) -> Callable[[Grid, int], Any]:  # fmt: skip
    def make(grid: Grid, random_state: int) -> Any:
        from baselines.lattice.blend import LogPool, SoftVote
        from baselines.lattice.indexing import CentringCheck

        members = registry()
        estimators = [(name, members[name].make(grid, random_state)) for name in names]
        if pool:
            return LogPool(estimators, random_state=random_state)
        return SoftVote(estimators, centring=CentringCheck(grid) if centring else None)

    return make


def _grids() -> dict[str, dict[str, list[Any]]]:
    from baselines.lattice import boosting, forest, search_match, svm

    return {
        "search-match": search_match.PARAM_GRID,
        "random-forest": forest.PARAM_GRID,
        "svm": svm.PARAM_GRID,
        "xgboost": boosting.PARAM_GRID,
        # Each CNN fit takes minutes on a CPU: one contrast (kernel width) only.
        "cnn1d": {"kernel_size": [7, 11]},
    }


def registry() -> dict[str, Baseline]:
    """Every baseline by name, in the order ``all`` runs them (cheapest first)."""
    grids = _grids()
    return {
        **{kind: Baseline(kind, GUESS_TITLES[kind], _guess(kind))
           for kind in ("uniform", "prior", "majority")},
        # Meant for measured patterns: its blur is chosen on realism copies of the
        # held-out folds. Revision 2 compares 13 cell sizes (strain), where revision 1
        # compared one; revision 3 subtracts a floor that follows each pattern's noise
        # and chooses its symmetry window at fit ("auto").
        "search-match": Baseline("search-match", "search-match (nearest reference patterns)",
                                 _search_match, grids["search-match"],
                                 fit_groups="match__groups", fit_own_source="match__own_source",
                                 search_on="realism", revision=3),
        # Revision 2 of the forest, the SVM and XGBoost adds the peaks' pair ratios and
        # additive triples (PeakRelations), as xgboost-realism's revision 3 did.
        "random-forest": Baseline(
            "random-forest", "random forest", _forest, grids["random-forest"], revision=2
        ),
        "svm": Baseline("svm", "SVM (RBF kernel)", _svm, grids["svm"], revision=2),
        "xgboost": Baseline("xgboost", "XGBoost", _boosting, grids["xgboost"], revision=2),
        # Trained for measured patterns: each training row and two realism copies of it
        # (three times the rows of a fit, hence no search; at most REALISM_MAX_ROWS rows),
        # smoothed and SNIP-flattened at training and at prediction time alike.
        # Revision 2 samples the build's own rows first (fit_own_source); revision 3
        # adds the peaks' pair ratios and additive triples (PeakRelations).
        "xgboost-realism": Baseline("xgboost-realism",
                                    "XGBoost on realism copies (smoothing + SNIP)",
                                    _boosting_realism, fit_own_source="own_source",
                                    revision=3),
        # "Balanced" weights over ~180 space groups, many with one or two training
        # rows, weight those rows up to ~40 times: the CNN then does not learn
        # (2.5 %); unweighted it reaches 50.7 % Public on the full AMCSD build.
        "cnn1d": Baseline("cnn1d", "1D-CNN", _cnn, grids["cnn1d"],
                          track_params={"spacegroup": {"class_weight": None}}),
        # Trained for measured patterns: half of every batch drawn afresh through the
        # realism model, smoothing + SNIP as the network's first layer, mixed precision
        # (half the time of a step on a CPU with AMX). No search. Revision 2 draws
        # its epochs on a large build (rows_per_epoch), the build's own rows first.
        "cnn1d-realism": Baseline("cnn1d-realism",
                                  "1D-CNN on realism draws (smoothing + SNIP in the network)",
                                  _cnn_realism, fit_own_source="own_source", revision=2,
                                  track_params={"spacegroup": {"class_weight": None}}),
        # The blends last, so that `all` has fitted their members by then and they only vote.
        # Revision 2 pools its members with exponents learned on held-out training
        # rows (LogPool, whole compounds held out): the equal vote of revision 1 scored
        # under XGBoost alone where the CNN is much the weaker (the demo).
        "blend": Baseline("blend", "1D-CNN + XGBoost (log-linear pool)",
                          _vote(BLEND_MEMBERS, pool=True),
                          track_params={"spacegroup": {"cnn1d__class_weight": None}},
                          fit_groups="groups", members=BLEND_MEMBERS, revision=2),
        # Equal weights: benchmarks.blend_weights scores the others, and simulated and
        # real rows want opposite ones (docs/figures.md). search-match scores every
        # lattice by its best match (a softmax at the temperature fitted to its
        # references), so where two lattices match nearly as well the others decide.
        # Space groups without the trees: xgboost-realism grows a tree per class and
        # round, about 16 times its lattice-track time over ~220 groups.
        # Revision 2 checks the vote by indexing the peaks (CentringCheck): the vote's
        # commonest errors were centrings, and next orthorhombic against monoclinic.
        "blend-realism": Baseline(
            "blend-realism",
            "search-match + XGBoost + 1D-CNN on realism (vote + indexing)",
            _vote(BLEND_REALISM_MEMBERS, centring=True),
            track_params={"spacegroup": {"cnn1d-realism__class_weight": None,
                                         "xgboost-realism": "drop", "centring": None}},
            members=BLEND_REALISM_MEMBERS,
            track_titles={"spacegroup": "search-match + 1D-CNN on realism (soft vote)"},
            revision=2,
        ),
    }


def resolve_names(names: list[str]) -> list[Baseline]:
    """The baselines called ``names`` (``all`` for every one), without repeats.

    Raises
    ------
    ValueError
        Naming every unknown name and listing the known ones.
    """
    known = registry()
    wanted = list(known) if not names or "all" in names else list(dict.fromkeys(names))
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ValueError(
            f"unknown baseline(s): {', '.join(unknown)}; choose from {', '.join(known)} or all"
        )
    return [known[n] for n in wanted]


@dataclass
class BaselineResult:
    """What one baseline run measured (JSON-ready with :meth:`to_dict`).

    ``public`` holds the Public-portion scores as the leaderboard shows them
    (``None`` where the competition has no answer key); nothing from Private
    rows is kept here.
    """

    name: str
    title: str
    track: str
    n_train: int
    n_test: int
    cv: int
    best_params: dict[str, Any]
    cv_accuracy: float | None
    cv_accuracy_std: float | None
    fit_seconds: float
    search_seconds: float
    predict_seconds: float
    submission: str
    model: str
    public: dict[str, Any] | None = None
    submission_id: int | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary of every field."""
        return asdict(self)


def grouped_folds(cv: int, random_state: int) -> Any:
    """Stratified folds that keep each compound on one side, as the builder's split does."""
    from sklearn.model_selection import StratifiedGroupKFold

    return StratifiedGroupKFold(n_splits=cv, shuffle=True, random_state=random_state)


def _search(
    baseline: Baseline, estimator: Any, X: np.ndarray, y: np.ndarray, groups: np.ndarray,
    cv: int, random_state: int, verbose: bool, fit_params: dict[str, Any], grid: Grid,
    search_on: str,
) -> tuple[Any, pd.DataFrame | None, float]:  # fmt: skip
    """Grid search by accuracy over grouped, stratified folds.

    The held-out folds are scored as they are (``search_on="clean"``) or as one
    realism copy of each row (``"realism"``). Returns the refitted best estimator,
    the table of candidates and the seconds spent searching.
    """
    from sklearn.model_selection import GridSearchCV

    from baselines.lattice.augment import RealismAccuracy

    scoring = RealismAccuracy(grid, random_state) if search_on == "realism" else "accuracy"
    start = time.perf_counter()
    search = GridSearchCV(
        estimator, baseline.param_grid, scoring=scoring, cv=grouped_folds(cv, random_state),
        refit=True, error_score="raise", verbose=1 if verbose else 0,
    )  # fmt: skip
    with warnings.catch_warnings():
        # Rare lattices (or space groups) have fewer members than folds; the
        # splitter says so once per fit, which is expected here.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        search.fit(X, y, groups=groups, **fit_params)  # the fit parameters, split by fold
    table = pd.DataFrame(search.cv_results_)
    keep = [c for c in table if c.startswith("param_")] + [
        "mean_test_score", "std_test_score", "rank_test_score", "mean_fit_time",
    ]  # fmt: skip
    table = table[keep].sort_values("rank_test_score").reset_index(drop=True)
    return search, table, time.perf_counter() - start


def group_parameters(baseline: Baseline, which: str = "fit_groups") -> list[str]:
    """The ``fit`` parameters of ``baseline`` that take the training rows' compounds.

    Its own :attr:`Baseline.fit_groups`, and for a blend each such member's,
    through the member's name (``search-match__match__groups``); with
    ``which="fit_own_source"``, those that take the own-source rows instead.
    """
    known = registry()
    own = getattr(baseline, which)
    names = [own] if own else []
    for member in baseline.members:
        if getattr(known[member], which):
            names.append(f"{member}__{getattr(known[member], which)}")
    return names


def submission_path(competition: Path, name: str, track: str) -> Path:
    """``submissions/<name>.csv``, with a ``_spacegroup`` suffix on that track."""
    return competition / layout.SUBMISSIONS / f"{name}{layout.track_suffix(track)}.csv"


def write_predictions(ids: np.ndarray, labels: np.ndarray, column: str, path: Path) -> Path:
    """Write ``id,<column>`` rows to ``path`` atomically."""
    from xrd_bravais.contract.io import atomic_write_text

    frame = pd.DataFrame({"id": ids, column: labels})
    atomic_write_text(path, frame.to_csv(index=False, lineterminator="\n"))
    return path


def save_model(estimator: Any, path: Path, *, track: Track, grid: Grid,
               baseline: str, revision: int = 1) -> Path:  # fmt: skip
    """Pickle the estimator with what :func:`predict_patterns` needs to check its input.

    ``revision`` is the baseline's (``Baseline.revision``) when it was fitted.
    Only load models you made: unpickling runs code.
    """
    from xrd_bravais.contract.io import atomic_write_bytes

    bundle = {"format": MODEL_FORMAT, "baseline": baseline, "revision": revision,
              "track": track.name, "column": track.column, "grid": grid.to_dict(),
              "estimator": estimator}  # fmt: skip
    atomic_write_bytes(path, pickle.dumps(bundle, protocol=pickle.HIGHEST_PROTOCOL))
    return path


def load_model(path: str | Path) -> dict[str, Any]:
    """Read a ``model.pkl`` bundle written by :func:`save_model`.

    Raises
    ------
    FileNotFoundError, ValueError
        If the file is absent or is not such a bundle.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    try:
        # Models saved before a module moved load under its current name.
        bundle = load_pickle(path.read_bytes())
    except Exception as err:  # a truncated or foreign file
        raise ValueError(
            f"{path} is not a saved baseline model ({type(err).__name__}: {err})"
        ) from None
    if not isinstance(bundle, dict) or bundle.get("format") != MODEL_FORMAT:
        raise ValueError(
            f"{path} is not a saved baseline model (xrd-bravais baselines run writes them)"
        )
    return bundle


def predict_patterns(bundle: dict[str, Any], patterns: Patterns) -> np.ndarray:
    """Predict patterns with a loaded model, after checking that the grids match.

    Raises
    ------
    ValueError
        If the patterns have another number of points or another grid.
    """
    estimator = bundle["estimator"]
    expected = getattr(estimator, "n_features_in_", patterns.X.shape[1])
    if patterns.X.shape[1] != expected:
        raise ValueError(
            f"the model was trained on {expected} grid points but the input has "
            f"{patterns.X.shape[1]} (y0 .. y{patterns.X.shape[1] - 1}); resample the patterns "
            "onto the model's grid or train on this one"
        )
    if patterns.grid is None:
        raise GridError(
            "the input says nothing about its 2theta grid (no grid in its parquet metadata), "
            "so it cannot be checked against the model's; use the parquet files of a build"
        )
    differing = Grid.from_dict(bundle["grid"]).differences(patterns.grid)
    if differing:
        raise GridError(f"the model was trained on {'; '.join(differing)}")
    result: np.ndarray = estimator.predict(patterns.X)
    return result


def run_baseline(
    competition: str | Path,
    baseline: Baseline | str,
    *,
    track: str | None = None,
    sample: int | None = None,
    cv: int = 3,
    random_state: int = 0,
    train: Patterns | None = None,
    test: Patterns | None = None,
    record: bool = True,
    verbose: bool = True,
    params: dict[str, Any] | None = None,
    search_on: str | None = None,
) -> BaselineResult:
    """Search, fit, predict, write, validate, record and save one baseline.

    Parameters
    ----------
    competition : path
        A built competition (``public/`` at least).
    baseline : Baseline or str
        One of :func:`registry`.
    track : {"bravais", "spacegroup"}
    sample : int, optional
        Train on a seeded, stratified sample of this many rows (the course's
        10,000-row exploration); default: every training row.
    cv : int, default=3
        Folds of the parameter search; 0 or 1 fits the default parameters
        without a search.
    random_state : int
        Seeds the sample, the folds and the model.
    train, test : Patterns, optional
        Already-read parquet files (to read them once for several baselines).
    record : bool
        Store the submission as a baseline row on the leaderboard (only where
        ``private/`` exists). The title is checked as a team name before the fit;
        where the board fails after it, the model, the submission and
        ``result.json`` (without the board's figures) are still saved, and the
        error is raised.
    verbose : bool
        Progress bars and the search's log.
    params : dict, optional
        Parameters to set before the search (``set_params`` names, e.g.
        ``{"epochs": 10}`` for the CNN or ``{"model__n_estimators": 100}``).
    search_on : {"clean", "realism"}, optional
        What the search scores its held-out folds on (``Baseline.search_on``);
        default the baseline's own.

    Returns
    -------
    BaselineResult
    """
    from scoring.submission import validate_submission
    from xrd_bravais.contract.tasks import load_task

    competition = Path(competition)
    spec = load_task(competition).track(track)
    baseline = registry()[baseline] if isinstance(baseline, str) else baseline
    search_on = search_on or baseline.search_on
    if search_on not in SEARCH_ON:
        raise ValueError(f"search_on must be one of {', '.join(SEARCH_ON)}, got {search_on!r}")
    title = baseline.track_titles.get(spec.name, baseline.title)
    record = record and (competition / "private" / "solution.csv").is_file()
    if record:  # what the board would refuse, before minutes of fitting
        from scoring.leaderboard import LeaderboardError
        from scoring.leaderboard.names import clean_team_name

        try:
            clean_team_name(title)
        except LeaderboardError as err:
            raise ValueError(f"its title {title!r} cannot name a board row: {err}") from None
    train = train or read_patterns(competition / layout.TRAIN)
    test = test or read_patterns(competition / layout.TEST)
    grid = require_grid(train.grid, f"the {baseline.name} baseline")
    y = train.target(spec.column)
    rows = stratified_sample(y, sample, random_state) if sample else np.arange(len(y))
    X, y, groups = train.X[rows], y[rows], train.groups()[rows]
    own_source = own_source_rows(competition, train.ids)

    estimator = baseline.make(grid, random_state)
    asked = params or {}  # the caller's own settings (a track's defaults are not)
    params = {**baseline.track_params.get(spec.name, {}), **asked}
    if params:
        try:
            estimator.set_params(**params)
        except ValueError as err:  # scikit-learn names the valid parameters
            raise ValueError(f"cannot set {params} on {baseline.name}: {err}") from None
    # The CNN's progress bar follows `verbose`; a Pipeline's boolean `verbose`
    # (step timings) is left alone.
    if isinstance(getattr(estimator, "verbose", None), int) and not isinstance(
        estimator.verbose, bool
    ):
        estimator.set_params(verbose=int(verbose))
    fingerprint = training_fingerprint(spec.name, train.ids[rows], X, y)
    reused = _reuse_members(estimator, baseline, competition, spec.name, fingerprint, grid,
                            asked)  # fmt: skip
    fit_params = dict.fromkeys(group_parameters(baseline), groups)
    if own_source is not None:
        fit_params |= dict.fromkeys(group_parameters(baseline, "fit_own_source"), own_source[rows])
    table = None
    cv_accuracy = cv_std = None
    search_seconds = 0.0
    if cv >= 2 and baseline.param_grid:
        search, table, search_seconds = _search(baseline, estimator, X, y, groups, cv,
                                                random_state, verbose, fit_params, grid,
                                                search_on)  # fmt: skip
        estimator, best_params = search.best_estimator_, search.best_params_
        cv_accuracy = float(search.best_score_)
        cv_std = float(table.loc[0, "std_test_score"])
        fit_seconds = float(search.refit_time_)
    else:
        start = time.perf_counter()
        estimator.fit(X, y, **fit_params)
        fit_seconds, best_params = time.perf_counter() - start, {}

    start = time.perf_counter()
    predicted = estimator.predict(test.X)
    predict_seconds = time.perf_counter() - start

    out = competition / layout.BASELINES / spec.name / baseline.name
    path = write_predictions(test.ids, predicted, spec.column,
                             submission_path(competition, baseline.name, spec.name))  # fmt: skip
    # The grader's own check: a baseline that writes an invalid file is a bug.
    validate_submission(path, competition, spec)
    model_path = save_model(estimator, out / "model.pkl", track=spec, grid=grid,
                            baseline=baseline.name, revision=baseline.revision)  # fmt: skip
    from baselines.lattice.blend import is_dropped

    dropped = [name for name, member in (estimator.estimators if baseline.members else [])
               if is_dropped(member)]  # fmt: skip
    result = BaselineResult(
        name=baseline.name,
        title=title,
        track=spec.name,
        n_train=len(y),
        n_test=len(test.ids),
        cv=cv if table is not None else 0,
        best_params={k: _jsonable(v) for k, v in best_params.items()},
        cv_accuracy=cv_accuracy,
        cv_accuracy_std=cv_std,
        fit_seconds=round(fit_seconds, 3),
        search_seconds=round(search_seconds, 3),
        predict_seconds=round(predict_seconds, 3),
        submission=str(path.relative_to(competition)),
        model=str(model_path.relative_to(competition)),
        extras={"train_fingerprint": fingerprint},
    )
    if table is not None:
        result.extras["search_on"] = search_on
    if asked:  # what the caller set (--set), for the report and the board to say
        result.extras["set"] = {key: _settable(value) for key, value in asked.items()}
    if any(reused.values()):
        result.extras["member_settings"] = {name: set_ for name, set_ in reused.items() if set_}
    if baseline.members:
        result.extras["members"] = {
            name: "dropped" if name in dropped else "reused" if name in reused else "fitted"
            for name in baseline.members
        }
        devices = {getattr(m, "device_", None) for m in getattr(estimator, "estimators_", [])}
        if devices - {None}:  # where the CNN member ran
            result.extras["device"] = ", ".join(sorted(devices - {None}))
    try:
        if record:
            _record(competition, result, path, spec.name)
    finally:  # the model and its result.json agree even when the board failed
        _save_artifacts(out, result, estimator, table, grid)
    return result


def training_fingerprint(track: str, ids: np.ndarray, X: np.ndarray, y: np.ndarray) -> str:
    """A SHA-256 of the rows a model is fitted on: track, ids, labels and patterns.

    Two runs with equal fingerprints fitted on the same data, so a blend may vote
    with a model another run fitted (a rebuilt competition with the same ids
    still differs in its patterns).
    """
    digest = hashlib.sha256(track.encode())
    for part in (np.asarray(ids).astype(str), np.asarray(y).astype(str)):
        digest.update("\x1f".join(part.tolist()).encode())
    digest.update(np.ascontiguousarray(X, dtype=np.float32).tobytes())
    return digest.hexdigest()


def _reuse_members(estimator: Any, baseline: Baseline, competition: Path, track: str,
                   fingerprint: str, grid: Grid, params: dict[str, Any]
                   ) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Put the already-fitted members of a blend into it, frozen.

    Returns each reused member's name with what its own run was given by ``--set``
    (its ``result.json``; empty for the registry's settings), so the blend can say
    with what it votes.

    A member is reused when ``baselines/<track>/<member>/`` holds a model whose
    ``result.json`` has this training fingerprint and whose grid is this one, when
    no ``--set`` parameter was given for it (those ask for a new fit), and when the
    saved model is of the member's current ``Baseline.revision`` and has the
    parameters, and their values, that the registry's member has now
    (:func:`same_settings`), apart from what its own run was given by ``--set``
    (the blend reports those) or chose by a search. One made by an earlier version
    of a baseline (search-match's one-neighbour vote, before its scored matches, or
    its one cell size, before it compared 13) or with an earlier default is fitted
    anew rather than voting the old way.
    """
    from sklearn.frozen import FrozenEstimator

    from baselines.lattice.blend import is_dropped

    known = registry()
    reused = {}
    for name in baseline.members:
        fresh = dict(estimator.estimators)[name]
        if is_dropped(fresh) or any(key == name or key.startswith(f"{name}__") for key in params):
            continue
        folder = competition / layout.BASELINES / track / name
        try:  # the small result.json first: a model fitted on other rows is not unpickled
            result = json.loads((folder / "result.json").read_text())
            if result.get("extras", {}).get("train_fingerprint") != fingerprint:
                continue
            bundle = load_model(folder / "model.pkl")
        except (OSError, ValueError):  # not run yet, or an unreadable leftover: fit anew
            continue
        if bundle.get("track") != track or Grid.from_dict(bundle["grid"]).differences(grid):
            continue
        if bundle.get("revision", 1) != known[name].revision:
            continue
        own_set = result.get("extras", {}).get("set", {})
        # What its own run was given (--set) or chose (a search) is its own to differ in.
        if not same_settings(bundle["estimator"], fresh,
                             {**own_set, **result.get("best_params", {})}):  # fmt: skip
            continue
        estimator.set_params(**{name: FrozenEstimator(bundle["estimator"])})
        reused[name] = own_set
    return reused


IGNORED_SETTINGS: Final = frozenset({"verbose", "n_jobs"})
"""Parameters that change how a fit reports or how many cores it takes, not what it learns."""


def same_settings(saved: Any, fresh: Any, own_set: dict[str, Any] | None = None) -> bool:
    """Whether a saved model was made with the settings ``fresh`` has now.

    Compares every parameter (``get_params(deep=True)``) by value: a member saved
    before the registry changed a default (say ``rows_per_epoch`` from ``None`` to
    30,000) is not of today's baseline, whatever its parameters are called.
    Nested estimators are compared by their own parameters and their type, and
    so are the steps of a pipeline. Left out: what its own run was given by
    ``--set`` or chose by a search (``own_set``, from its ``result.json``), and
    :data:`IGNORED_SETTINGS`.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> same_settings(LogisticRegression(C=2.0), LogisticRegression())
    False
    >>> same_settings(LogisticRegression(C=2.0), LogisticRegression(), {"C": 2.0})
    True
    >>> same_settings(LogisticRegression(verbose=1), LogisticRegression())
    True
    """
    ours, theirs = saved.get_params(deep=True), fresh.get_params(deep=True)
    if set(ours) != set(theirs):
        return False
    for key, value in ours.items():
        if key.rsplit("__", 1)[-1] in IGNORED_SETTINGS or any(
            key == set_ or key.startswith(f"{set_}__") for set_ in own_set or {}
        ):
            continue
        if not _same_value(_outline(value), _outline(theirs[key])):
            return False
    return True


def _outline(value: Any) -> Any:
    """``value`` with each estimator in it replaced by its type.

    The estimator's parameters have keys of their own in ``get_params(deep=True)``.
    """
    if hasattr(value, "get_params") and not isinstance(value, type):
        return type(value)
    if isinstance(value, list | tuple):
        return [_outline(item) for item in value]
    if isinstance(value, dict):
        return {key: _outline(item) for key, item in value.items()}
    return value


def _same_value(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    try:
        equal = a == b
        return bool(np.all(equal)) if isinstance(equal, np.ndarray) else bool(equal)
    except (TypeError, ValueError):  # arrays of other shapes, objects without ==
        return repr(a) == repr(b)


def _settable(value: Any) -> Any:
    """A value the caller set, as JSON takes it (its repr where JSON cannot)."""
    value = _jsonable(value)
    try:
        json.dumps(value)
    except (TypeError, ValueError):  # an estimator, say, passed from Python
        return repr(value)
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return value


def _record(competition: Path, result: BaselineResult, path: Path, track: str) -> None:
    """Store the submission as a flagged reference row; keep its Public scores."""
    from scoring.leaderboard import Leaderboard

    chosen = {**result.extras.get("set", {}), **result.best_params}
    params = ", ".join(f"{k.split('__')[-1]}={v}" for k, v in chosen.items())
    message = f"baseline {result.name}; n_train={result.n_train}" + (
        f"; {params}" if params else ""
    )
    with Leaderboard.open(competition) as board:
        receipt = board.submit(path, team=result.title, track=track, message=message[:500],
                               baseline=True)  # fmt: skip
    result.submission_id = receipt.submission_id
    result.public = receipt.public.to_dict() if receipt.public else None


def _save_artifacts(out: Path, result: BaselineResult, estimator: Any,
                    table: pd.DataFrame | None, grid: Grid) -> None:  # fmt: skip
    from xrd_bravais.contract.io import atomic_write_text

    model = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    if table is not None:
        atomic_write_text(out / "search.csv", table.to_csv(index=False, lineterminator="\n"))
    history = getattr(model, "history_", None)
    if history is not None:
        atomic_write_text(out / "history.csv", history.to_csv(index=False, lineterminator="\n"))
        model.save(out / "checkpoint.pt")
        result.extras["best_epoch"] = int(model.best_epoch_)
        result.extras["epochs_run"] = len(history)
        result.extras["device"] = model.device_
        if getattr(model, "max_minutes", None) is not None:  # the epochs ran to a time budget
            result.extras["time_budget"] = {"minutes": float(model.max_minutes),
                                            "epochs": int(model.epochs)}  # fmt: skip
        per_epoch = getattr(model, "rows_per_epoch", None)
        if per_epoch is not None and per_epoch < result.n_train:  # each epoch a fresh draw
            result.extras["rows_per_epoch"] = {
                "rows": int(per_epoch), "own": getattr(model, "own_rows_per_epoch_", None)}
    used = getattr(model, "n_rows_used_", None)
    if used is not None and used < result.n_train:  # a sample of the rows (max_rows)
        result.extras["rows_used"] = int(used)
        own_used = getattr(model, "n_own_used_", None)
        if own_used is not None:  # the build's own rows came first
            result.extras["own_rows_used"] = int(own_used)
    rounds = getattr(model, "n_rounds_", None)
    if rounds is not None:  # boosting rounds kept (fewer than asked with early stopping)
        result.extras["n_rounds"] = int(rounds)
    exponents = getattr(model, "exponents_", None)
    if exponents is not None:  # a pool's trust in each member, learned on held-out rows
        from baselines.lattice.blend import is_dropped

        kept = [name for name, member in model.estimators if not is_dropped(member)]
        result.extras["pool"] = {
            "exponents": {name: round(float(w), 4) for name, w in zip(kept, exponents,
                                                                      strict=True)},
            "held_out": int(model.n_held_out_)}  # fmt: skip
    temperature = getattr(model, "temperature_", None)
    if temperature is not None:  # search-match's probabilities: fitted ("auto") or as set
        result.extras["temperature"] = {"value": float(temperature),
                                        "fitted": model.temperature == "auto"}  # fmt: skip
    window = getattr(model, "symmetry_window_", None)
    if window is not None:  # search-match's symmetry window: chosen ("auto") or as set
        result.extras["symmetry_window"] = {
            "value": float(window), "fitted": model.symmetry_window == "auto",
            "held_out": getattr(model, "window_accuracy_", {}),
        }  # fmt: skip
    importances = _pattern_importances(estimator, grid)
    if importances is not None:
        atomic_write_text(out / "importances.csv",
                          importances.to_csv(index=False, lineterminator="\n"))  # fmt: skip
    atomic_write_text(out / "result.json", json.dumps(result.to_dict(), indent=2, default=str))


def _pattern_importances(estimator: Any, grid: Grid) -> pd.DataFrame | None:
    """A forest's importances over the pooled 2theta bins (the peak features apart)."""
    if not hasattr(estimator, "named_steps") or "features" not in estimator.named_steps:
        return None
    model = estimator.named_steps["model"]
    if not hasattr(model, "feature_importances_"):
        return None
    union = estimator.named_steps["features"]
    pooled = dict(union.transformer_list)["pooled"]
    factor, n_points = pooled.named_steps["pool"].factor, pooled.named_steps["pool"].n_features_in_
    starts = np.arange(0, n_points, factor)
    start_angle, step = grid.two_theta_min, grid.step
    centre = start_angle + step * (
        starts + (np.minimum(starts + factor, n_points) - 1 - starts) / 2
    )
    values = np.asarray(model.feature_importances_)
    return pd.DataFrame({"two_theta": centre, "importance": values[: len(starts)]})
