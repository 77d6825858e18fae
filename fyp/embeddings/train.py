"""Training the two towers: in-batch softmax with the logQ correction, then recall@K on the held-out tail.

Time split: positives before `Interactions.split_time` train, the rest are held out. Item ids seen in the
training positives (and their histories) are marked trained; the held-out tail's new videos reach the item
tower through content, author and sound only, as a new upload would.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from fyp.embeddings.data import Interactions
from fyp.embeddings.evaluate import RecallReport, recall_at_k
from fyp.embeddings.hashing import buckets
from fyp.embeddings.logq import StreamingFrequency, in_batch_softmax_loss
from fyp.embeddings.towers import TowerConfig, TwoTower

__all__ = ["TrainConfig", "TrainResult", "train_two_tower"]

Progress = Callable[[int, int, float], None]  # (step, total steps, running loss)


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """epochs: passes over the training positives. batch_size: rows per step (also the in-batch negatives).
    lr: Adam learning rate. test_fraction: held-out tail by time. logq: apply the sampling-bias correction.
    alpha: the frequency estimator's learning rate. ks: recall cut-offs. seed: torch and shuffling seed.
    threads: torch CPU threads (None: torch's default)."""

    epochs: int = 3
    batch_size: int = 512
    lr: float = 3e-3
    test_fraction: float = 0.2
    logq: bool = True
    alpha: float = 0.05
    ks: tuple[int, ...] = (10, 50, 100)
    seed: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2 or self.lr <= 0:
            raise ValueError("epochs must be >= 1, batch_size >= 2 and lr > 0")
        if not self.ks or min(self.ks) < 1:
            raise ValueError(f"ks must be positive, got {self.ks}")


@dataclass(frozen=True, kw_only=True)
class TrainResult:
    model: TwoTower
    recall: RecallReport
    train_positives: int
    test_positives: int
    catalogue: int
    users: int
    steps: int
    final_loss: float
    seconds: float

    def info(self) -> dict[str, object]:
        """What is saved beside the weights and printed by `fyp train two-tower --json`."""
        return {"recall": self.recall.to_dict(), "train_positives": self.train_positives,
                "test_positives": self.test_positives, "catalogue": self.catalogue, "users": self.users,
                "steps": self.steps, "final_loss": self.final_loss, "seconds": round(self.seconds, 2)}


def _history_buckets(history: np.ndarray, video_bucket: np.ndarray) -> np.ndarray:
    return np.where(history >= 0, video_bucket[np.maximum(history, 0)], 0)


def train_two_tower(data: Interactions, content: np.ndarray, *, tower: TowerConfig | None = None,
                    config: TrainConfig | None = None, progress: Progress | None = None) -> TrainResult:
    """Train on `data` (positives) with `content` (catalogue, CONTENT_DIM) vectors; evaluate on the tail."""
    tower, config = tower or TowerConfig(), config or TrainConfig()
    started = time.monotonic()
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    if content.shape != (len(data.videos), tower.content_dim):
        raise ValueError(f"content must be ({len(data.videos)}, {tower.content_dim}), got {content.shape}")

    cut = data.split_time(config.test_fraction)
    train_rows, test_rows = np.flatnonzero(data.time_ms < cut), np.flatnonzero(data.time_ms >= cut)
    if len(train_rows) < config.batch_size:
        raise ValueError(f"{len(train_rows)} training positives, fewer than one batch of {config.batch_size}")

    video_b = torch.from_numpy(buckets((v.video_id for v in data.videos), tower.video_buckets, field="video"))
    author_b = torch.from_numpy(buckets((v.author_id for v in data.videos), tower.author_buckets, field="author"))
    sound_b = torch.from_numpy(buckets((v.sound_id for v in data.videos), tower.sound_buckets, field="sound"))
    history_b = torch.from_numpy(_history_buckets(data.history, video_b.numpy()))
    features = torch.from_numpy(data.features)
    content_t = torch.from_numpy(np.ascontiguousarray(content, dtype=np.float32))

    model = TwoTower(tower)
    trained_videos = torch.from_numpy(data.video[train_rows])
    model.item.video.mark_seen(video_b[trained_videos])
    model.item.author.mark_seen(author_b[trained_videos])
    model.item.sound.mark_seen(sound_b[trained_videos])
    model.user.history.mark_seen(history_b[torch.from_numpy(train_rows)].flatten())

    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    frequency = StreamingFrequency(n_buckets=tower.video_buckets, alpha=config.alpha)
    steps_per_epoch = len(train_rows) // config.batch_size
    total, step, running = steps_per_epoch * config.epochs, 0, float("nan")
    model.train()
    for _ in range(config.epochs):
        order = rng.permutation(train_rows)
        for b in range(steps_per_epoch):
            rows = torch.from_numpy(order[b * config.batch_size:(b + 1) * config.batch_size])
            items = torch.from_numpy(data.video[rows.numpy()])
            item_ids = video_b[items]
            step += 1
            log_q = None
            if config.logq:
                frequency.update(item_ids.numpy(), step)
                log_q = torch.from_numpy(np.log(frequency.probability(item_ids.numpy())).astype(np.float32))
            user_vec = model.user(history_b[rows], features[rows])
            item_vec = model.item(content_t[items], item_ids, author_b[items], sound_b[items])
            loss = in_batch_softmax_loss(user_vec, item_vec, temperature=tower.temperature, log_q=log_q,
                                         item_ids=item_ids)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running = loss.item() if np.isnan(running) else 0.95 * running + 0.05 * loss.item()
            if progress:
                progress(step, total, running)
    model.eval()

    with torch.no_grad():
        item_vecs = model.item(content_t, video_b, author_b, sound_b).numpy()
        test = torch.from_numpy(test_rows)
        user_vecs = model.user(history_b[test], features[test]).numpy()
    popularity = np.bincount(data.video[train_rows], minlength=len(data.videos))
    report = recall_at_k(user_vecs, item_vecs, data.video[test_rows], data.history[test_rows], popularity,
                         config.ks)
    return TrainResult(model=model, recall=report, train_positives=len(train_rows), test_positives=len(test_rows),
                       catalogue=len(data.videos), users=len(data.user_ids), steps=step, final_loss=running,
                       seconds=time.monotonic() - started)


def config_dict(config: TrainConfig) -> dict[str, object]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}
