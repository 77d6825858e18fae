"""`fyp train two-tower` on the real stack: generated traffic through Kafka and the history job, the training table
built by `fyp training-set build watch_outcomes`, then the training run reading that table through pyiceberg.

The traffic is a seeded world (fyp.traffic) over 40 minutes of event time that ends now, sent as fast as Kafka
takes it; the build keeps the impressions whose 10-minute label window closed. The run must read exactly the
table's rows, hold out the last 30 % of positives by time (one day of rows: `--test-fraction`), rank with the
model, popularity and the world's oracle, and save a model that loads back and encodes through the towers'
input functions. Quality is `tests/unit/fyp/embeddings/test_two_tower_world.py`'s to check; this is the plumbing.

Named test_zz_sa_ so that it runs after test_zz_chaos: its world's ids (u0.., v0..) are those of every generated
world, chaos's included, and its 30,000 events backdated over 40 minutes, mostly late for the job on a stack whose
partitions saw events of now, made chaos's `fyp verify` sample find mismatches in entities the two runs shared.

A rerun within 40 minutes on a kept stack sends events older than the last run's newest: the features job finds
them late, and the training rows hold fewer recent positives; every check here holds either way.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from connectors.iceberg_tables import catalog, ensure_tables
from fyp.commands import train as train_commands
from fyp.commands import training as training_commands
from fyp.embeddings import UserFeatures, UserHistory, VideoMeta, load_encoders
from fyp.index.snapshot import S3ObjectStore
from fyp.media.publish import make_s3_client
from fyp.pipelines import ENGAGEMENT_HISTORY_JOB
from fyp.ranking.inputs import HEADS, InputSpec
from fyp.ranking.runtime import RankerRuntime
from fyp.ranking.store import latest_version, load_version
from fyp.traffic import TrafficConfig, TrafficGenerator
from fyp.traffic.producer import ProducePlan, produce
from schemas.tables import ENGAGEMENT_HISTORY
from tests.integration.conftest import eventually
from training import watch_outcomes

pytestmark = pytest.mark.integration

WORLD = TrafficConfig(users=150, videos=400)
SEED = 23
EVENTS = 30_000
SPAN_MS = 40 * 60_000


def _invoke(register, *args: str) -> dict:
    app = typer.Typer()
    register(app)  # train's register also takes the bench group: see _train
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _train(app: typer.Typer) -> None:
    """`fyp train` on `app` (and `fyp bench two-tower` on a bench group of its own, which these tests do not run)."""
    train_commands.register(app, bench=typer.Typer())


def _send_world(settings) -> int:
    """EVENTS events of WORLD, their event times stepping evenly from SPAN_MS ago to now; the last event time."""
    blocks = EVENTS // (ProducePlan(max_events=EVENTS).views_per_batch * 2) + 1  # ~2.3 events a view
    start = int(time.time() * 1000) - SPAN_MS
    calls = iter(range(10**9))
    last = [start]

    def clock() -> int:
        last[0] = min(start + next(calls) * SPAN_MS // blocks, start + SPAN_MS)
        return last[0]

    generator = TrafficGenerator(WORLD, SEED, clock=clock)
    report = produce(generator, ProducePlan(max_events=EVENTS), client_config=settings.kafka_client_config())
    assert report.failed == 0 and report.produced == EVENTS
    return last[0]


def test_train_two_tower_reads_the_training_table_and_saves_a_model_that_encodes(settings, running_job) -> None:
    ensure_tables(settings)
    running_job(ENGAGEMENT_HISTORY_JOB, **{"execution.checkpointing.interval": "5s"})
    history = catalog(settings).load_table(ENGAGEMENT_HISTORY)

    def count() -> int:
        history.refresh()
        return len(history.scan(selected_fields=("event_id",)).to_arrow()) if history.current_snapshot() else 0

    had = count()
    newest = _send_world(settings)

    def landed() -> bool:
        return count() >= had + EVENTS

    eventually(landed, timeout_s=180, message="every event in the history")
    built = _invoke(training_commands.register, "training-set", "build", watch_outcomes.v1.name)
    assert built["rows"] > 5_000, built

    out = _invoke(_train, "train", "two-tower", "--test-fraction", "0.3", "--epochs", "2",
                  "--batch-size", "128", "--negatives", "256", "--save", "local", "--threads", "2",
                  "--oracle-seed", str(SEED), "--oracle-users", str(WORLD.users), "--oracle-videos",
                  str(WORLD.videos))
    table = catalog(settings).load_table(watch_outcomes.v1.table)
    assert out["rows"] == len(table.scan(selected_fields=("event_id",)).to_arrow())
    recall = out["recall"]
    assert {"model", "popularity", "oracle", "ratio", "oracle_lift"} <= set(recall) and recall["queries"] > 100
    # Every ranker's recall is a fraction that grows with K. Whether the oracle beats popularity is not asked here:
    # on a shared stack the table also holds other tests' worlds under the same ids (u0.., v0..) and the same
    # recent event times, which this world's oracle does not know (CI measured oracle 0.16 against popularity 0.38
    # at @50). Quality is test_two_tower_world's, on a world of its own.
    for ranked in ("model", "popularity", "oracle"):
        at = recall[ranked]
        assert 0 <= at["10"] <= at["50"] <= at["100"] <= 1, (ranked, at)
    assert out["train_positives"] > out["test_positives"] > 0 and out["test_from_ms"] <= newest
    assert out["model"] == f"two-tower-{out['version']}" and out["saved"]["local"].endswith("model.pt")

    items, users = load_encoders(out["saved"]["local"], fallback=False)
    assert items.name == users.name == out["model"]
    item_vectors = items.encode([VideoMeta(video_id="v0", author_id="a0", hashtags=("dance",)),
                                 VideoMeta(video_id="v-new-upload", hashtags=("dance", "fyp"))])
    user_vectors = users.encode([UserHistory(video_ids=("v3", "v0")), UserHistory()],
                                [UserFeatures(values={"plays_24h": 3.0}), None])
    assert item_vectors.shape == user_vectors.shape == (2, 64)

    # The fine ranker on the same table: the plumbing from Iceberg to a saved ONNX file that loads and scores
    # (its quality is tests/unit/fyp/ranking/test_ranker_world.py's to check).
    ranker = _invoke(_train, "train", "ranker", "--test-fraction", "0.3", "--epochs", "2",
                     "--threads", "2")
    assert sum(ranker["rows"].values()) == out["rows"] and ranker["saved"].endswith("/ranker.zip")
    assert [m["head"] for m in ranker["metrics"]] == list(HEADS)
    assert all(m["auc"] is None or 0 <= m["auc"] <= 1 for m in ranker["metrics"])
    store = S3ObjectStore(make_s3_client(settings), settings.media_bucket)
    assert latest_version(store) == ranker["version"]
    onnx, card = load_version(store, "latest")
    spec = InputSpec.from_json(card["spec"])
    rows = {c: np.full(3, np.nan) for c in spec.columns}  # a new user and video: every feature missing
    assert RankerRuntime(onnx, spec).predict(rows).shape == (3, len(HEADS))
