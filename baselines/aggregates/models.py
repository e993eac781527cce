"""Baselines of the aggregates task: count the particles from the scattering.

* ``random``: a uniform random guess (scikit-learn's ``DummyClassifier``);
* ``forest``: a random forest on the radial profile of each pattern (the
  azimuthal mean in rings one pixel wide: the aggregate's size and its
  inter-particle distances, without its orientation), plus each channel's mean;
* ``cnn2d``: a small 2D convolutional network (:class:`CNN2DClassifier`), trained
  with flips and quarter turns of the patterns (they keep the count), a tqdm
  progress bar and the training and validation loss and accuracy of every epoch
  in ``history_``.

:func:`run_aggregate_baselines` fits each on ``train.parquet``, writes
``submissions/<name>_count.csv``, records it as a baseline row on the
leaderboard and keeps the CNN's history (CSV and plot) under
``baselines/count/<name>/``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from xrd_bravais.contract import layout

NAMES: Final = ("random", "forest", "cnn2d")
TITLES: Final = {
    "random": "Random guess (uniform)",
    "forest": "Random forest (radial profile)",
    "cnn2d": "2D CNN",
}


@dataclass(frozen=True)
class Images:
    """Rows of an aggregates parquet file: ids, ``(n, channels, size, size)`` images, labels."""

    ids: npt.NDArray[np.str_]
    X: npt.NDArray[np.float32]
    channels: tuple[str, ...]
    y: npt.NDArray[np.int64] | None = None


def read_images(path: str | Path, column: str = "n_particles") -> Images:
    """Read ``train.parquet`` or ``test.parquet`` of an aggregates build.

    Raises
    ------
    ValueError
        If the file does not record its image size and channels (not an aggregates build).
    """
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    metadata = (table.schema.metadata or {}).get(layout.IMAGE_METADATA_KEY)
    if metadata is None:
        raise ValueError(f"{path} has no image metadata: is it from build --task aggregates?")
    shape = json.loads(metadata)
    size, channels = int(shape["size"]), tuple(shape["channels"])
    names = [f"y{i}" for i in range(len(channels) * size * size)]
    X = np.column_stack([table.column(n).to_numpy() for n in names]).astype(np.float32)
    y = table.column(column).to_numpy().astype(np.int64) if column in table.column_names else None
    ids = np.asarray(table.column(layout.ID).to_pylist())
    return Images(ids, X.reshape(len(X), len(channels), size, size), channels, y)


# --------------------------------------------------------------------------- features
def radial_features(X: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """Per row and channel: the radial profile about the centre, and the channel's mean.

    ``X`` is ``(n, channels, size, size)``; the result ``(n, channels * (size // 2 + 1))``.
    """
    from competition.aggregates.draw import ring_index

    n, channels, size, _ = X.shape
    ring = ring_index(size)
    n_bins = size // 2
    keep = ring < n_bins
    # One matrix product for all rows: the ring-average operator.
    operator = np.zeros((size * size, n_bins))
    operator[np.flatnonzero(keep), ring[keep]] = 1.0
    operator /= operator.sum(axis=0, keepdims=True)
    flat = X.reshape(n, channels, size * size)
    profiles = flat @ operator
    means = flat.mean(axis=2, keepdims=True)
    return np.concatenate([profiles, means], axis=2).reshape(n, -1)


def make_forest(random_state: int = 0) -> Any:
    """The random forest on :func:`radial_features`."""
    return make_pipeline(
        FunctionTransformer(radial_features),
        RandomForestClassifier(n_estimators=300, min_samples_leaf=2, n_jobs=-1,
                               random_state=random_state),
    )  # fmt: skip


# --------------------------------------------------------------------------- CNN
class CNN2DClassifier(ClassifierMixin, BaseEstimator):
    """A small 2D CNN in the scikit-learn interface, with its training history.

    Three convolution blocks (16, 32, 64 channels; batch norm, ReLU, 2 x 2
    pooling), a global average and a linear layer. Training uses AdamW, random
    flips and quarter turns of each batch (they keep the count), a held-out
    validation share, a tqdm bar over the epochs that prints the training and
    validation loss and accuracy of each, and keeps the weights of the epoch
    with the best validation loss.

    Parameters
    ----------
    epochs : int
    batch_size : int
    learning_rate : float
    weight_decay : float
    validation_fraction : float
        Share of the training rows held out (stratified) to watch the training.
    augment : bool
        Flip and turn the images of each batch at random.
    random_state : int
    device : str
        ``"auto"``: CUDA when there is a GPU, else the CPU.
    verbose : bool
        Show the progress bar and print a line per epoch.

    Attributes
    ----------
    classes_ : ndarray
        The labels seen in ``fit``.
    history_ : pandas.DataFrame
        ``epoch, train_loss, train_accuracy, val_loss, val_accuracy`` per epoch.
    best_epoch_ : int
        The epoch whose weights the model keeps.
    device_ : str
    """

    def __init__(self, epochs: int = 25, batch_size: int = 64, learning_rate: float = 3e-3,
                 weight_decay: float = 1e-4, validation_fraction: float = 0.15,
                 augment: bool = True, random_state: int = 0, device: str = "auto",
                 verbose: bool = False) -> None:  # fmt: skip
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.augment = augment
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def _network(self, channels: int, n_classes: int) -> Any:
        from torch import nn

        def block(c_in: int, c_out: int) -> list[Any]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                    nn.MaxPool2d(2)]  # fmt: skip

        head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, n_classes)]
        return nn.Sequential(*block(channels, 16), *block(16, 32), *block(32, 64), *head)

    def fit(self, X: npt.ArrayLike, y: npt.ArrayLike) -> CNN2DClassifier:
        """Train on images ``(n, channels, size, size)`` and their labels."""
        import torch
        from sklearn.model_selection import train_test_split
        from tqdm.auto import tqdm

        if self.epochs < 1 or self.batch_size < 1 or not 0 < self.validation_fraction < 1:
            raise ValueError(
                "epochs and batch_size must be positive, validation_fraction in (0, 1)"
            )
        images = np.asarray(X, dtype=np.float32)
        if images.ndim != 4:
            raise ValueError(f"X must be (n, channels, size, size), got shape {images.shape}")
        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        torch.manual_seed(self.random_state)
        self.device_ = ("cuda" if torch.cuda.is_available() else "cpu") if self.device == "auto" \
            else self.device  # fmt: skip
        fit_rows, val_rows = train_test_split(
            np.arange(len(images)), test_size=self.validation_fraction,
            random_state=self.random_state, stratify=codes,
        )  # fmt: skip
        net = self._network(images.shape[1], len(self.classes_)).to(self.device_)
        optimiser = torch.optim.AdamW(net.parameters(), lr=self.learning_rate,
                                      weight_decay=self.weight_decay)  # fmt: skip
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimiser, max_lr=self.learning_rate, epochs=self.epochs,
            steps_per_epoch=-(-len(fit_rows) // self.batch_size),
        )  # fmt: skip
        data = torch.from_numpy(images)
        target = torch.from_numpy(codes.astype(np.int64))
        rng = np.random.default_rng(self.random_state)
        rows, best, best_state = [], np.inf, None
        bar = tqdm(range(1, self.epochs + 1), desc="cnn2d", unit="epoch", disable=not self.verbose)
        for epoch in bar:
            net.train()
            order = rng.permutation(fit_rows)
            total, correct, loss_sum = 0, 0, 0.0
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                xb = self._augmented(data[batch], rng).to(self.device_)
                yb = target[batch].to(self.device_)
                optimiser.zero_grad()
                logits = net(xb)
                loss = torch.nn.functional.cross_entropy(logits, yb)
                loss.backward()
                optimiser.step()
                schedule.step()
                loss_sum += float(loss.detach()) * len(batch)
                correct += int((logits.argmax(1) == yb).sum())
                total += len(batch)
            val_loss, val_accuracy = self._evaluate(net, data[val_rows], target[val_rows])
            rows.append({"epoch": epoch, "train_loss": loss_sum / total,
                         "train_accuracy": correct / total, "val_loss": val_loss,
                         "val_accuracy": val_accuracy})  # fmt: skip
            if val_loss < best:
                best = val_loss
                self.best_epoch_ = epoch
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            bar.set_postfix(train=f"{100 * correct / total:.1f}%", val=f"{100 * val_accuracy:.1f}%")
            if self.verbose:
                bar.write(f"epoch {epoch}/{self.epochs}: train loss {loss_sum / total:.3f}, "
                          f"accuracy {100 * correct / total:.1f} %; validation loss "
                          f"{val_loss:.3f}, accuracy {100 * val_accuracy:.1f} %")  # fmt: skip
        net.load_state_dict(best_state)
        self.network_ = net.eval()
        self.history_ = pd.DataFrame(rows)
        return self

    def _augmented(self, batch: Any, rng: np.random.Generator) -> Any:
        """Flip and turn each image at random: the particle count does not change."""
        import torch

        if not self.augment:
            return batch
        if rng.random() < 0.5:
            batch = torch.flip(batch, dims=(3,))
        return torch.rot90(batch, k=int(rng.integers(4)), dims=(2, 3))

    def _evaluate(self, net: Any, data: Any, target: Any) -> tuple[float, float]:
        import torch

        net.eval()
        with torch.no_grad():
            logits = torch.cat([net(data[i : i + 512].to(self.device_))
                                for i in range(0, len(data), 512)])  # fmt: skip
            target = target.to(self.device_)
            loss = float(torch.nn.functional.cross_entropy(logits, target))
            accuracy = float((logits.argmax(1) == target).float().mean())
        return loss, accuracy

    def predict_proba(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Class probabilities, in the order of ``classes_``."""
        import torch

        data = torch.from_numpy(np.asarray(X, dtype=np.float32))
        with torch.no_grad():
            out = [torch.softmax(self.network_(data[i : i + 512].to(self.device_)), 1).cpu()
                   for i in range(0, len(data), 512)]  # fmt: skip
        return torch.cat(out).numpy().astype(np.float64)

    def predict(self, X: npt.ArrayLike) -> npt.NDArray[Any]:
        """The most probable label of each image."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def plot_history(self, path: str | Path) -> Path:
        """Save the loss and accuracy curves (training and validation) as a PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from xrd_bravais.contract.io import atomic_path

        h = self.history_
        fig, (loss, accuracy) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
        for split, style in (("train", "-"), ("val", "--")):
            label = "training" if split == "train" else "validation"
            loss.plot(h["epoch"], h[f"{split}_loss"], style, label=label)
            accuracy.plot(h["epoch"], 100 * h[f"{split}_accuracy"], style, label=label)
        for ax, name in ((loss, "cross-entropy loss"), (accuracy, "accuracy (%)")):
            ax.axvline(self.best_epoch_, color="grey", lw=0.8, ls=":")
            ax.set_xlabel("epoch")
            ax.set_ylabel(name)
            ax.legend()
        fig.suptitle(f"2D CNN: kept epoch {self.best_epoch_} (best validation loss)")
        with atomic_path(Path(path)) as tmp:
            fig.savefig(tmp, format="png", dpi=90, metadata={"Software": None})
        plt.close(fig)
        return Path(path)


# --------------------------------------------------------------------------- run
def make_baseline(name: str, random_state: int = 0, verbose: bool = False, **params: Any) -> Any:
    """One of :data:`NAMES`, seeded; ``params`` override the defaults (CNN and forest)."""
    from baselines.lattice.random_guess import make_random_guess

    if name == "random":
        return make_random_guess("uniform", random_state)
    if name == "forest":
        return make_forest(random_state).set_params(
            **{f"randomforestclassifier__{k}": v for k, v in params.items()})  # fmt: skip
    if name == "cnn2d":
        return CNN2DClassifier(random_state=random_state, verbose=verbose, **params)
    raise ValueError(f"unknown baseline {name!r}; the aggregates task has {', '.join(NAMES)}")


def run_aggregate_baselines(
    competition: str | Path,
    names: list[str] | None = None,
    *,
    random_state: int = 0,
    record: bool = True,
    verbose: bool = True,
    params: dict[str, dict[str, Any]] | None = None,
) -> pd.DataFrame:
    """Fit, predict, write and record each baseline; one row of figures per baseline.

    Returns
    -------
    pandas.DataFrame
        ``name, title, fit_seconds, submission`` and, where recorded, the Public
        ``accuracy`` and ``macro_f1``.
    """
    from scoring.leaderboard import Leaderboard
    from xrd_bravais.contract.io import atomic_write_text
    from xrd_bravais.contract.tasks import load_task

    root = Path(competition)
    track = load_task(root).default
    train = read_images(root / layout.TRAIN, track.column)
    test = read_images(root / layout.TEST, track.column)
    rows = []
    for name in names or list(NAMES):
        model = make_baseline(name, random_state, verbose, **(params or {}).get(name, {}))
        start = time.perf_counter()
        X_train = train.X if name != "random" else train.X.reshape(len(train.X), -1)
        model.fit(X_train, train.y)
        fit_seconds = time.perf_counter() - start
        X_test = test.X if name != "random" else test.X.reshape(len(test.X), -1)
        predicted = model.predict(X_test)
        path = root / layout.SUBMISSIONS / f"{name}{layout.track_suffix(track.name)}.csv"
        frame = pd.DataFrame({layout.ID: test.ids, track.column: predicted.astype(int)})
        atomic_write_text(path, frame.to_csv(index=False, lineterminator="\n"))
        row: dict[str, Any] = {"name": name, "title": TITLES[name], "fit_seconds": fit_seconds,
                               "submission": str(path)}  # fmt: skip
        if isinstance(model, CNN2DClassifier):
            out = root / layout.BASELINES / track.name / name
            atomic_write_text(out / "history.csv",
                              model.history_.to_csv(index=False, lineterminator="\n"))  # fmt: skip
            row["history_plot"] = str(model.plot_history(out / "history.png"))
            row["best_epoch"] = model.best_epoch_
        if record:
            with Leaderboard.open(root) as board:
                receipt = board.submit(path, team=TITLES[name], track=track.name,
                                       message=f"baseline {name}", baseline=True)  # fmt: skip
            if receipt.public is not None:
                row["accuracy"] = receipt.public.accuracy
                row["macro_f1"] = receipt.public.macro_f1
        rows.append(row)
    return pd.DataFrame(rows)
