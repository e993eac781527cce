"""A one-dimensional convolutional network over the pattern, as a scikit-learn classifier.

Convolutions see a pattern the way a diffractionist does: as peaks, their
positions and their spacing, wherever they fall. The network is

    sqrt(intensity) -> max-pool by 2 -> stem: Conv1d(9) -> BatchNorm -> ReLU
    -> max-pool by ``pool / 2``
    -> [Conv1d(k) -> BatchNorm -> ReLU -> MaxPool(2)] x len(channels)
    -> adaptive average pool to 16 positions -> Linear(128) -> Dropout -> Linear(classes)

so it takes any grid length (the 4,251-point default or the 180-point
``nano281`` preset) and keeps coarse position information (where along 2theta a
feature was found) for the dense layers. The stem sees the pattern at 0.04
degrees, finer than a peak, so that split peaks are told apart before the
pooling merges them (``stem=0`` pools by ``pool`` at once, the earlier network).
With ``axis="log-d"`` the max-pool is replaced by a resampling onto points
evenly spaced in ln d (:mod:`baselines.log_d`), on which a larger cell is a shift.

Training: AdamW with a cosine learning-rate schedule run to its end,
cross-entropy with optional "balanced" class weights, an optional stratified
validation split for early stopping on the plain validation loss (the best
epoch's weights are kept), and
augmentation of each training batch: a strained cell (every reflection moved as
Bragg's law says for cell lengths scaled by up to 2 %, which keeps the lattice
type), a zero-point shift, extra Gaussian broadening (crystallite size) and
noise. Optionally, test-time augmentation averages the predictions over
strained copies of each pattern. A seeded fit repeats exactly on CPU; CUDA is
used when available.
"""

from __future__ import annotations

import copy
import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from contract.grid import Grid, require_grid

# The stem convolution reads the pattern max-pooled by STEM_POOL grid points, through
# STEM_KERNEL taps (0.36 degrees on the default grid: a peak and its near neighbours).
STEM_POOL = 2
STEM_KERNEL = 9

# What a model saved before these parameters existed was: no stem, no test-time strains.
_EARLIER_DEFAULTS: dict[str, Any] = {"stem": 0, "test_time_strains": ()}

HISTORY_COLUMNS = (
    "epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate",
    "seconds",
)  # fmt: skip


def _network(n_features: int, n_classes: int, pool: int, channels: tuple[int, ...],
             kernel_size: int, dropout: float, axis: str = "two-theta",
             grid: Grid | None = None, stem: int = 0):  # type: ignore[no-untyped-def]  # fmt: skip
    import torch.nn as nn

    # With a stem, the pattern is first read at 2 grid points (0.04 degrees on the
    # default grid, finer than a 0.1-degree peak) and pooled the rest of the way after.
    first = STEM_POOL if stem else pool
    layers: list[nn.Module]
    if axis == "log-d":
        from baselines.log_d import LogD

        layers = [LogD(require_grid(grid, "axis='log-d'"), -(-n_features // first))]
    else:
        layers = [nn.MaxPool1d(first, ceil_mode=True)] if first > 1 else []
    previous = 1
    if stem:
        layers += [
            nn.Conv1d(1, stem, STEM_KERNEL, padding=STEM_KERNEL // 2, bias=False),
            nn.BatchNorm1d(stem),
            nn.ReLU(),
        ]
        if pool // STEM_POOL > 1:
            layers.append(nn.MaxPool1d(pool // STEM_POOL, ceil_mode=True))
        previous = stem
    for width in channels:
        layers += [
            nn.Conv1d(previous, width, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm1d(width),
            nn.ReLU(),
            nn.MaxPool1d(2, ceil_mode=True),
        ]
        previous = width
    layers += [
        nn.AdaptiveAvgPool1d(16),
        nn.Flatten(),
        nn.Linear(16 * previous, 128),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(128, n_classes),
    ]
    return nn.Sequential(*layers)


class CNN1DClassifier(ClassifierMixin, BaseEstimator):
    """A 1D-CNN over powder patterns with the scikit-learn classifier interface.

    Parameters
    ----------
    pool : int, default=8
        Max-pool the input by this factor before the convolution blocks (4,251
        points to 532, 0.16 degrees apart: a peak's position is kept to half a bin).
        Must be even when there is a stem.
    stem : int, default=16
        Filters of a first convolution that reads the pattern pooled by only 2
        (0.04 degrees on the default grid, finer than a 0.1-degree peak) before
        the rest of the pooling, so peaks closer than a pooled bin, such as the
        split reflections of a slightly distorted cell, reach the network as
        distinct features; 0 leaves it out (the pattern is pooled by ``pool`` at
        once). On the full AMCSD build it raised the 60-epoch Public accuracy
        from 61.5 % to 67.3 % (Private 57.3 % to 65.4 %) for 25 % more time.
    axis : {"two-theta", "log-d"}, default="two-theta"
        The axis the convolutions run along. ``"log-d"`` first resamples the
        pattern onto ``n_points / pool`` points evenly spaced in ln d
        (:class:`baselines.log_d.LogD`; needs ``grid``): a larger or smaller cell then
        only shifts the pattern, and the ratios of d-spacings that tell the
        lattices apart become fixed distances, seen the same at any cell size.
    channels : tuple of int, default=(32, 64, 96, 128)
        Filters of each convolution block.
    kernel_size : int, default=7
    dropout : float, default=0.3
    epochs : int, default=60
        At most this many passes over the training rows.
    batch_size : int, default=64
    learning_rate : float, default=2e-3
        Peak AdamW learning rate (cosine decay to 0 over ``epochs``).
    weight_decay : float, default=1e-4
    validation_fraction : float, default=0.0
        Share of the rows held out (stratified) to watch for early stopping;
        0 (the default) trains on everything for the whole ``epochs``-epoch
        schedule. Early stopping is off by default because the validation loss of
        a few hundred rows jumps from epoch to epoch and patience ended the run
        halfway down the cosine schedule (58.5 % Public against 61.5 % for the
        whole schedule on the full AMCSD build).
    patience : int, default=12
        With a validation split, stop after this many epochs without a lower
        validation loss.
    class_weight : "balanced", dict or None, default="balanced"
        Weight the loss by ``n / (n_classes * count)`` per class, or by the
        given ``{label: weight}``.
    augment : bool or "realism", default=True
        Strain, shift, broaden and add noise to each training batch. On the
        AMCSD build (5,791 training rows) it raised Public accuracy from 52 % to
        68 % (with ``pool=8`` and 60 epochs; see the README). ``"realism"``
        also passes a share ``realism_fraction`` of each batch through the
        realism model (:func:`competition.realism.degrade`: K-alpha2 line,
        shifts, size broadening, impurity peaks, background and Poisson
        counts, drawn afresh every epoch), for test patterns that are measured.
    realism_fraction : float, default=0.5
        With ``augment="realism"``, the share of rows drawn through the realism
        model; the others keep the clean augmentation.
    max_strain : float, default=0.02
        Largest relative change of the cell lengths: every reflection moves as
        Bragg's law says, and the lattice type is unchanged.
    max_shift : float, default=2.0
        Largest zero-point shift, in grid points (0.04 degrees on the default grid).
    max_broadening : float, default=1.5
        Largest extra Gaussian sigma, in grid points.
    noise : float, default=2e-4
        Standard deviation of the added noise (intensities are at most 1). Kept
        small because the network sees square roots: noise of 2e-4 becomes a
        floor of about 0.014 after the square root.
    test_time_strains : tuple of float, default=(-0.01, -0.005, 0.0, 0.005, 0.01)
        Test-time augmentation: :meth:`predict_proba` averages the probabilities
        of copies of each pattern whose cell is strained by these relative amounts
        (needs ``grid``); ``()`` predicts on the pattern as given. On the full
        AMCSD build the five default strains added 1.1 and 1.8 points of Public
        accuracy to two trained networks, for five times the prediction time
        (still a second or two for 1,450 patterns).
    grid : Grid, optional
        Where the columns lie in 2theta (:class:`contract.grid.Grid`); required
        for the strain augmentation, which moves peaks by Bragg's law. No default:
        a fit with ``augment=True`` and no grid is refused.
    device : {"auto", "cpu", "cuda"}, default="auto"
    random_state : int, default=0
    verbose : int, default=1
        0 silent; 1 a progress bar with per-epoch losses and accuracies.

    Attributes
    ----------
    classes_ : ndarray
    n_features_in_ : int
    model_ : torch.nn.Module
        The network with the weights of the epoch with the lowest validation loss
        (without a validation split: the lowest training loss, near the end of
        the schedule), on the CPU.
    history_ : DataFrame
        One row per epoch: ``epoch, train_loss, train_accuracy, val_loss,
        val_accuracy, learning_rate, seconds``.
    best_epoch_ : int
        The epoch whose weights were kept.
    device_ : str
        Where it was trained.
    """

    def __init__(
        self,
        pool: int = 8,
        stem: int = 16,
        axis: str = "two-theta",
        channels: tuple[int, ...] = (32, 64, 96, 128),
        kernel_size: int = 7,
        dropout: float = 0.3,
        epochs: int = 60,
        batch_size: int = 64,
        learning_rate: float = 2e-3,
        weight_decay: float = 1e-4,
        validation_fraction: float = 0.0,
        patience: int = 12,
        class_weight: str | dict[Any, float] | None = "balanced",
        augment: bool | str = True,
        realism_fraction: float = 0.5,
        max_strain: float = 0.02,
        max_shift: float = 2.0,
        max_broadening: float = 1.5,
        noise: float = 2e-4,
        test_time_strains: tuple[float, ...] = (-0.01, -0.005, 0.0, 0.005, 0.01),
        grid: Grid | None = None,
        device: str = "auto",
        random_state: int = 0,
        verbose: int = 1,
    ) -> None:
        self.pool = pool
        self.stem = stem
        self.axis = axis
        self.channels = channels
        self.kernel_size = kernel_size
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.class_weight = class_weight
        self.augment = augment
        self.realism_fraction = realism_fraction
        self.max_strain = max_strain
        self.max_shift = max_shift
        self.max_broadening = max_broadening
        self.noise = noise
        self.test_time_strains = test_time_strains
        self.grid = grid
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- fitting -------------------------------------------------------------

    def _check_params(self) -> None:
        if not (self.class_weight in ("balanced", None) or isinstance(self.class_weight, dict)):
            raise ValueError(
                f"class_weight must be 'balanced', a dict or None, got {self.class_weight!r}"
            )
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(
                f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}"
            )
        for name in ("pool", "epochs", "batch_size", "kernel_size"):
            value = getattr(self, name)
            if not (isinstance(value, int | np.integer) and value >= 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not (isinstance(self.stem, int | np.integer) and self.stem >= 0):
            raise ValueError(f"stem must be a non-negative integer, got {self.stem!r}")
        if self.stem and self.pool % STEM_POOL:
            raise ValueError(
                f"a stem reads the pattern pooled by {STEM_POOL}, so pool must be a multiple "
                f"of {STEM_POOL}, got pool={self.pool!r} (or set stem=0)"
            )
        if self.augment not in (True, False, "realism"):
            raise ValueError(f"augment must be True, False or 'realism', got {self.augment!r}")
        if not 0 <= self.realism_fraction <= 1:
            raise ValueError(
                f"realism_fraction must be in [0, 1], got {self.realism_fraction!r}"
            )
        if self.axis not in ("two-theta", "log-d"):
            raise ValueError(f"axis must be 'two-theta' or 'log-d', got {self.axis!r}")
        if self.augment:
            require_grid(self.grid, f"CNN1DClassifier(augment={self.augment!r})")
        if self.axis == "log-d":
            require_grid(self.grid, "CNN1DClassifier(axis='log-d')")
        self._test_time_strains()

    def _test_time_strains(self) -> list[float]:
        """The checked ``test_time_strains``: read again at prediction, where they may be set."""
        try:
            strains = np.asarray(self.test_time_strains, dtype=float)
        except (TypeError, ValueError):
            strains = np.full((1, 1), np.nan)
        if strains.ndim != 1 or not np.all(np.abs(strains) < 0.5):
            raise ValueError(
                "test_time_strains must be a sequence of relative strains, each within "
                f"+-0.5, got {self.test_time_strains!r}"
            )
        if len(strains):
            require_grid(self.grid, "CNN1DClassifier(test_time_strains=...)")
        return [float(e) for e in strains]

    def fit(self, X: Any, y: Any) -> CNN1DClassifier:
        """Train on patterns ``X`` (rows) with labels ``y``; returns ``self``."""
        import torch
        from tqdm.auto import tqdm

        self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("need at least 2 classes to fit, got 1 class")
        self.device_ = _pick_device(self.device)
        torch.manual_seed(self.random_state)
        rng = np.random.default_rng(self.random_state)
        train, val = _validation_split(codes, self.validation_fraction, rng)

        device = torch.device(self.device_)
        inputs = torch.from_numpy(_prepare(X)).to(device)
        targets = torch.from_numpy(codes.astype(np.int64)).to(device)
        model = _network(X.shape[1], len(self.classes_), self.pool, tuple(self.channels),
                         self.kernel_size, self.dropout, self.axis, self.grid,
                         self.stem).to(device)  # fmt: skip
        weight = None
        if self.class_weight is not None:
            weights = compute_class_weight(self.class_weight, classes=self.classes_, y=y)
            weight = torch.tensor(weights, dtype=torch.float32).to(device)
        loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
        # Early stopping watches the plain cross-entropy: the validation rows follow
        # the test distribution, and class weights of rare lattices (a few rows
        # each) would make the watched loss jump from epoch to epoch.
        plain_loss = torch.nn.CrossEntropyLoss()
        optimiser = torch.optim.AdamW(
            model.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=self.epochs)

        history: list[dict[str, float]] = []
        best_loss, best_state, best_epoch, waited = np.inf, None, 0, 0
        bar = tqdm(range(1, self.epochs + 1), desc="cnn1d", unit="epoch",
                   disable=not self.verbose, leave=False)  # fmt: skip
        for epoch in bar:
            start = time.perf_counter()
            learning_rate = optimiser.param_groups[0]["lr"]
            order = train[rng.permutation(len(train))]
            train_loss, train_accuracy = self._train_epoch(
                model, inputs, targets, order, loss_fn, optimiser, rng
            )
            schedule.step()
            val_loss, val_accuracy = (
                _evaluate(model, inputs[val], targets[val], plain_loss, self.batch_size)
                if len(val) else (np.nan, np.nan)
            )  # fmt: skip
            row = dict(zip(HISTORY_COLUMNS, (
                epoch, train_loss, train_accuracy, val_loss, val_accuracy, learning_rate,
                time.perf_counter() - start,
            ), strict=True))  # fmt: skip
            history.append(row)
            if self.verbose:
                bar.set_postfix(loss=f"{train_loss:.3f}", val_loss=f"{val_loss:.3f}",
                                val_acc=f"{val_accuracy:.3f}")  # fmt: skip
                tqdm.write(_epoch_line(row, self.epochs))
            monitored = val_loss if len(val) else train_loss
            if monitored < best_loss - 1e-4:
                best_loss, best_epoch, waited = monitored, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                waited += 1
                if len(val) and waited >= self.patience:
                    if self.verbose:
                        tqdm.write(f"early stop: no lower validation loss for {waited} epochs; "
                                   f"keeping epoch {best_epoch}")  # fmt: skip
                    break
        bar.close()
        if best_state is not None:
            model.load_state_dict(best_state)
        self.model_ = model.cpu().eval()
        self.history_ = pd.DataFrame(history, columns=list(HISTORY_COLUMNS))
        self.best_epoch_ = best_epoch
        return self

    def _train_epoch(self, model, inputs, targets, order, loss_fn, optimiser, rng):  # type: ignore[no-untyped-def]
        import torch

        model.train()
        total_loss, correct = 0.0, 0
        for start in range(0, len(order), self.batch_size):
            batch = torch.from_numpy(order[start : start + self.batch_size]).to(inputs.device)
            if len(batch) < 2:  # BatchNorm needs two rows; drop a lone leftover.
                continue
            x = inputs[batch]
            if self.augment:
                grid = (self.grid.two_theta_min, self.grid.step)
                x = _augment(x, rng, grid, self.max_strain, self.max_shift,
                             self.max_broadening, self.noise)  # fmt: skip
            if self.augment == "realism":
                x = _realism(x, rng, self.grid, self.realism_fraction)
            optimiser.zero_grad()
            logits = _forward(model, x)
            loss = loss_fn(logits, targets[batch])
            loss.backward()
            optimiser.step()
            total_loss += loss.item() * len(batch)
            correct += int((logits.argmax(1) == targets[batch]).sum())
        return total_loss / max(len(order), 1), correct / max(len(order), 1)

    # -- prediction ----------------------------------------------------------

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``.

        Returned as float32, the precision the network computes them in: float32
        kernels choose their summation order by batch size, so a row's probabilities
        agree between batches to float32 precision (about 1e-7 relative), not beyond.
        Widening them to float64 would claim a precision they do not have.
        """
        import torch

        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=np.float32, reset=False)
        inputs = torch.from_numpy(_prepare(X))
        model = self.model_.eval()
        strains = self._test_time_strains()
        grid = (self.grid.two_theta_min, self.grid.step) if strains else None
        parts = []
        with torch.no_grad():
            for start in range(0, len(inputs), 512):
                batch = inputs[start : start + 512]
                copies = [_strained(batch, e, grid) for e in strains] if grid else [batch]
                proba = sum(torch.softmax(_forward(model, x), dim=1) for x in copies)
                parts.append((proba / len(copies)).numpy())
        return np.concatenate(parts).astype(np.float32, copy=False)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable label of each pattern."""
        proba = self.predict_proba(X)
        result: np.ndarray = self.classes_[np.argmax(proba, axis=1)]
        return result

    # -- checkpoints ---------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write a checkpoint (parameters, classes, weights, history) atomically."""
        import torch

        from contract.io import atomic_write_bytes

        check_is_fitted(self, "model_")
        buffer = io.BytesIO()
        torch.save({
            # Plain values only, so the checkpoint loads with weights_only=True.
            "params": {**self.get_params(),
                       "grid": None if self.grid is None else self.grid.to_dict()},
            "classes": self.classes_.tolist(),
            "n_features_in": self.n_features_in_,
            "state_dict": self.model_.state_dict(),
            "history": self.history_.to_dict("list"),
            "best_epoch": self.best_epoch_,
            "device": self.device_,
        }, buffer)  # fmt: skip
        path = Path(path)
        atomic_write_bytes(path, buffer.getvalue())
        return path

    @classmethod
    def load(cls, path: str | Path) -> CNN1DClassifier:
        """Rebuild a fitted classifier from :meth:`save`'s checkpoint."""
        import torch

        checkpoint = torch.load(Path(path), map_location="cpu", weights_only=True)
        params = dict(checkpoint["params"])
        # Checkpoints written before the stem and test-time strains existed hold
        # networks without a stem that predicted on the pattern as given.
        params = {**_EARLIER_DEFAULTS, **params}
        if params.get("grid") is not None:
            params["grid"] = Grid.from_dict(params["grid"])
        self = cls(**params)
        self.classes_ = np.asarray(checkpoint["classes"])
        self.n_features_in_ = checkpoint["n_features_in"]
        self.model_ = _network(self.n_features_in_, len(self.classes_), self.pool,
                               tuple(self.channels), self.kernel_size, self.dropout,
                               self.axis, self.grid, self.stem)  # fmt: skip
        self.model_.load_state_dict(checkpoint["state_dict"])
        self.model_.eval()
        self.history_ = pd.DataFrame(checkpoint["history"], columns=list(HISTORY_COLUMNS))
        self.best_epoch_ = checkpoint["best_epoch"]
        self.device_ = checkpoint["device"]
        return self

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Estimators pickled before the stem and test-time strains existed (a model.pkl
        # from an earlier release) predict as they did.
        super().__setstate__({**_EARLIER_DEFAULTS, **state})

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


def _pick_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but torch sees no CUDA device")
    return requested


def _prepare(X: np.ndarray) -> np.ndarray:
    """Patterns as a (rows, 1 channel, points) float32 array."""
    return np.ascontiguousarray(X[:, None, :], dtype=np.float32)


def _forward(model, x):  # type: ignore[no-untyped-def]
    """The network on square-rooted intensities (after any augmentation of the raw ones)."""
    return model(x.clamp(min=0).sqrt())


def _validation_split(
    codes: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/validation row indices; every class keeps a training row."""
    if fraction == 0:
        return np.arange(len(codes)), np.array([], dtype=np.int64)
    val = []
    for code in np.unique(codes):
        rows = rng.permutation(np.flatnonzero(codes == code))
        take = round(fraction * len(rows)) if len(rows) > 1 else 0
        val.append(rows[: min(take, len(rows) - 1)])
    val_rows = np.sort(np.concatenate(val)).astype(np.int64)
    train_rows = np.setdiff1d(np.arange(len(codes)), val_rows)
    return train_rows, val_rows


def _warp(x, strain: np.ndarray, shift: np.ndarray, grid: tuple[float, float]):  # type: ignore[no-untyped-def]
    """Resample each pattern as if its cell were strained and the instrument's zero shifted.

    Row ``i`` is resampled as if its cell were scaled by ``1 + strain[i]`` and the
    zero were off by ``shift[i]`` grid points.

    Scaling every cell length by ``1 + e`` keeps the lattice type and moves each
    reflection to ``sin(theta') = sin(theta) / (1 + e)`` (Bragg's law): the
    label-preserving transformation of a powder pattern.
    """
    import torch

    start, step = grid
    n_points = x.shape[-1]
    strain, shift = np.reshape(strain, (-1, 1)), np.reshape(shift, (-1, 1))
    two_theta = start + step * np.arange(n_points)[None, :]
    # The value at 2theta' comes from the unstrained pattern at sin(theta) = sin(theta') (1 + e).
    sine = np.clip(np.sin(np.radians(two_theta) / 2) * (1 + strain), 0, 1)
    source = (2 * np.degrees(np.arcsin(sine)) - start) / step - shift
    position = torch.as_tensor(source, dtype=x.dtype, device=x.device)
    low = position.floor().long()
    weight = (position - low).unsqueeze(1)
    inside = ((low >= 0) & (low < n_points - 1)).unsqueeze(1)
    low = low.clamp(0, n_points - 2).unsqueeze(1)
    value = x.gather(2, low) * (1 - weight) + x.gather(2, low + 1) * weight
    return torch.where(inside, value, torch.zeros((), dtype=x.dtype, device=x.device))


def _strained(x, strain: float, grid: tuple[float, float]):  # type: ignore[no-untyped-def]
    """Every pattern of ``x`` as if its cell were strained by ``strain``, maximum 1 again."""
    x = _warp(x, np.full(len(x), strain), np.zeros(len(x)), grid)
    return x / x.amax(dim=2, keepdim=True).clamp(min=1e-6)


def _augment(x, rng: np.random.Generator, grid: tuple[float, float], max_strain: float,
             max_shift: float, max_broadening: float, noise: float):  # type: ignore[no-untyped-def]  # fmt: skip
    """Strain, shift, broaden and add noise to a batch of patterns.

    Each pattern is strained and shifted on its own; the batch is broadened by a
    Gaussian of random sigma; intensities stay in [0, 1] with the maximum at 1.
    """
    import torch
    import torch.nn.functional as F

    if max_strain > 0 or max_shift > 0:
        strain = rng.uniform(-max_strain, max_strain, size=len(x))
        x = _warp(x, strain, rng.uniform(-max_shift, max_shift, size=len(x)), grid)
    if max_broadening > 0:
        sigma = float(rng.uniform(0, max_broadening))
        if sigma > 0.3:
            half = int(np.ceil(3 * sigma))
            taps = torch.exp(-0.5 * (torch.arange(-half, half + 1, device=x.device) / sigma) ** 2)
            x = F.conv1d(x, (taps / taps.sum()).view(1, 1, -1).to(x.dtype), padding=half)
    if noise > 0:
        generator = torch.Generator(device=x.device).manual_seed(int(rng.integers(2**31)))
        x = x + noise * torch.randn(x.shape, generator=generator, device=x.device)
    x = x.clamp(min=0)
    return x / x.amax(dim=2, keepdim=True).clamp(min=1e-6)


def _realism(x, rng: np.random.Generator, grid: Grid, fraction: float):  # type: ignore[no-untyped-def]
    """Draw a share ``fraction`` of the batch's rows through the realism model."""
    import torch

    from competition.realism import degrade

    rows = np.flatnonzero(rng.random(len(x)) < fraction)
    if not len(rows):
        return x
    picked = torch.from_numpy(rows).to(x.device)
    drawn = degrade(x[picked, 0].detach().cpu().numpy(), grid, rng)
    x = x.clone()
    x[picked, 0] = torch.from_numpy(drawn).to(device=x.device, dtype=x.dtype)
    return x


def _evaluate(model, inputs, targets, loss_fn, batch_size: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    import torch

    model.eval()
    total, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(inputs), 4 * batch_size):
            logits = _forward(model, inputs[start : start + 4 * batch_size])
            target = targets[start : start + 4 * batch_size]
            total += float(loss_fn(logits, target)) * len(target)
            correct += int((logits.argmax(1) == target).sum())
    return total / len(inputs), correct / len(inputs)


def _epoch_line(row: dict[str, float], epochs: int) -> str:
    return (
        f"epoch {int(row['epoch']):>3}/{epochs}  train loss {row['train_loss']:.4f} "
        f"acc {row['train_accuracy']:.3f}  val loss {row['val_loss']:.4f} "
        f"acc {row['val_accuracy']:.3f}  ({row['seconds']:.1f} s)"
    )
