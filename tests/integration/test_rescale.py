"""`fyp rescale`: the features job stopped with a savepoint and resubmitted at another parallelism keeps its state.

Events of one fresh user reach Redis through the running features job; the job is rescaled (2 -> 1, or 1 -> 2);
the new job must have restored that savepoint at the new parallelism, leave the features in Redis untouched, and
carry on counting from the restored state: one more watch adds one play (a job that lost its state would start
again from 1), and `fyp verify features` still finds Redis consistent with the history.
"""

from __future__ import annotations

import json
import time
import uuid

import httpx
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from connectors.iceberg_tables import ensure_tables
from features import feature_set_for_entity
from fyp.bench.chaos import jobs_running
from fyp.commands import jobs as jobs_commands
from fyp.commands import verify as verify_commands
from fyp.pipelines import ENGAGEMENT_FEATURES_JOB, ENGAGEMENT_HISTORY_JOB
from fyp.serving.layout import HEADER_BYTES
from tests.integration.conftest import eventually

pytestmark = pytest.mark.integration


def cli(register, *args: str) -> tuple[int, dict]:
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, [*args, "--json"])
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip().startswith("{") else result.output


def job_details(settings, job_id: str) -> dict:
    response = httpx.get(f"{settings.flink_rest_url}/jobs/{job_id}", timeout=5)
    response.raise_for_status()
    return response.json()


def plays(value: bytes, feature_set) -> float:
    floats = np.frombuffer(value, dtype="<f4", offset=HEADER_BYTES)
    return float(floats[feature_set.columns().index("plays_24h")])


def newest_event_ms(value: bytes | None) -> int | None:
    return int.from_bytes(value[:8], "little", signed=True) if value else None


def test_rescaled_features_job_restores_its_state_and_redis_still_verifies(
    settings, running_job, engagement_producer, redis_client,
):
    ensure_tables(settings)
    running_job(ENGAGEMENT_HISTORY_JOB, **{"execution.checkpointing.interval": "5s"})
    old_id = running_job(ENGAGEMENT_FEATURES_JOB)
    eventually(lambda: jobs_running(settings, [old_id]), timeout_s=120, message="the features job running")
    video_set, user_set = feature_set_for_entity("video"), feature_set_for_entity("user")
    tag = uuid.uuid4().hex[:8]
    user, videos = f"u-rs-{tag}", [f"v-rs-{tag}-{i}" for i in range(2)]
    now = int(time.time() * 1000)
    for i, video in enumerate(videos):
        engagement_producer.send("Impression", user_id=user, video_id=video, event_time=now - 2_000 + i,
                                 position=i, surface="for_you")
        engagement_producer.send("Watch", user_id=user, video_id=video, event_time=now - 1_000 + i,
                                 watch_ms=8_000, video_duration_ms=10_000)
    engagement_producer.flush()
    keys = [video_set.key_prefix + v for v in videos] + [user_set.key_prefix + user]
    eventually(lambda: all(newest_event_ms(redis_client.get(k)) == now - 1_000 + i
                           for i, k in enumerate(keys[:2])) and redis_client.get(keys[2]),
               timeout_s=90, message="both watches in Redis")
    before = {k: redis_client.get(k) for k in keys}

    old_parallelism = max(v["parallelism"] for v in job_details(settings, old_id)["vertices"])
    target = 1 if old_parallelism > 1 else 2
    code, done = cli(jobs_commands.register, "rescale", ENGAGEMENT_FEATURES_JOB.job, "--parallelism", str(target))
    assert code == 0, done
    assert done["old_job_id"] == old_id and done["new_job_id"] != old_id and done["parallelism"] == target
    print(f"\nrescaled {old_parallelism} -> {target} in {done['seconds']} s via {done['savepoint']}")

    new_id = done["new_job_id"]
    eventually(lambda: jobs_running(settings, [new_id]), timeout_s=120, message="the rescaled job running")
    assert job_details(settings, old_id)["state"] == "FINISHED"  # stopped with the savepoint, not cancelled
    assert {v["parallelism"] for v in job_details(settings, new_id)["vertices"]} == {target}
    response = httpx.get(f"{settings.flink_rest_url}/jobs/{new_id}/checkpoints", timeout=5)
    restored = response.json()["latest"]["restored"]
    assert restored["is_savepoint"] and restored["external_path"] == done["savepoint"]
    assert {k: redis_client.get(k) for k in keys} == before, "the rescale itself changed features in Redis"

    # One more watch: counted on top of the restored state.
    engagement_producer.send("Watch", user_id=user, video_id=videos[0], event_time=now, watch_ms=9_000,
                             video_duration_ms=10_000)
    engagement_producer.flush()
    eventually(lambda: newest_event_ms(redis_client.get(keys[0])) == now, timeout_s=90,
               message="the watch after the rescale in Redis")
    assert plays(redis_client.get(keys[0]), video_set) == plays(before[keys[0]], video_set) + 1

    def verified(entity: str, ids: list[str]) -> bool:
        code, report = cli(verify_commands.register, "verify", "features", "--entity", entity,
                           *(a for i in ids for a in ("--id", i)))
        return code == 0 and report["ok"] and report

    for entity, ids in (("video", videos), ("user", [user])):
        # The history commits every 5 s: verification waits for the last watch to land there too.
        eventually(lambda entity=entity, ids=ids: verified(entity, ids), timeout_s=60,
                   message=f"`fyp verify features --entity {entity}` ok after the rescale")
