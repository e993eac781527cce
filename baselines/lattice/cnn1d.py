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
With ``smooth`` and ``background`` the network starts with a fixed layer that
smooths the pattern and removes its SNIP background (what ``xgboost-realism``
does in front of its trees), so measured patterns are cleaned inside the model.
With ``axis="log-d"`` the max-pool is replaced by a resampling onto points
evenly spaced in ln d (:mod:`baselines.lattice.log_d`), on which a larger cell is a shift.

Training: AdamW with a cosine learning-rate schedule run to its end,
cross-entropy with optional "balanced" class weights, an optional stratified
validation split for early stopping on the plain validation loss (the best
epoch's weights are kept), and
augmentation of each training batch: a strained cell (every reflection moved as
Bragg's law says for cell lengths scaled by up to 2 %, which keeps the lattice
type), a zero-point shift, extra Gaussian broadening (crystallite size) and
noise. Optionally, test-time augmentation averages the predictions over
strained copies of each pattern, and a time budget (``max_minutes``) runs only the
epochs that fit in it at the first epoch's pace. A seeded fit repeats exactly on
CPU; CUDA is used when available.
"""

from __future__ import annotations

from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from baselines.lattice.cnn_network import STEM_POOL, forward, prepare
from baselines.lattice.cnn_training import (
    EARLIER_DEFAULTS,
    HISTORY_COLUMNS,
    load_checkpoint,
    save_checkpoint,
    strained,
    train,
)
from xrd_bravais.contract.grid import Grid, require_grid

__all__ = ["HISTORY_COLUMNS", "CNN1DClassifier"]


class CNN1DClassifier(ClassifierMixin, BaseEstimator):
    """A 1D-CNN over powder patterns with the scikit-learn classifier interface.

    (Over 200 lines: half of it this documentation of its parameters; the network
    and its training are :mod:`~baselines.lattice.cnn_network` and
    :mod:`~baselines.lattice.cnn_training`.)

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
    smooth : int, default=0
        Odd window (grid points) of a Savitzky-Golay filter (quadratic) in the
        network's first layer; 0 leaves it out. 9 is ``Smooth(9)``, 0.18 degrees on
        the default grid.
    background : int, default=0
        Widest SNIP window (grid points) of a background removal in the network's
        first layer, after the smoothing; 0 leaves it out. 50 is
        ``SubtractBackground(50)``, 1 degree on the default grid. The layer has
        no weights: it cleans training batches (after the augmentation) and test
        patterns alike, and it travels with a saved model.
    axis : {"two-theta", "log-d"}, default="two-theta"
        The axis the convolutions run along. ``"log-d"`` first resamples the
        pattern onto ``n_points / pool`` points evenly spaced in ln d
        (:class:`baselines.lattice.log_d.LogD`; needs ``grid``): a larger or smaller cell then
        only shifts the pattern, and the ratios of d-spacings that tell the
        lattices apart become fixed distances, seen the same at any cell size.
    channels : tuple of int, default=(32, 64, 96, 128)
        Filters of each convolution block.
    kernel_size : int, default=7
    dropout : float, default=0.3
    epochs : int, default=60
        At most this many passes over the training rows.
    max_minutes : float, optional
        A time budget for the training. After each epoch, the fit plans as many
        epochs as fit in it at the mean pace so far (at least the ones run, at most
        ``epochs``) and moves the end of the cosine schedule to the last of them,
        so the learning rate still decays to 0 when the pace changes. The epochs
        run are in ``history_``.
        A budget makes the fit depend on the machine's speed: to repeat a fit
        exactly, set ``epochs`` to the epochs it ran and no budget. Default: none.
    rows_per_epoch : int, optional
        Where the training rows are more, each epoch trains on this many, drawn
        afresh (seeded): every row of the build's own source first, where
        :meth:`fit` is told which those are, and the rest at random from the
        others. On a build with the whole archive (153,536 rows, 5,432 of them
        minerals) a time budget otherwise runs two epochs in which the minerals
        are 3.5 % of the rows; drawn this way the network meets them every
        epoch and the learning rate decays over many more, shorter epochs.
        Default: every row, every epoch.
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
        realism model (:func:`competition.physics.realism.degrade`: K-alpha2 line,
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
        Where the columns lie in 2theta (:class:`xrd_bravais.contract.grid.Grid`); required
        for the strain augmentation, which moves peaks by Bragg's law. No default:
        a fit with ``augment=True`` and no grid is refused.
    precision : {"float32", "bfloat16"}, default="float32"
        ``"bfloat16"`` trains with mixed precision (``torch.autocast``: convolutions
        and linear layers compute in bfloat16; the cleaning layer, which comes first,
        the weights and the loss stay in float32). On a CPU with AMX
        (this project's 2-core machine) a training step takes half the time
        (4.9 against 2.4 ms a row); on a GPU it needs bfloat16 support (Ampere or
        later). Prediction is in float32 either way.
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
    own_rows_per_epoch_ : int or None
        With ``rows_per_epoch`` fewer than the rows and ``own_source`` given: the
        rows of the build's own source in every epoch (less any held out for
        validation).
    """

    def __init__(
        self,
        pool: int = 8,
        stem: int = 16,
        smooth: int = 0,
        background: int = 0,
        axis: str = "two-theta",
        channels: tuple[int, ...] = (32, 64, 96, 128),
        kernel_size: int = 7,
        dropout: float = 0.3,
        epochs: int = 60,
        max_minutes: float | None = None,
        rows_per_epoch: int | None = None,
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
        precision: str = "float32",
        device: str = "auto",
        random_state: int = 0,
        verbose: int = 1,
    ) -> None:
        self.pool = pool
        self.stem = stem
        self.smooth = smooth
        self.background = background
        self.axis = axis
        self.channels = channels
        self.kernel_size = kernel_size
        self.dropout = dropout
        self.epochs = epochs
        self.max_minutes = max_minutes
        self.rows_per_epoch = rows_per_epoch
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
        self.precision = precision
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- fitting -------------------------------------------------------------

    def _check_params(self) -> None:
        check_params(self)

    def _test_time_strains(self) -> list[float]:
        return checked_strains(self)

    def fit(self, X: Any, y: Any, own_source: Any = None) -> CNN1DClassifier:
        """Train on patterns ``X`` (rows) with labels ``y``; returns ``self``.

        Parameters
        ----------
        X, y : array-like
        own_source : array-like of bool, shape (n_rows,), optional
            Which rows are of the build's own source, beside the computed
            structures of ``--train-extra`` (``baselines run`` passes it from
            ``train_meta.parquet``): with ``rows_per_epoch``, every epoch trains on
            all of them. Default: every row alike.
        """
        from baselines.data import checked_own_source

        self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)
        own_source = checked_own_source(own_source, len(y))
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("need at least 2 classes to fit, got 1 class")
        self.model_, self.history_, self.best_epoch_, self.device_ = train(
            self, X, y, codes, own_source
        )
        self.own_rows_per_epoch_ = (
            None if own_source is None or self.rows_per_epoch is None
            or self.rows_per_epoch >= len(y) else min(int(own_source.sum()), self.rows_per_epoch)
        )  # fmt: skip
        return self

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
        inputs = torch.from_numpy(prepare(X))
        model = self.model_.eval()
        strains = self._test_time_strains()
        grid = (self.grid.two_theta_min, self.grid.step) if strains else None
        parts = []
        with torch.no_grad():
            for start in range(0, len(inputs), 512):
                batch = inputs[start : start + 512]
                copies = [strained(batch, e, grid) for e in strains] if grid else [batch]
                proba = sum(torch.softmax(forward(model, x), dim=1) for x in copies)
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
        check_is_fitted(self, "model_")
        return save_checkpoint(self, path)

    @classmethod
    def load(cls, path: str | Path) -> CNN1DClassifier:
        """Rebuild a fitted classifier from :meth:`save`'s checkpoint."""
        return load_checkpoint(cls, path)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Estimators pickled before the stem and test-time strains existed (a model.pkl
        # from an earlier release) predict as they did.
        super().__setstate__({**EARLIER_DEFAULTS, **state})

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


def check_params(est: CNN1DClassifier) -> None:
    """Refuse parameters out of their range, each with what it accepts."""
    if not (est.class_weight in ("balanced", None) or isinstance(est.class_weight, dict)):
        raise ValueError(
            f"class_weight must be 'balanced', a dict or None, got {est.class_weight!r}"
        )
    if est.precision not in ("float32", "bfloat16"):
        raise ValueError(f"precision must be 'float32' or 'bfloat16', got {est.precision!r}")
    if est.device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {est.device!r}")
    if est.max_minutes is not None and (
            isinstance(est.max_minutes, bool) or not isinstance(est.max_minutes, Real)
            or not 0 < est.max_minutes < np.inf):  # fmt: skip
        raise ValueError(
            f"max_minutes must be a positive number of minutes or None, got {est.max_minutes!r}"
        )
    rows = est.rows_per_epoch
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int | np.integer)
                             or rows < 1):  # fmt: skip
        raise ValueError(f"rows_per_epoch must be a positive whole number or None, got {rows!r}")
    if not 0 <= est.validation_fraction < 1:
        raise ValueError(
            f"validation_fraction must be in [0, 1), got {est.validation_fraction!r}"
        )
    for name in ("pool", "epochs", "batch_size", "kernel_size"):
        value = getattr(est, name)
        if not (isinstance(value, int | np.integer) and value >= 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    for name in ("stem", "background"):
        value = getattr(est, name)
        if not (isinstance(value, int | np.integer) and value >= 0):
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if not (isinstance(est.smooth, int | np.integer) and (est.smooth == 0 or (
            est.smooth >= 3 and est.smooth % 2 == 1))):  # fmt: skip
        raise ValueError(f"smooth must be 0 or an odd integer >= 3, got {est.smooth!r}")
    if est.stem and est.pool % STEM_POOL:
        raise ValueError(
            f"a stem reads the pattern pooled by {STEM_POOL}, so pool must be a multiple "
            f"of {STEM_POOL}, got pool={est.pool!r} (or set stem=0)"
        )
    if est.augment not in (True, False, "realism"):
        raise ValueError(f"augment must be True, False or 'realism', got {est.augment!r}")
    if not 0 <= est.realism_fraction <= 1:
        raise ValueError(
            f"realism_fraction must be in [0, 1], got {est.realism_fraction!r}"
        )
    if est.axis not in ("two-theta", "log-d"):
        raise ValueError(f"axis must be 'two-theta' or 'log-d', got {est.axis!r}")
    if est.augment:
        require_grid(est.grid, f"CNN1DClassifier(augment={est.augment!r})")
    if est.axis == "log-d":
        require_grid(est.grid, "CNN1DClassifier(axis='log-d')")
    checked_strains(est)


def checked_strains(est: CNN1DClassifier) -> list[float]:
    """The checked ``test_time_strains``: read again at prediction, where they may be set."""
    try:
        strains = np.asarray(est.test_time_strains, dtype=float)
    except (TypeError, ValueError):
        strains = np.full((1, 1), np.nan)
    if strains.ndim != 1 or not np.all(np.abs(strains) < 0.5):
        raise ValueError(
            "test_time_strains must be a sequence of relative strains, each within "
            f"+-0.5, got {est.test_time_strains!r}"
        )
    if len(strains):
        require_grid(est.grid, "CNN1DClassifier(test_time_strains=...)")
    return [float(e) for e in strains]
