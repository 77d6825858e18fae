"""The Pathway peer's flow (fyp.bench.peers.pathway_flow.build_flow) on in-memory input with a collecting writer:
no Kafka, no Redis. The input arrives in three Pathway commits, which the Kafka run (one commit per static read,
tests/integration/test_bench_pathway_peer.py) does not show. Pathway lives in its own environment, so the flow
runs there, in a child process; the test is skipped where scripts/install.sh has not made that environment."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from features.engagement.video_engagement import v1
from featurespec.reference.evaluate import FeatureEvaluator
from fyp.bench.peers.pathway_process import PATHWAY_PYTHON
from fyp.config import REPO_ROOT
from schemas.registry import default_registry
from udfs.envelope import to_engagement_row

pytestmark = pytest.mark.skipif(
    not PATHWAY_PYTHON.exists(), reason=f"{PATHWAY_PYTHON} is missing: scripts/install.sh creates it")

# Runs in the Pathway environment: stdin holds [[hex value, partition, offset, commit time], ...]; prints the
# batches the flow wrote, one JSON object per commit, and the progress counters.
CHILD = """
import json, sys
import pathway as pw
from features.engagement.video_engagement import v1
from featurespec.reference.evaluate import FeatureEvaluator
from fyp.bench.peers.pathway_flow import build_flow
from fyp.bench.peers.pathway_steps import ChangedValues, Progress

class Writer:
    batches = []
    def write(self, values):
        self.batches.append({k: v.hex() for k, v in values.items()})
        return len(values)

class Source(pw.Schema):
    data: bytes
    partition: int
    offset: int

records = json.load(sys.stdin)
rows = [(bytes.fromhex(h), p, o, t, 1) for h, p, o, t in records]
progress = Progress(len(rows))
sink = ChangedValues(Writer(), progress)
build_flow(pw.debug.table_from_rows(Source, rows, is_stream=True), FeatureEvaluator.of(v1), progress, sink)
pw.run(monitoring_level=pw.MonitoringLevel.NONE)
print(json.dumps({"batches": Writer.batches, "dropped": progress.dropped, "folded": progress.folded}))
"""


def _watch(video: str, t: int, watch_ms: int) -> bytes:
    return default_registry().encode("Watch", {
        "event_id": f"e{t}", "event_time": t, "user_id": "u", "video_id": video, "author_id": "a", "region": "US",
        "language": "en", "session_id": "s", "watch_ms": watch_ms, "video_duration_ms": 10_000})


def test_each_commit_writes_the_reference_value_of_the_videos_it_changed():
    now = int(time.time() * 1000)
    # (value, partition, offset, commit time): two partitions, videos spread over the commits, one bad record.
    records = [
        (_watch("a", now - 90_000, 4_000), 0, 0, 2), (_watch("b", now - 80_000, 9_000), 1, 0, 2),
        (_watch("a", now - 70_000, 2_000), 1, 1, 2), (b"\x00not avro", 0, 1, 4),
        (_watch("a", now - 3_600_000, 1_000), 0, 2, 4), (_watch("c", now - 10_000, 500), 1, 2, 6),
        (_watch("a", now - 1_000, 7_000), 0, 3, 6),
    ]
    done = subprocess.run([str(PATHWAY_PYTHON), "-c", CHILD], input=json.dumps(
        [[value.hex(), partition, offset, commit] for value, partition, offset, commit in records]),
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])

    # The reference: fold each commit's rows in (partition, offset) order, pack the videos the commit touched.
    evaluator = FeatureEvaluator.of(v1)
    states: dict[str, object] = {}
    expected = []
    for commit in (2, 4, 6):
        touched = {}
        for value, _, _, _ in sorted((r for r in records if r[3] == commit), key=lambda r: (r[1], r[2])):
            row = to_engagement_row(value, now)
            if row[-1] is not None:
                continue
            video = evaluator.key(row)
            evaluator.update(states.setdefault(video, evaluator.new_state()), row)
            touched[video] = states[video]
        expected.append({video: evaluator.pack(state).hex() for video, state in touched.items()})
    assert result["batches"] == expected
    assert (result["dropped"], result["folded"]) == (1, 6)
