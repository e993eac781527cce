"""Training the 1D-CNN: the epochs, the augmentation of each batch, early stopping.

:func:`train` is :meth:`CNN1DClassifier.fit <baselines.lattice.cnn1d.CNN1DClassifier.fit>`
after the checks: the AdamW optimiser on a cosine schedule run to its end, an optional
stratified validation split watched for early stopping (plain cross-entropy), an
optional time budget (the schedule shortened to the epochs that fit), and the
augmentation of every batch (strain, zero shift, broadening, noise, and optionally the
realism model). Checkpoints are written and read here too.
"""

from __future__ import annotations

import copy
import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.class_weight import compute_class_weight

from baselines.lattice.cnn_network import forward, network, pick_device, prepare
from xrd_bravais.contract.grid import Grid

HISTORY_COLUMNS = (
    "epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate",
    "seconds",
)  # fmt: skip
# What a model saved before these parameters existed was: no stem, no test-time strains,
# no preprocessing layer, no time budget.
EARLIER_DEFAULTS: dict[str, Any] = {"stem": 0, "test_time_strains": (), "smooth": 0,
                                    "background": 0, "precision": "float32",
                                    "max_minutes": None, "rows_per_epoch": None}


def budgeted_epochs(epochs: int, max_minutes: float | None, epoch_seconds: float) -> int:
    """The epochs that fit in ``max_minutes`` at ``epoch_seconds`` an epoch.

    At least 1 (the first has run), at most ``epochs``; all of them without a budget.

    Examples
    --------
    >>> budgeted_epochs(60, 45, epoch_seconds=75.0)
    36
    >>> [budgeted_epochs(60, None, 75.0), budgeted_epochs(60, 0.5, 75.0),
    ...  budgeted_epochs(20, 45, 1.0)]
    [60, 1, 20]
    """
    if max_minutes is None:
        return epochs
    fit = int(60.0 * max_minutes // max(epoch_seconds, 1e-9))
    return max(1, min(epochs, fit))


def epoch_rows(train: np.ndarray, own_source: np.ndarray | None, rows_per_epoch: int | None,
               rng: np.random.Generator) -> np.ndarray:  # fmt: skip
    """The training rows of one epoch, in the order they are visited.

    Every row of ``train`` shuffled; with ``rows_per_epoch`` (fewer than them) a
    fresh draw of that many: every row of the build's own source (``own_source``
    at the row's index) first, the rest at random from the others.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> own = np.array([True, True, False, False, False, False])
    >>> rows = epoch_rows(np.arange(6), own, 4, rng)
    >>> sorted(rows.tolist())[:2], len(rows)
    ([0, 1], 4)
    """
    if rows_per_epoch is None or rows_per_epoch >= len(train):
        return train[rng.permutation(len(train))]
    if own_source is None:
        chosen = rng.choice(train, rows_per_epoch, replace=False)
    else:
        own, other = train[own_source[train]], train[~own_source[train]]
        chosen = (rng.choice(own, rows_per_epoch, replace=False) if len(own) >= rows_per_epoch
                  else np.concatenate([own, rng.choice(other, rows_per_epoch - len(own),
                                                       replace=False)]))  # fmt: skip
    return chosen[rng.permutation(len(chosen))]


def train(est: Any, X: np.ndarray, y: np.ndarray, codes: np.ndarray,
          own_source: np.ndarray | None = None) -> tuple[Any, pd.DataFrame, int, str]:  # fmt: skip
    """Train the network of ``est`` (a :class:`~baselines.lattice.cnn1d.CNN1DClassifier`).

    ``X`` are its checked patterns, ``codes`` their label codes and ``own_source``
    which rows are of the build's own source (:func:`epoch_rows`).

    Returns
    -------
    model : torch.nn.Module
        On the CPU, in evaluation mode, with the kept epoch's weights.
    history : DataFrame
        One row per epoch (:data:`HISTORY_COLUMNS`).
    best_epoch : int
    device : str
        Where it was trained.
    """
    import torch
    from tqdm.auto import tqdm

    device_name = pick_device(est.device)
    torch.manual_seed(est.random_state)
    rng = np.random.default_rng(est.random_state)
    train, val = _validation_split(codes, est.validation_fraction, rng)

    device = torch.device(device_name)
    inputs = torch.from_numpy(prepare(X)).to(device)
    targets = torch.from_numpy(codes.astype(np.int64)).to(device)
    model = network(X.shape[1], len(est.classes_), est.pool, tuple(est.channels),
                     est.kernel_size, est.dropout, est.axis, est.grid,
                     est.stem, est.smooth, est.background).to(device)  # fmt: skip
    weight = None
    if est.class_weight is not None:
        weights = compute_class_weight(est.class_weight, classes=est.classes_, y=y)
        weight = torch.tensor(weights, dtype=torch.float32).to(device)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
    # Early stopping watches the plain cross-entropy: the validation rows follow
    # the test distribution, and class weights of rare lattices (a few rows
    # each) would make the watched loss jump from epoch to epoch.
    plain_loss = torch.nn.CrossEntropyLoss()
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=est.learning_rate, weight_decay=est.weight_decay
    )
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=est.epochs)

    history: list[dict[str, float]] = []
    best_loss, best_state, best_epoch, waited = np.inf, None, 0, 0
    planned = est.epochs  # what the time budget leaves of them, after the first epoch
    bar = tqdm(range(1, est.epochs + 1), desc="cnn1d", unit="epoch",
               disable=not est.verbose, leave=False)  # fmt: skip
    started = time.perf_counter()
    for epoch in bar:
        start = time.perf_counter()
        learning_rate = optimiser.param_groups[0]["lr"]
        order = epoch_rows(train, own_source, est.rows_per_epoch, rng)
        train_loss, train_accuracy = train_epoch(
            est, model, inputs, targets, order, loss_fn, optimiser, rng
        )
        schedule.step()
        val_loss, val_accuracy = (
            _evaluate(model, inputs[val], targets[val], plain_loss, est.batch_size)
            if len(val) else (np.nan, np.nan)
        )  # fmt: skip
        row = dict(zip(HISTORY_COLUMNS, (
            epoch, train_loss, train_accuracy, val_loss, val_accuracy, learning_rate,
            time.perf_counter() - start,
        ), strict=True))  # fmt: skip
        history.append(row)
        if est.verbose:
            bar.set_postfix(loss=f"{train_loss:.3f}", val_loss=f"{val_loss:.3f}",
                            val_acc=f"{val_accuracy:.3f}")  # fmt: skip
            tqdm.write(_epoch_line(row, est.epochs))
        monitored = val_loss if len(val) else train_loss
        if monitored < best_loss - 1e-4:
            best_loss, best_epoch, waited = monitored, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            waited += 1
            if len(val) and waited >= est.patience:
                if est.verbose:
                    tqdm.write(f"early stop: no lower validation loss for {waited} epochs; "
                               f"keeping epoch {best_epoch}")  # fmt: skip
                break
        if est.max_minutes is not None:
            planned = _keep_to_budget(est, epoch, planned, time.perf_counter() - started,
                                      schedule, bar)  # fmt: skip
            if epoch >= planned:
                break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.cpu().eval(), pd.DataFrame(history, columns=list(HISTORY_COLUMNS)), \
        best_epoch, device_name


def _keep_to_budget(est: Any, epoch: int, planned: int, elapsed: float, schedule: Any,
                    bar: Any) -> int:  # fmt: skip
    """The epochs to run in all, after ``epoch`` took the fit to ``elapsed`` seconds.

    After every epoch, the epochs that fit in ``est.max_minutes`` at the mean pace so
    far (:func:`budgeted_epochs`, never fewer than the epochs run). When that differs
    from the plan, the cosine schedule is moved to end with it: shortened when the
    epochs run slower (a machine that got busy), lengthened when they run faster (a
    first epoch slowed by start-up or by other work). The learning rate then always
    decays to 0 at the last epoch, and the fit ends within the budget at the mean
    pace.
    """
    from tqdm.auto import tqdm

    fit = max(epoch, budgeted_epochs(est.epochs, est.max_minutes, elapsed / epoch))
    if fit == planned:
        return planned
    if fit > epoch:
        _retarget_cosine(schedule, fit)
    bar.total = fit
    bar.refresh()
    if est.verbose:
        tqdm.write(f"time budget {est.max_minutes:g} min: {fit} of {est.epochs} epochs "
                   f"({elapsed:.1f} s after epoch {epoch})")  # fmt: skip
    return fit


def _retarget_cosine(schedule: Any, epochs: int) -> None:
    """Make a stepped ``CosineAnnealingLR`` a cosine over ``epochs`` from its current step.

    ``epochs`` may be fewer or more than the schedule had.

    The scheduler steps by ratios of the current rate (its recursive form), so the
    rate is set to the new cosine's value at this step and ``T_max`` changed: the
    following steps then follow the new cosine down to ``eta_min`` at ``epochs``.
    """
    import math

    schedule.T_max = epochs
    factor = (1 + math.cos(math.pi * schedule.last_epoch / epochs)) / 2
    for group, base in zip(schedule.optimizer.param_groups, schedule.base_lrs, strict=True):
        group["lr"] = schedule.eta_min + (base - schedule.eta_min) * factor


def train_epoch(est, model, inputs, targets, order, loss_fn, optimiser, rng):  # type: ignore[no-untyped-def]
    """One pass over the training rows in batches; the mean loss and accuracy."""
    import torch

    model.train()
    total_loss, correct = 0.0, 0
    for start in range(0, len(order), est.batch_size):
        batch = torch.from_numpy(order[start : start + est.batch_size]).to(inputs.device)
        if len(batch) < 2:  # BatchNorm needs two rows; drop a lone leftover.
            continue
        x = inputs[batch]
        if est.augment:
            grid = (est.grid.two_theta_min, est.grid.step)
            x = _augment(x, rng, grid, est.max_strain, est.max_shift,
                         est.max_broadening, est.noise)  # fmt: skip
        if est.augment == "realism":
            x = _realism(x, rng, est.grid, est.realism_fraction)
        optimiser.zero_grad()
        # Mixed precision: convolutions and linear layers compute in bfloat16 (what
        # follows them takes their bfloat16 outputs); the cleaning layer, which comes
        # first, and the loss stay in float32.
        with torch.autocast(x.device.type, dtype=torch.bfloat16,
                            enabled=est.precision == "bfloat16"):  # fmt: skip
            logits = forward(model, x)
            loss = loss_fn(logits.float(), targets[batch])
        loss.backward()
        optimiser.step()
        total_loss += loss.item() * len(batch)
        correct += int((logits.argmax(1) == targets[batch]).sum())
    return total_loss / max(len(order), 1), correct / max(len(order), 1)


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


def strained(x, strain: float, grid: tuple[float, float]):  # type: ignore[no-untyped-def]
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

    from competition.physics.realism import degrade

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
            logits = forward(model, inputs[start : start + 4 * batch_size])
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


def save_checkpoint(est: Any, path: str | Path) -> Path:
    """Write ``est``'s checkpoint (parameters, classes, weights, history) atomically."""
    import torch

    from xrd_bravais.contract.io import atomic_write_bytes

    buffer = io.BytesIO()
    torch.save({
        # Plain values only, so the checkpoint loads with weights_only=True.
        "params": {**est.get_params(),
                   "grid": None if est.grid is None else est.grid.to_dict()},
        "classes": est.classes_.tolist(),
        "n_features_in": est.n_features_in_,
        "state_dict": est.model_.state_dict(),
        "history": est.history_.to_dict("list"),
        "best_epoch": est.best_epoch_,
        "device": est.device_,
        "own_rows_per_epoch": getattr(est, "own_rows_per_epoch_", None),
    }, buffer)  # fmt: skip
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_checkpoint(cls: type[Any], path: str | Path) -> Any:
    """Rebuild a fitted ``cls`` from :func:`save_checkpoint`'s checkpoint."""
    import torch

    checkpoint = torch.load(Path(path), map_location="cpu", weights_only=True)
    params = dict(checkpoint["params"])
    # Checkpoints written before the stem, test-time strains and preprocessing
    # existed hold networks without them that predicted on the pattern as given.
    params = {**EARLIER_DEFAULTS, **params}
    if params.get("grid") is not None:
        params["grid"] = Grid.from_dict(params["grid"])
    est = cls(**params)
    est.classes_ = np.asarray(checkpoint["classes"])
    est.n_features_in_ = checkpoint["n_features_in"]
    est.model_ = network(est.n_features_in_, len(est.classes_), est.pool,
                           tuple(est.channels), est.kernel_size, est.dropout,
                           est.axis, est.grid, est.stem, est.smooth,
                           est.background)  # fmt: skip
    est.model_.load_state_dict(checkpoint["state_dict"])
    est.model_.eval()
    est.history_ = pd.DataFrame(checkpoint["history"], columns=list(HISTORY_COLUMNS))
    est.best_epoch_ = checkpoint["best_epoch"]
    est.device_ = checkpoint["device"]
    est.own_rows_per_epoch_ = checkpoint.get("own_rows_per_epoch")  # absent: written before
    return est
