"""The baselines report: a Markdown page with PNG figures, rebuilt from saved results.

Every run leaves ``baselines/<track>/<name>/result.json`` (and a search table, a
training history or importances where the model has them); :func:`write_report`
gathers whatever is there, so running one baseline at a time still gives one
report. Scores are Public-portion scores, exactly as the leaderboard shows
them: the report may be shared with students.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from baselines.runner.run import registry
from scoring.render import markdown_table
from xrd_bravais.contract import layout

GUESSES = ("uniform", "prior", "majority")
"""The random-guess baselines: no confusion matrix, no lift over themselves."""


def load_results(folder: Path) -> list[dict[str, Any]]:
    """Every ``*/result.json`` under ``folder``, in :func:`registry` order."""
    order = {name: i for i, name in enumerate(registry())}
    results = [json.loads(p.read_text()) for p in folder.glob("*/result.json")]
    return sorted(results, key=lambda r: (order.get(r["name"], len(order)), r["name"]))


def _pct(value: float | None) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{100 * value:.1f} %"


def _summary_table(results: list[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        public = r.get("public") or {}
        on = " (realism copies)" if r.get("extras", {}).get("search_on") == "realism" else ""
        cv = "n/a" if r["cv_accuracy"] is None else (
            f"{100 * r['cv_accuracy']:.1f} ± {100 * (r['cv_accuracy_std'] or 0):.1f} %{on}"
        )  # fmt: skip
        rows.append({
            "baseline": r["title"],
            "CV accuracy": cv,
            "Public accuracy": _pct(public.get("accuracy")),
            "Public macro-F1": "n/a" if not public else f"{public['macro_f1']:.3f}",
            "training rows": training_rows(r),
            "search (s)": f"{r['search_seconds']:.1f}",
            "fit (s)": f"{r['fit_seconds']:.1f}",
            "predict (s)": f"{r['predict_seconds']:.2f}",
        })  # fmt: skip
    return markdown_table(pd.DataFrame(rows))


def training_rows(result: dict[str, Any]) -> str:
    """The training rows of a run, and the sample a model drew from them if smaller.

    >>> training_rows({"n_train": 29262, "extras": {"rows_used": 10000}})
    '29,262 (10,000 used)'
    >>> training_rows({"n_train": 153536, "extras": {"rows_used": 10000, "own_rows_used": 5432}})
    "153,536 (10,000 used: 5,432 of the build's own source first)"
    """
    extras = result.get("extras", {})
    used, own = extras.get("rows_used"), extras.get("own_rows_used")
    if not used:
        return f"{result['n_train']:,}"
    first = f": {own:,} of the build's own source first" if own is not None else ""
    return f"{result['n_train']:,} ({used:,} used{first})"


def epochs_line(extras: dict[str, Any], validated: bool) -> str:
    """The report's line on the epochs a network trained, from its run's ``extras``.

    Examples
    --------
    >>> extras = {"epochs_run": 25, "best_epoch": 25, "device": "cpu",
    ...           "time_budget": {"minutes": 40.0, "epochs": 60},
    ...           "rows_per_epoch": {"rows": 30000, "own": 5432}}
    >>> print(epochs_line(extras, validated=False))  # doctest: +NORMALIZE_WHITESPACE
    - trained 25 epochs of 60 (time budget 40 min), each of 30,000 training rows drawn
      afresh (the 5,432 of the build's own source, the rest at random) on cpu, kept
      epoch 25 (lowest training loss)
    """
    budget = extras.get("time_budget")
    of = f" of {budget['epochs']} (time budget {budget['minutes']:g} min)" if budget else ""
    per_epoch = extras.get("rows_per_epoch")
    if per_epoch:  # each epoch a fresh draw of the training rows
        how = (f" (the {per_epoch['own']:,} of the build's own source, the rest at random)"
               if per_epoch["own"] else " at random")  # fmt: skip
        of += f", each of {per_epoch['rows']:,} training rows drawn afresh{how}"
    run = extras["epochs_run"]
    return (f"- trained {run} epoch{'s' * (run != 1)}{of} on {extras['device']}, kept epoch "
            f"{extras['best_epoch']} (lowest {'validation' if validated else 'training'} loss)")


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"`{k}={v}`" for k, v in params.items()) or "defaults (no search)"


def _plot_comparison(results: list[dict[str, Any]], references: dict[str, float],
                     path: Path) -> Path | None:  # fmt: skip
    import matplotlib.pyplot as plt

    scored = [r for r in results if r.get("public")]
    if not scored:
        return None
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(scored) + 1.5))
    names = [r["title"] for r in scored][::-1]
    accuracy = [100 * r["public"]["accuracy"] for r in scored][::-1]
    low = [100 * r["public"]["accuracy_ci"][0] for r in scored][::-1]
    high = [100 * r["public"]["accuracy_ci"][1] for r in scored][::-1]
    error = np.array([np.subtract(accuracy, low), np.subtract(high, accuracy)])
    ax.barh(names, accuracy, xerr=error, color="#4c72b0", capsize=3)
    for label, value, style in (("uniform guess", references["uniform"], ":"),
                                ("majority guess", references["majority"], "--")):  # fmt: skip
        ax.axvline(
            100 * value, color="#c44e52", linestyle=style, label=f"{label} {100 * value:.1f} %"
        )
    # Scores carry Wilson intervals for accuracy (scoring.metrics.Scores); the legend
    # sits above the bars, where no bar can run under it.
    ax.set_xlabel("Public accuracy (%), 95 % Wilson interval")
    ax.set_xlim(0, 100)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=2, fontsize=8,
              frameon=False)  # fmt: skip
    fig.tight_layout()
    return _save(fig, path)


def _plot_confusion(confusion: list[list[int]], labels: list[Any], title: str,
                    path: Path) -> Path:  # fmt: skip
    import matplotlib.pyplot as plt

    cm = np.asarray(confusion, dtype=float)
    present = (cm.sum(axis=1) > 0) | (cm.sum(axis=0) > 0)
    cm, labels = cm[present][:, present], [lab for lab, p in zip(labels, present, strict=True) if p]
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.4 * len(labels) + 1.5)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    if len(labels) <= 30:
        ax.set_xticks(range(len(labels)), [str(x) for x in labels], rotation=90)
        ax.set_yticks(range(len(labels)), [str(x) for x in labels])
        for i, j in zip(*np.nonzero(cm), strict=True):
            ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if share[i, j] > 0.5 else "black")  # fmt: skip
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}: Public portion (counts; colour = row share)", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _plot_importances(table: pd.DataFrame, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot(table["two_theta"], table["importance"], color="#55a868", lw=1)
    ax.set_xlabel("2theta (degrees)")
    ax.set_ylabel("importance")
    # Importances sum to 1: what the pooled bins leave went to the peak features.
    peaks = 1 - float(table["importance"].sum())
    ax.set_title(f"Importance of each pooled 2theta bin (peak features: {100 * peaks:.0f} % "
                 "of the total)", fontsize=9)  # fmt: skip
    fig.tight_layout()
    return _save(fig, path)


def _plot_history(history: pd.DataFrame, best_epoch: int | None, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, (loss, acc) = plt.subplots(1, 2, figsize=(9, 3.2))
    for axis, metric in ((loss, "loss"), (acc, "accuracy")):
        axis.plot(history["epoch"], history[f"train_{metric}"], label="training")
        # Without a validation split (the CNN's default) there is no validation curve.
        if history[f"val_{metric}"].notna().any():
            axis.plot(history["epoch"], history[f"val_{metric}"], label="validation")
        if best_epoch:
            axis.axvline(
                best_epoch, color="grey", linestyle=":", label=f"kept (epoch {best_epoch})"
            )
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
    loss.legend(fontsize=8)
    fig.suptitle("1D-CNN learning curves", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    from xrd_bravais.contract.io import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def write_report(competition: str | Path, track: str = "bravais") -> Path:
    """Write ``baselines/<track>/report.md`` and its figures from the saved results.

    Returns
    -------
    Path
        The report.

    Raises
    ------
    FileNotFoundError
        If no baseline has been run on this track.
    """
    import matplotlib

    matplotlib.use("Agg")
    from scoring.grade import train_counts
    from xrd_bravais.contract.io import atomic_write_text
    from xrd_bravais.contract.references import reference_scores
    from xrd_bravais.contract.tasks import load_task

    competition = Path(competition)
    spec = load_task(competition).track(track)
    folder = competition / layout.BASELINES / spec.name
    results = load_results(folder)
    if not results:
        raise FileNotFoundError(
            f"no baseline results under {folder}; run `xrd-bravais baselines run`"
        )
    references = reference_scores(train_counts(competition, spec))
    lines = [
        f"# Baselines: {spec.name} track",
        "",
        f"Competition `{competition.name}`. Scores are on the **Public** portion of the test "
        "set, as on the leaderboard. CV accuracy is the mean over stratified folds grouped "
        "by compound (formula and space group), on the training rows used; \"(realism "
        "copies)\" where the held-out rows were scored as one realism copy each (a baseline "
        "meant for measured patterns, or `--search-on realism`).",
        "",
        _summary_table(results),
        "",
        "## Compared with random guessing",
        "",
        f"Expected accuracy of guessing from the training counts: uniform "
        f"{_pct(references['uniform'])}, prior-matched {_pct(references['prior'])}, majority class "
        f"{_pct(references['majority'])}.",
        "",
    ]
    comparison = _plot_comparison(results, references, folder / "comparison.png")
    if comparison:
        lines += ["![Public accuracy of each baseline](comparison.png)", ""]
        for r in results:
            if r.get("public") and r["name"] not in GUESSES:
                lift = r["public"]["accuracy"] / references["uniform"]
                lines.append(f"- {r['title']}: {_pct(r['public']['accuracy'])}, "
                             f"{lift:.1f} times the uniform guess.")  # fmt: skip
        lines.append("")
    lines += _final_section(competition, spec.name, results)
    for r in results:
        lines += _model_section(r, folder, spec.labels)
    lines += _methods_section(folder)
    path = folder / "report.md"
    atomic_write_text(path, "\n".join(lines).rstrip() + "\n")
    return path


def _final_section(competition: Path, track: str, results: list[dict[str, Any]]) -> list[str]:
    """After the close: each baseline's Public, Private and Measured accuracy.

    Nothing before the deadline (the Private and Measured scores are hidden until
    then); after it they are the published final ranking's, so the report may
    still be shared.
    """
    if not (competition / layout.LEADERBOARD_DB).is_file():
        return []
    from scoring.leaderboard import Leaderboard

    with Leaderboard.open(competition) as board:
        if not board.is_closed():
            return []
        frame = board.submissions(track).set_index("submission_id")
    scored = [r for r in results if r.get("submission_id") in frame.index]
    if not scored:
        return []
    measured = bool(frame["measured_accuracy"].notna().any())
    rows = []
    for r in scored:
        row = frame.loc[r["submission_id"]]
        rows.append({
            "baseline": r["title"],
            "Public accuracy": _pct(row["public_accuracy"]),
            "Private accuracy": _pct(row["private_accuracy"]),
            **({"Measured accuracy": _pct(row["measured_accuracy"])} if measured else {}),
            "training rows": training_rows(r),
        })  # fmt: skip
    note = (" Measured: the real measurements of the test set, which no baseline saw in "
            "training." if measured else "")  # fmt: skip
    return ["## Final scores", "",
            f"The competition is closed: every portion's accuracy of each baseline.{note}", "",
            markdown_table(pd.DataFrame(rows)), ""]  # fmt: skip


def _window_line(window: dict[str, Any]) -> str:
    """search-match's symmetry window: its value, and how it was chosen."""
    line = f"- symmetry window: {window['value']:g}"
    held = dict(window.get("held_out") or {})
    if not window["fitted"]:
        return line + " (as set)"
    if not held:
        return line + (" (chosen: no held-out row of the build's own source could be scored, "
                       "or the labels have no rank)")
    where = f"chosen on {int(held.pop('rows')):,} held-out training rows of the build's own source"
    none = f"{100 * held['0']:.1f} % right with no window"
    chosen = f"{window['value']:g}"
    if chosen != "0":
        return line + f" ({where}: {100 * held[chosen]:.1f} % right; {none})"
    top = max(held, key=lambda w: held[w])
    if held[top] <= held["0"]:
        return line + f" ({where}: {none}, no window did better)"
    return (line + f" ({where}: {none}, {100 * held[top]:.1f} % at {top}, a gain within "
            "twice its standard error)")


def _methods_section(folder: Path) -> list[str]:
    """The course's methods (``baselines methods``), where they have been run."""
    path = folder / "methods" / "methods.json"
    if not path.is_file():
        return []
    m = json.loads(path.read_text())
    learning = pd.DataFrame(m["learning_curve"])
    validation = pd.DataFrame(m["validation_curve"])
    first, last = learning.iloc[0], learning.iloc[-1]
    best = validation.loc[validation["validation_accuracy"].idxmax()]
    return [
        "## Methods the course teaches", "",
        f"On {m['rows']:,} training rows, {m['cv']}-fold cross-validation grouped by compound "
        "(`xrd-bravais baselines methods`).", "",
        "![Learning curve](methods/learning_curve.png)", "",
        "- Learning curve (random forest): validation accuracy "
        f"{_pct(first['validation_accuracy'])} on {int(first['train_rows']):,} rows, "
        f"{_pct(last['validation_accuracy'])} on "
        f"{int(last['train_rows']):,}, training accuracy {_pct(last['train_accuracy'])}: "
        + ("the gap is over-fitting, and the rising validation curve says more data helps."
           if last["train_accuracy"] - last["validation_accuracy"] > 0.1
           else "the curves meet: more capacity, not more data, would help."), "",
        "![Validation curve](methods/validation_curve.png)", "",
        "- Validation curve (RBF-SVM): best validation accuracy "
        f"{_pct(best['validation_accuracy'])} at C = {best['C']:g}; small C under-fits "
        "(both scores low), large C over-fits "
        "(training accuracy near 100 %).", "",
        "![PCA](methods/pca.png)", "",
        f"- PCA: the first two components hold {_pct(m['explained_variance'])} of the variance. "
        f"k-means with {m['n_clusters']} clusters agrees with the labels at an adjusted Rand "
        f"index of {m['ari']:.3f} (the same clusters against shuffled labels: "
        f"{m['ari_shuffled']:.3f}): the classes are not clusters of whole patterns, which is "
        "why the models learn from peak positions.", "",
    ]  # fmt: skip


def _model_section(result: dict[str, Any], folder: Path, labels: tuple[Any, ...]) -> list[str]:
    out = folder / result["name"]
    lines = [
        f"## {result['title']} (`{result['name']}`)",
        "",
        f"- best parameters: {_params(result['best_params'])}",
        f"- submission: `{result['submission']}`; model: `{result['model']}`",
    ]
    extras = result.get("extras", {})
    if extras.get("set"):
        lines.insert(-1, f"- set for this run (`--set`): {_params(extras['set'])}")
    history = pd.read_csv(out / "history.csv") if (out / "history.csv").is_file() else None
    if extras.get("best_epoch"):
        # Without a validation split the fit keeps the epoch of lowest training loss.
        validated = history is not None and history["val_loss"].notna().any()
        lines.append(epochs_line(extras, validated))
    if extras.get("temperature"):
        temperature = extras["temperature"]
        how = ("fitted on held-out compounds of the training rows" if temperature["fitted"]
               else "as set")  # fmt: skip
        lines.append("- probabilities: softmax of each label's best match at temperature "
                     f"{temperature['value']:.3g} ({how})")  # fmt: skip
    if extras.get("symmetry_window"):
        lines.append(_window_line(extras["symmetry_window"]))
    if extras.get("members"):
        how_said = {"reused": "the model fitted by its own run", "fitted": "fitted here"}
        members = extras["members"].items()
        settings = extras.get("member_settings", {})
        lines.append("- votes with: " + ", ".join(
            f"`{name}` ({how_said[how]}"
            + (f"; set: {_params(settings[name])})" if name in settings else ")")
            for name, how in members if how != "dropped"
        ))  # fmt: skip
        dropped = [f"`{name}`" for name, how in members if how == "dropped"]
        if dropped:
            lines.append(f"- left out on this track: {', '.join(dropped)}")
    if extras.get("pool"):
        pool = extras["pool"]
        lines.append(f"- pooled with exponents learned on {pool['held_out']:,} held-out "
                     "training rows (the product of the members' probabilities, each "
                     "raised to its exponent): " + ", ".join(
                         f"`{name}` {w:.2f}" for name, w in pool["exponents"].items()))  # fmt: skip
    lines.append("")
    if (out / "search.csv").is_file():
        table = pd.read_csv(out / "search.csv").head(10)
        table.columns = [c.removeprefix("param_") for c in table.columns]
        table = table.round(4)
        lines += ["Parameter search (best first):", "", markdown_table(table), ""]
    public = result.get("public")
    if public and result["name"] not in GUESSES:
        _plot_confusion(public["confusion"], list(labels), result["title"], out / "confusion.png")
        lines += [f"![Confusion matrix]({result['name']}/confusion.png)", ""]
    if (out / "importances.csv").is_file():
        _plot_importances(pd.read_csv(out / "importances.csv"), out / "importances.png")
        lines += [f"![Importances over 2theta]({result['name']}/importances.png)", ""]
    if history is not None:
        _plot_history(
            history, result.get("extras", {}).get("best_epoch"), out / "learning_curves.png"
        )
        lines += [f"![Learning curves]({result['name']}/learning_curves.png)", ""]
    return lines
