"""Training the two towers: a sampled softmax with the logQ correction, then recall@K on held-out days.

Each step scores a batch of positives (user, video) against the batch's own videos and `uniform_negatives`
videos drawn uniformly from the catalogue (mixed negative sampling, Yang et al., "Mixed Negative Sampling for
Learning Two-tower Neural Networks in Recommendations", WWW 2020): with in-batch negatives alone a video that
is rarely a positive is rarely a negative either, so nothing pushes its score down. Every logit is corrected
by the log of the video's chance to be a candidate (Yi et al. 2019, fyp.embeddings.logq): as a positive
(streaming estimate) plus as a uniform draw (uniform_negatives / catalogue).

Time split: positives before the cut train, the rest are held out (the last `test_days` days by default).
Ids seen in the training positives are marked trained, and the item tower remembers each training video's
author, sound and hashtags (what the user tower reads a history through); a held-out video never seen before
reaches the item tower through its author, sound and hashtags only, as a new upload would. The model overfits
within a few passes over a small table, so the number of epochs is chosen on the last part of the training
positives (`TrainConfig.validation_fraction`) before the final model is trained on all of them.

Video features (`TowerConfig.video_feature_columns`, off by default): a candidate's video_engagement values are
read as of a time (`data.VideoFeatures.at`): a positive's as of its own row, a uniform negative's as of a
random row of its batch, and the catalogue ranked in evaluation as of the start of the held-out part (an index
built then). Nothing is read from after its time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from fyp.embeddings.data import Positives
from fyp.embeddings.evaluate import RecallReport, Scorer, popularity_scorer, recall_at_k
from fyp.embeddings.inputs import ItemInputs, UserInputs, item_inputs, user_inputs, video_feature_inputs
from fyp.embeddings.logq import StreamingFrequency, in_batch_softmax_loss
from fyp.embeddings.oracle import Oracle
from fyp.embeddings.towers import TowerConfig, TwoTower

__all__ = ["TrainConfig", "TrainResult", "catalogue_inputs", "config_dict", "train_two_tower"]

Progress = Callable[[int, int, float], None]  # (step, total steps, running loss)


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """epochs: passes over the training positives (at most that many with validation_fraction).
    batch_size: rows per step (also the in-batch negatives). lr: Adam learning rate. test_days: held-out tail in
    UTC days; test_fraction: instead, the last share of positives by time (for data of one day). logq: apply the
    sampling-bias correction. alpha: the frequency estimator's learning rate. uniform_negatives: extra negatives
    per step, drawn uniformly from the catalogue (0: in-batch only). validation_fraction: the last share of the
    training positives by time that chooses the number of epochs (None: train `epochs` epochs); validation_k:
    the recall cut-off it compares; patience: epochs without a gain before it stops. ks: recall cut-offs.
    seed: torch and shuffling seed. threads: torch CPU threads (None: torch's default)."""

    epochs: int = 8
    batch_size: int = 512
    lr: float = 3e-3
    test_days: int = 1
    test_fraction: float | None = None
    logq: bool = True
    alpha: float = 0.05
    uniform_negatives: int = 1024
    validation_fraction: float | None = 0.1
    validation_k: int = 50
    patience: int = 2
    ks: tuple[int, ...] = (10, 50, 100)
    seed: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2 or self.lr <= 0:
            raise ValueError("epochs must be >= 1, batch_size >= 2 and lr > 0")
        if not self.ks or min(self.ks) < 1:
            raise ValueError(f"ks must be positive, got {self.ks}")
        if self.validation_fraction is not None and not 0 < self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got {self.validation_fraction}")
        if self.validation_k < 1 or self.patience < 1:
            raise ValueError(f"validation_k and patience must be >= 1, got {self.validation_k}, {self.patience}")
        if self.test_days < 1 or self.uniform_negatives < 0:
            raise ValueError(f"test_days must be >= 1 and uniform_negatives >= 0, got {self.test_days}, "
                             f"{self.uniform_negatives}")


@dataclass(frozen=True, kw_only=True)
class TrainResult:
    model: TwoTower
    recall: RecallReport
    train_positives: int
    test_positives: int
    test_from_ms: int
    catalogue: int
    users: int
    steps: int
    final_loss: float
    seconds: float
    epochs: int
    validation: tuple[float, ...] = ()

    def info(self) -> dict[str, object]:
        """What is saved beside the weights and printed by `fyp train two-tower --json`."""
        return {"recall": self.recall.to_dict(), "train_positives": self.train_positives,
                "test_positives": self.test_positives, "test_from_ms": self.test_from_ms,
                "catalogue": self.catalogue, "users": self.users, "steps": self.steps,
                "final_loss": self.final_loss, "seconds": round(self.seconds, 2), "epochs": self.epochs,
                "validation_recall": list(self.validation)}


def catalogue_inputs(data: Positives, tower: TowerConfig, rows: np.ndarray | None = None,
                     at_ms: int | None = None) -> ItemInputs:
    """The item tower's inputs of the catalogue (or of its `rows`), with its video features as of `at_ms` when the
    tower reads them (then at_ms is required)."""
    c = data.catalogue
    pick = range(len(c)) if rows is None else rows.tolist()
    features = None
    if tower.video_feature_columns:
        if at_ms is None:
            raise ValueError("at_ms is required: the tower reads video features, which change with time")
        features = _raw_video_features(data, tower, np.asarray(list(pick), dtype=np.int64), at_ms)
    return item_inputs([c.video_ids[i] for i in pick], [c.author_ids[i] for i in pick],
                       [c.sound_ids[i] for i in pick], [c.hashtags[i] for i in pick], tower, features)


def _raw_video_features(data: Positives, tower: TowerConfig, videos: np.ndarray,
                        time_ms: np.ndarray | int) -> np.ndarray:
    """(n, len(tower.video_feature_columns)) raw video_engagement values of catalogue indices as of times."""
    found = data.video_features
    if found is None or not set(tower.video_feature_columns) <= set(found.columns):
        raise ValueError(f"the tower reads video features {list(tower.video_feature_columns)}, the data holds "
                         f"{[] if found is None else list(found.columns)}")
    picked = [found.columns.index(c) for c in tower.video_feature_columns]
    return found.at(videos, time_ms)[:, picked]


def _video_features_at(data: Positives, tower: TowerConfig, videos: np.ndarray,
                       time_ms: np.ndarray | int | None) -> torch.Tensor:
    """The item tower's feature block of catalogue indices as of times ((n, 0) when it reads none)."""
    if not tower.video_feature_columns or time_ms is None:
        return torch.zeros((len(videos), 0))
    raw = _raw_video_features(data, tower, videos, time_ms)
    return torch.from_numpy(video_feature_inputs(raw, len(videos), tower))


def _tensors(inputs: ItemInputs | UserInputs) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in vars(inputs).items()}


def train_two_tower(data: Positives, *, tower: TowerConfig | None = None, config: TrainConfig | None = None,
                    oracle: Oracle | None = None, progress: Progress | None = None) -> TrainResult:
    """Train on the positives before the held-out days; report recall@K on those days (with the oracle's, if
    given, and popularity's: training positives per video).

    With `validation_fraction`, the number of epochs is chosen first: a model trained on the training positives
    but their last `validation_fraction` by time is scored (recall@`validation_k`) on that last part after each
    epoch, until `patience` epochs bring no gain; the model is then trained afresh on all the training positives
    for the best epoch count (at most `epochs`)."""
    tower, config = tower or TowerConfig(), config or TrainConfig()
    if not set(tower.user_feature_columns) <= set(data.feature_columns):
        raise ValueError(f"the tower reads user feature columns the data lacks: "
                         f"{sorted(set(tower.user_feature_columns) - set(data.feature_columns))}")
    started = time.monotonic()
    if config.threads:
        torch.set_num_threads(config.threads)

    cut = data.split_fraction(config.test_fraction) if config.test_fraction else data.split_days(config.test_days)
    train_rows, test_rows = np.flatnonzero(data.time_ms < cut), np.flatnonzero(data.time_ms >= cut)
    if len(train_rows) < config.batch_size:
        raise ValueError(f"{len(train_rows)} training positives, fewer than one batch of {config.batch_size}")
    items = _tensors(catalogue_inputs(data, tower, at_ms=cut - 1))  # ids; features are read per step and query
    picked = [data.feature_columns.index(c) for c in tower.user_feature_columns]
    users = _tensors(user_inputs(data.recent_positives, data.user_features[:, picked], tower))

    epochs, curve = config.epochs, []
    if config.validation_fraction:
        at = train_rows[min(int(len(train_rows) * (1 - config.validation_fraction)), len(train_rows) - 1)]
        fit, held = train_rows[data.time_ms[train_rows] < data.time_ms[at]], train_rows[data.time_ms[train_rows]
                                                                                          >= data.time_ms[at]]
        if len(fit) >= config.batch_size and len(held):
            def score(model: TwoTower) -> float:
                report = evaluate(model, data, items, users, _popular(data, fit), held, (config.validation_k,), None,
                                  tower=tower, at_ms=int(data.time_ms[at]) - 1)
                return report.model[config.validation_k]

            curve = _fit(data, fit, items, users, tower, config, config.epochs, progress=None, validate=score)[3]
            epochs = int(np.argmax(curve)) + 1
    model, steps, running, _ = _fit(data, train_rows, items, users, tower, config, epochs, progress=progress)

    report = evaluate(model, data, items, users, _popular(data, train_rows), test_rows, config.ks, oracle,
                      tower=tower, at_ms=cut - 1)
    return TrainResult(model=model, recall=report, train_positives=len(train_rows), test_positives=len(test_rows),
                       test_from_ms=cut, catalogue=len(data.catalogue), users=len(set(data.user_ids.tolist())),
                       steps=steps, final_loss=running, seconds=time.monotonic() - started, epochs=epochs,
                       validation=tuple(curve))


def _popular(data: Positives, rows: np.ndarray) -> np.ndarray:
    """The rows popularity counts: a user's first engagement with a video, not repeats of one already in their
    history (the stronger baseline, and what recall measures: a query's video is never in its user's history)."""
    return rows[data.new_positives()[rows]]


def _fit(data: Positives, train_rows: np.ndarray, items: dict[str, torch.Tensor], users: dict[str, torch.Tensor],
         tower: TowerConfig, config: TrainConfig, epochs: int, *, progress: Progress | None,
         validate: Callable[[TwoTower], float] | None = None) -> tuple[TwoTower, int, float, list[float]]:
    """A fresh model (seeded) trained on `train_rows` for `epochs` epochs -> (model, steps, running loss, scores).
    validate: scored after each epoch (the scores); training stops after `config.patience` epochs without a new
    best."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = TwoTower(tower)
    trained = torch.from_numpy(data.video[train_rows])
    for name, table in (("video", model.item.video), ("author", model.item.author), ("sound", model.item.sound),
                        ("hashtags", model.item.hashtag)):
        table.mark_seen(items[name][trained].flatten())
    model.item.remember(catalogue_inputs(data, tower, rows=np.unique(data.video[train_rows]),
                                         at_ms=int(data.time_ms[train_rows].max())))

    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    frequency = StreamingFrequency(n_buckets=tower.video_buckets, alpha=config.alpha)
    n_items, n_uniform = len(data.catalogue), min(config.uniform_negatives, len(data.catalogue))
    steps_per_epoch = len(train_rows) // config.batch_size
    total, step, running, scores = steps_per_epoch * epochs, 0, float("nan"), []
    for _ in range(epochs):
        model.train()
        order = rng.permutation(train_rows)
        for b in range(steps_per_epoch):
            rows = torch.from_numpy(order[b * config.batch_size:(b + 1) * config.batch_size])
            positives = data.video[rows.numpy()]
            step += 1
            if config.logq:
                frequency.update(items["video"][torch.from_numpy(positives)].numpy(), step)
            videos = torch.from_numpy(np.concatenate([positives, rng.integers(n_items, size=n_uniform)]))
            times = None
            if tower.video_feature_columns:  # drawn only then: the default path keeps its random stream
                # As of a row's time: a positive's own row, a uniform negative a random row's of the batch (each
                # candidate as an index built then would have held it).
                row_times = data.time_ms[rows.numpy()]
                times = np.concatenate([row_times, rng.choice(row_times, size=n_uniform)])
            item_ids = items["video"][videos]
            log_q = None
            if config.logq:  # the chance of being a candidate: in the batch (as a positive) or drawn uniformly
                q = frequency.probability(item_ids.numpy()) + n_uniform / n_items
                log_q = torch.from_numpy(np.log(q).astype(np.float32))
            user_vec = model.user(users["history"][rows], users["features"][rows])
            item_vec = model.item(item_ids, items["author"][videos], items["sound"][videos], items["hashtags"][videos],
                                  _video_features_at(data, tower, videos.numpy(), times))
            loss = in_batch_softmax_loss(user_vec, item_vec, temperature=tower.temperature, log_q=log_q,
                                         item_ids=item_ids)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running = loss.item() if np.isnan(running) else 0.95 * running + 0.05 * loss.item()
            if progress:
                progress(step, total, running)
        model.eval()
        if validate is not None:
            scores.append(validate(model))
            if len(scores) - 1 - int(np.argmax(scores)) >= config.patience:
                break
    return model, step, running, scores


def evaluate(model: TwoTower, data: Positives, items: dict[str, torch.Tensor], users: dict[str, torch.Tensor],
             popular: np.ndarray, test_rows: np.ndarray, ks: tuple[int, ...],
             oracle: Oracle | None, *, tower: TowerConfig, at_ms: int) -> RecallReport:
    """Recall@K on the held-out positives whose video is not already among the row's recent positives (a feed
    would not show it again, so no ranker may). The catalogue is embedded once, with its video features (if the
    tower reads them) as of `at_ms`: an index built at the start of the held-out part."""
    exclude = data.exclusions(test_rows)
    fresh = ~(exclude == data.video[test_rows][:, None]).any(axis=1)
    queries, exclude = test_rows[fresh], exclude[fresh]
    with torch.no_grad():
        catalogue = np.arange(len(data.catalogue))
        item_vecs = model.item(items["video"], items["author"], items["sound"], items["hashtags"],
                               _video_features_at(data, tower, catalogue, at_ms)).numpy()
        q = torch.from_numpy(queries)
        user_vecs = model.user(users["history"][q], users["features"][q]).numpy()
    rankers: dict[str, Scorer] = {
        "model": lambda rows: user_vecs[rows] @ item_vecs.T,
        "popularity": popularity_scorer(np.bincount(data.video[popular], minlength=len(data.catalogue))),
    }
    if oracle is not None:
        rankers["oracle"] = lambda rows: oracle.scores(data.user_ids[queries[rows]].tolist(),
                                                       data.time_ms[queries[rows]])
    return recall_at_k(rankers, data.video[queries], exclude, ks)


def config_dict(config: TrainConfig) -> dict[str, object]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}
