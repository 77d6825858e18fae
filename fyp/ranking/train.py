"""Training the fine ranker on a training table's rows, and judging it on held-out days against two baselines.

Split by time, never at random: the last `test_days` UTC days with rows are the test set (a model is always
used on days after those it learned from), and the last `validation_fraction` of the rest, by time, picks the
epoch (the one with the lowest validation loss). Every head's test AUC is reported beside:
- **popularity**: the video's rate of that outcome in the training rows (smoothed towards the overall rate; a
  video the training rows never showed gets the overall rate), i.e. "rank what did well";
- **logistic regression**: one per head (scikit-learn), on the same inputs; what a linear model gets.

Loss: the sum over heads of each head's binary cross-entropy, each divided by its own mean on the first batch-free
pass (the label rate's entropy), so a head whose label is rare (shares, follows) weighs as much as a common one.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from fyp.ranking.inputs import HEADS, InputSpec, fit_inputs, transform

__all__ = ["DAY_MS", "HeadMetrics", "RankerConfig", "TrainedRanker", "popularity_scores", "time_split",
           "train_ranker"]

DAY_MS = 86_400_000
POPULARITY_PRIOR_ROWS = 20  # the smoothing: a video's rate counts as 20 extra rows at the overall rate
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, kw_only=True)
class RankerConfig:
    """hidden: trunk widths; epochs: most passes (validation picks how many); lr: Adam's; test_days: held-out
    tail; validation_fraction: of the training rows, by time; threads: torch CPU threads (None: torch's; 1 is
    deterministic, and on a busy machine faster)."""

    hidden: tuple[int, ...] = (128, 64)
    tied: tuple[str, ...] = ("liked", "shared", "followed")  # heads that share one output direction (model.py)
    epochs: int = 10
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-5
    test_days: int = 1
    test_fraction: float | None = None  # hold out the last share of rows by time instead of whole days
    validation_fraction: float = 0.1
    seed: int = 0
    threads: int | None = None
    logistic_rows: int = 50_000  # training rows the logistic baseline fits on (a sample; 0: no baseline)

    def __post_init__(self) -> None:
        if unknown := set(self.tied) - set(HEADS):
            raise ValueError(f"tied: no head {sorted(unknown)}; the heads are {', '.join(HEADS)}")
        if self.epochs < 1 or self.batch_size < 2 or self.test_days < 1:
            raise ValueError("epochs >= 1, batch_size >= 2 and test_days >= 1 are required")
        if self.test_fraction is not None and not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction}")


@dataclass(frozen=True, kw_only=True)
class HeadMetrics:
    """One head on the test days: its positives, and the AUC of the model and of each baseline (None when the
    test days hold no positive or no negative)."""

    head: str
    positives: int
    auc: float | None
    popularity_auc: float | None
    logistic_auc: float | None


@dataclass(frozen=True, kw_only=True)
class TrainedRanker:
    spec: InputSpec
    model: object  # fyp.ranking.model.MultiTaskRanker, typed loosely so importing this module needs no torch
    metrics: tuple[HeadMetrics, ...]
    epochs_run: int
    best_epoch: int
    rows: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)


def time_split(times_ms: np.ndarray, *, test_days: int, validation_fraction: float,
               test_fraction: float | None = None) -> tuple[np.ndarray, ...]:
    """Index arrays (train, validation, test): test = the last `test_days` days with rows, or the last
    `test_fraction` of rows by time when given (rows of a single day); validation = the last share of the others by
    time. `ValueError` if nothing would be left to train on."""
    ordered = np.argsort(times_ms, kind="stable")
    if test_fraction is not None:
        cut = len(ordered) - int(len(ordered) * test_fraction)
        rest, test = ordered[:cut], ordered[cut:]
    else:
        days = times_ms // DAY_MS
        distinct = np.unique(days)
        if len(distinct) <= test_days:
            raise ValueError(f"rows span {len(distinct)} day(s); holding out {test_days} leaves none to train on "
                             "(hold out a share of the rows instead: --test-fraction)")
        test = np.flatnonzero(days >= distinct[-test_days])
        rest = ordered[days[ordered] < distinct[-test_days]]
    if len(rest) == 0 or len(test) == 0:
        raise ValueError(f"{len(times_ms)} rows leave {len(rest)} to train on and {len(test)} to test on")
    cut = len(rest) - int(len(rest) * validation_fraction)
    return rest[:cut], rest[cut:], test


def popularity_scores(train_videos: Sequence[str], train_labels: np.ndarray, videos: Sequence[str]) -> np.ndarray:
    """Each of `videos`' smoothed rate of the label in the training rows (the popularity baseline)."""
    overall = float(train_labels.mean()) if len(train_labels) else 0.0
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for video, label in zip(train_videos, train_labels.tolist(), strict=True):
        sums[video] = sums.get(video, 0.0) + label
        counts[video] = counts.get(video, 0) + 1
    prior = POPULARITY_PRIOR_ROWS
    return np.array([(sums.get(v, 0.0) + prior * overall) / (counts.get(v, 0) + prior) for v in videos])


def _auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    if labels.min(initial=1) == labels.max(initial=0):
        return None
    return float(roc_auc_score(labels, scores))


def _logistic_scores(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, *, rows: int,
                     seed: int) -> np.ndarray | None:
    from sklearn.linear_model import LogisticRegression

    if rows <= 0 or y_train.min() == y_train.max():
        return None
    if len(y_train) > rows:
        pick = np.random.default_rng(seed).choice(len(y_train), rows, replace=False)
        x_train, y_train = x_train[pick], y_train[pick]
    return LogisticRegression(max_iter=300).fit(x_train, y_train).predict_proba(x_test)[:, 1]


def train_ranker(columns: Mapping[str, np.ndarray], sets: Sequence[tuple[str, Sequence[str]]],
                 config: RankerConfig = RankerConfig(), *, progress: Progress | None = None) -> TrainedRanker:
    """Train on `columns` (the training table's: `event_time` in epoch ms, `video_id`, `label_<head>` and the
    feature columns of `sets`), report every head on the held-out days. progress: (stage, done, total)."""
    import torch

    from fyp.ranking.model import MultiTaskRanker

    seconds: dict[str, float] = {}
    started = time.perf_counter()
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    times = np.asarray(columns["event_time"], dtype=np.int64)
    labels = np.column_stack([np.asarray(columns[f"label_{head}"], dtype=np.float32) for head in HEADS])
    train, validation, test = time_split(times, test_days=config.test_days, test_fraction=config.test_fraction,
                                         validation_fraction=config.validation_fraction)
    spec = fit_inputs({name: np.asarray(columns[name])[train] for _, cols in sets for name in cols}, sets)
    inputs = transform(spec, columns)
    seconds["inputs"] = time.perf_counter() - started

    model = MultiTaskRanker(spec.width, config.hidden, tied=[HEADS.index(h) for h in config.tied])
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    x_train, y_train = torch.from_numpy(inputs[train]), torch.from_numpy(labels[train])
    rate = y_train.mean(dim=0).clamp(1e-4, 1 - 1e-4)
    head_scale = (1.0 / -(rate * rate.log() + (1 - rate) * (1 - rate).log())).sqrt()  # HEAD_SCALE
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none")

    def loss_of(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (loss_fn(model.logits(x), y).mean(dim=0) * head_scale).sum()

    best = (float("inf"), 0, copy.deepcopy(model.state_dict()))
    generator = torch.Generator().manual_seed(config.seed)
    for epoch in range(1, config.epochs + 1):
        model.train()
        for batch in torch.randperm(len(x_train), generator=generator).split(config.batch_size):
            optimiser.zero_grad()
            loss_of(x_train[batch], y_train[batch]).backward()
            optimiser.step()
        model.eval()
        if len(validation):
            with torch.no_grad():
                loss = float(loss_of(torch.from_numpy(inputs[validation]), torch.from_numpy(labels[validation])))
            if loss < best[0]:
                best = (loss, epoch, copy.deepcopy(model.state_dict()))
        else:
            best = (0.0, epoch, copy.deepcopy(model.state_dict()))
        if progress:
            progress("epoch", epoch, config.epochs)
    model.load_state_dict(best[2])
    model.eval()
    seconds["train"] = time.perf_counter() - started - seconds["inputs"]

    with torch.no_grad():
        predicted = model(torch.from_numpy(inputs[test])).numpy()
    videos = [str(v) for v in np.asarray(columns["video_id"], dtype=object)]
    train_videos = [videos[i] for i in train]
    test_videos = [videos[i] for i in test]
    metrics = []
    for h, head in enumerate(HEADS):
        y_test = labels[test, h]
        logistic = _logistic_scores(inputs[train], labels[train, h], inputs[test], rows=config.logistic_rows,
                                    seed=config.seed)
        metrics.append(HeadMetrics(
            head=head, positives=int(y_test.sum()), auc=_auc(y_test, predicted[:, h]),
            popularity_auc=_auc(y_test, popularity_scores(train_videos, labels[train, h], test_videos)),
            logistic_auc=None if logistic is None else _auc(y_test, logistic)))
    seconds["evaluate"] = time.perf_counter() - started - seconds["inputs"] - seconds["train"]
    return TrainedRanker(spec=spec, model=model, metrics=tuple(metrics), epochs_run=config.epochs,
                         best_epoch=best[1], rows={"train": len(train), "validation": len(validation),
                                                   "test": len(test)},
                         seconds={k: round(v, 2) for k, v in seconds.items()})
