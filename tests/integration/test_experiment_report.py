"""`fyp experiment report` on the real stack: impressions with arm ids, and the watches, likes and skips that follow
them, written by the traffic generator's encoder to Kafka; the history job lands them in Iceberg; the report's
numbers equal an independent count of what was produced, made here from the generator's own block."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
import typer
from confluent_kafka import Producer
from scipy import stats
from typer.testing import CliRunner

from connectors.iceberg_tables import catalog
from features.engagement.common import COMPLETION_FRACTION, SKIP_DWELL_MS
from fyp.commands import experiment as experiment_commands
from fyp.pipelines import ENGAGEMENT_HISTORY_JOB
from fyp.traffic import TrafficConfig
from fyp.traffic.encoder import FastEncoder
from fyp.traffic.ids import RunIds
from fyp.traffic.model import IMPRESSION, LIKE, SKIP, UNLIKE, WATCH, TrafficModel
from schemas.registry import default_registry
from schemas.tables import ENGAGEMENT_HISTORY
from schemas.topics import ENGAGEMENT
from tests.integration.conftest import eventually

pytestmark = pytest.mark.integration

ARMS = ("control", "treat")


def _report(*args: str) -> dict:
    app = typer.Typer()
    experiment_commands.register(app)
    result = CliRunner().invoke(app, ["experiment", "report", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _history_rows(settings, users: list[str]) -> int:
    from pyiceberg.expressions import In

    table = catalog(settings).load_table(ENGAGEMENT_HISTORY)
    return table.scan(row_filter=In("user_id", set(users)), selected_fields=("event_id",)).to_arrow().num_rows


def test_the_report_equals_an_independent_count_of_what_was_produced(settings, running_job):
    running_job(ENGAGEMENT_HISTORY_JOB, **{"execution.checkpointing.interval": "5s"})
    name = f"it_{uuid.uuid4().hex[:8]}"
    now_ms = int(time.time() * 1000)
    # No jitter: a view's events follow its impression, so every event counts from the user's first exposure.
    model = TrafficModel(TrafficConfig(users=150, videos=2_000, jitter=timedelta(0)), seed=7)
    block = model.next_block(1_500, now_ms)
    offset = uuid.uuid4().int % 10**12 * 1_000  # user ids of this run only: u<offset + n>
    users = [offset + u for u in block.user]
    arm_of = {u: ARMS[u % 2] for u in users}
    block = dataclasses.replace(block, user=users, arms=[(f"{name}:{arm_of[u]}", "other_layer:x") for u in users])
    batch = FastEncoder(default_registry(), model.catalog, RunIds(run_id=str(uuid.uuid4())), seed=7).encode(block)
    assert not any(batch.faults)

    producer = Producer(settings.kafka_producer_config())
    for (key, value), t in zip(batch.pairs, batch.times, strict=True):
        producer.produce(ENGAGEMENT.name, key=key, value=value, timestamp=t)
    assert producer.flush(30) == 0

    # The independent count: straight from the block, with the definitions of docs/FEED.md "Experiment report".
    per_user: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for v, kind in zip(block.event_view, block.event_kind, strict=True):
        counts = per_user[block.user[v]]
        duration = model.catalog.video(block.video[v]).duration_ms
        if kind == IMPRESSION:
            counts["impressions"] += 1
        elif kind == WATCH:
            counts["watches"] += 1
            counts["watch_ms"] += block.watch_ms[v]
            counts["completions"] += duration > 0 and block.watch_ms[v] >= COMPLETION_FRACTION * duration
        elif kind in (LIKE, UNLIKE):
            counts["likes"] += 1 if kind == LIKE else -1
        elif kind == SKIP:
            counts["skips"] += block.dwell_ms[v] < SKIP_DWELL_MS
    expected: dict[str, dict[str, list[float]]] = {arm: defaultdict(list) for arm in ARMS}
    for user, c in per_user.items():
        values = expected[arm_of[user]]
        values["watch_ms"].append(c["watch_ms"])
        if c["watches"]:
            values["completion_rate"].append(c["completions"] / c["watches"])
        values["like_rate"].append(c["likes"] / c["impressions"])
        values["skip_rate"].append(c["skips"] / c["impressions"])
        values["retention"].append(0.0)  # everything happened at one moment: no later day

    distinct = sorted({f"u{u}" for u in users})
    eventually(lambda: _history_rows(settings, distinct) >= len(batch.pairs), timeout_s=180,
               message="every produced event in the Iceberg history")
    assert _history_rows(settings, distinct) == len(batch.pairs)

    since = datetime.fromtimestamp((now_ms - 1_000) / 1000, UTC).isoformat()
    report = _report(name, "--since", since, "--json")
    assert report["control"] == "control" and report["weights_source"] == "equal"
    impressions = {arm: sum(per_user[u]["impressions"] for u in set(users) if arm_of[u] == arm) for arm in ARMS}
    assert {a["arm"]: (a["users"], a["impressions"]) for a in report["arms"]} == {
        arm: (len(expected[arm]["watch_ms"]), impressions[arm]) for arm in ARMS}
    assert report["conflicted_users"] == 0
    for metric in report["metrics"]:
        for arm, summary in zip(ARMS, metric["arms"], strict=True):
            values = expected[arm][metric["name"]]
            assert summary["users"] == len(values), (metric["name"], arm)
            assert summary["mean"] == pytest.approx(sum(values) / len(values)), (metric["name"], arm)
    watch = next(m for m in report["metrics"] if m["name"] == "watch_ms")["comparisons"]["treat"]
    welch = stats.ttest_ind(expected["treat"]["watch_ms"], expected["control"]["watch_ms"], equal_var=False)
    assert watch["p_value"] == pytest.approx(welch.pvalue)
    srm = stats.chisquare([len(expected[a]["watch_ms"]) for a in ARMS]).pvalue
    assert report["srm"]["p_value"] == pytest.approx(srm)

    # An experiment no impression names is a clear error, not an empty report.
    app = typer.Typer()
    experiment_commands.register(app)
    missing = CliRunner().invoke(app, ["experiment", "report", f"{name}_absent", "--since", since])
    assert missing.exit_code == 1 and "no impression in the window carries" in missing.output
