"""`fyp bench lake`: the history and features jobs together on one burst of events, and the commit latency.

N generated events are produced to the engagement topic as fast as the producer goes while both jobs run.
The combined sustained rate is N over the time from the first event produced until both jobs have caught up:
the features job once its Kafka source has read up to the burst's end offsets (per-partition `currentOffset`
metrics), the history job once the history table holds all N rows (committed on its checkpoints).

A probe Watch event with a fresh video id is produced every `probe_interval_s`, first for `idle_s` with no
other traffic, then during the burst; commit latency is the time from producing a probe to `fyp sql`
(fyp.lake.sql.run_query, DuckDB over a pyiceberg scan) seeing it: idle, it is set by the checkpoint interval;
during the burst, it includes the backlog ahead of the probe.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import dataclass, field

import httpx
from confluent_kafka import Producer
from pyiceberg.expressions import StartsWith

from connectors.iceberg_tables import catalog
from fyp.bench.chaos import ensure_jobs, jobs_running
from fyp.bench.stats import latency_summary
from fyp.bench.throughput import end_offsets
from fyp.config import Settings
from fyp.stack.observe import iceberg_row_count
from fyp.stack.process import StackError, wait_until
from fyp.traffic import TrafficConfig, TrafficGenerator
from fyp.traffic.ids import RunIds
from fyp.traffic.producer import ProducePlan, produce
from schemas.registry import default_registry
from schemas.tables import ENGAGEMENT_HISTORY
from schemas.topics import ENGAGEMENT

__all__ = ["LakeBenchResult", "run_lake_bench", "source_offsets"]

_CURRENT_OFFSET = re.compile(r"\.partition\.(\d+)\.currentOffset$")


@dataclass(frozen=True, kw_only=True)
class LakeBenchResult:
    events: int
    produce_rate: float
    checkpoint_interval_ms: int | None  # the history job's
    history_caught_up_s: float | None
    features_caught_up_s: float | None
    history_events_per_s: float | None
    features_events_per_s: float | None
    combined_events_per_s: float | None  # N / the slower of the two: both jobs sustained this together
    commit_latency_idle: dict[str, float] = field(default_factory=dict)  # produce -> `fyp sql`, no backlog
    commit_latency: dict[str, float] = field(default_factory=dict)  # the same during the burst
    probes_missing: int = 0


def _rest(settings: Settings, path: str, **params) -> dict | list:
    response = httpx.get(f"{settings.flink_rest_url}{path}", params=params or None, timeout=10)
    response.raise_for_status()
    return response.json()


def source_offsets(settings: Settings, job_id: str) -> dict[int, int]:
    """Per partition, the last offset the job's Kafka source has read (its `currentOffset` metric)."""
    job = _rest(settings, f"/jobs/{job_id}")
    source = next(v for v in job["vertices"] if v["name"].startswith("Source"))
    offsets: dict[int, int] = {}
    for index in range(source["parallelism"]):
        base = f"/jobs/{job_id}/vertices/{source['id']}/subtasks/{index}/metrics"
        names = [m["id"] for m in _rest(settings, base) if _CURRENT_OFFSET.search(m["id"])]
        if not names:
            continue
        for metric in _rest(settings, base, get=",".join(names)):
            partition = int(_CURRENT_OFFSET.search(metric["id"]).group(1))
            value = int(float(metric["value"]))
            offsets[partition] = max(offsets.get(partition, -1), value)
    return offsets


def _probe(video_id: str, now_ms: int) -> bytes:
    return default_registry().encode("Watch", {
        "event_id": str(uuid.uuid4()), "event_time": now_ms, "user_id": "u-lake-probe", "video_id": video_id,
        "author_id": "a-lake-probe", "sound_id": None, "region": "US", "language": "en", "session_id": "lake-probe",
        "hashtags": [], "watch_ms": 1000, "video_duration_ms": 10_000,
    })


class CommitProbe:
    """Produces probe events and polls `fyp sql` for them; latencies in ms from produce to visible."""

    def __init__(self, settings: Settings, interval_s: float) -> None:
        self.settings = settings
        self.interval_s = interval_s
        self.run = uuid.uuid4().hex[:8]
        self.sent: dict[str, float] = {}
        self.latencies: list[float] = []
        self.stop_sending = threading.Event()
        self.stop_polling = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._send, daemon=True),
                        threading.Thread(target=self._poll, daemon=True)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def _send(self) -> None:
        producer = Producer({**self.settings.kafka_producer_config(), "linger.ms": 0, "log_level": 0})
        i = 0
        while not self.stop_sending.is_set():
            video = f"lake-probe-{self.run}-{i:06d}"
            with self.lock:
                self.sent[video] = time.monotonic()
            producer.produce(ENGAGEMENT.name, key=b"u-lake-probe", value=_probe(video, int(time.time() * 1000)))
            producer.poll(0)
            i += 1
            self.stop_sending.wait(self.interval_s)
        producer.flush(10)

    def _poll(self) -> None:
        from fyp.lake.sql import run_query

        lake = catalog(self.settings)
        low, high = f"lake-probe-{self.run}-", f"lake-probe-{self.run}-~"
        query = (f"SELECT DISTINCT video_id FROM {ENGAGEMENT_HISTORY} "
                 f"WHERE video_id >= '{low}' AND video_id < '{high}'")
        while not self.stop_polling.is_set():
            with self.lock:
                pending = bool(self.sent)
            if pending:
                try:
                    seen = set(run_query(lake, query).rows.column("video_id").to_pylist())
                except Exception:  # a commit racing the scan, the catalog restarting: poll again
                    seen = set()
                now = time.monotonic()
                with self.lock:
                    for video in seen & set(self.sent):
                        self.latencies.append((now - self.sent.pop(video)) * 1000)
            time.sleep(0.2)

    def finish(self, settle_s: float) -> int:
        """Stop producing probes, wait up to `settle_s` for the last ones; return how many never showed."""
        self.stop_sending.set()
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline:
            with self.lock:
                if not self.sent:
                    break
            time.sleep(0.2)
        self.stop_polling.set()
        for thread in self.threads:
            thread.join(timeout=30)
        with self.lock:
            return len(self.sent)


def _checkpoint_interval(settings: Settings, job_id: str) -> int | None:
    try:
        return int(_rest(settings, f"/jobs/{job_id}/checkpoints/config")["interval"])
    except (httpx.HTTPError, KeyError, ValueError):
        return None


def run_lake_bench(
    settings: Settings, *, events: int, users: int = 100_000, videos: int = 200_000, seed: int = 23,
    probe_interval_s: float = 0.5, idle_s: float = 30, timeout_s: float = 1800,
) -> LakeBenchResult:
    history_job, features_job = ensure_jobs(settings)
    if not wait_until(lambda: jobs_running(settings, [history_job, features_job]), timeout_s=180):
        raise StackError("the history and features jobs are not both running; see the Flink UI")
    settle_s = 3 * (_checkpoint_interval(settings, history_job) or 60_000) / 1000
    idle = CommitProbe(settings, probe_interval_s)  # the jobs idle: the latency the checkpoint interval sets
    idle.start()
    time.sleep(idle_s)
    idle_missing = idle.finish(settle_s=settle_s)
    rows_before = iceberg_row_count(settings)
    probe = CommitProbe(settings, probe_interval_s)  # during the burst: behind the backlog
    probe.start()
    ids = RunIds(run_id=str(uuid.uuid4()))
    generator = TrafficGenerator(TrafficConfig(users=users, videos=videos), seed, run_id=ids.run_id)
    started = time.monotonic()
    report = produce(generator, ProducePlan(rate=0, max_events=events), client_config=settings.kafka_client_config())
    if report.failed:
        raise StackError(f"{report.failed} events were not acknowledged by Kafka")
    ends = end_offsets(settings, ENGAGEMENT.name)
    table = catalog(settings).load_table(ENGAGEMENT_HISTORY)
    done: dict[str, float] = {}
    deadline = started + timeout_s
    while len(done) < 2 and time.monotonic() < deadline:
        now = time.monotonic()
        if "features" not in done:
            read = source_offsets(settings, features_job)
            # currentOffset is the last offset read (end - 1 once caught up); probes keep arriving after `ends`
            # was taken, but reaching `ends` is what the burst needs.
            if read and all(read.get(p, -1) >= end - 1 for p, end in ends.items() if end > 0):
                done["features"] = now - started
        # The snapshot summary is cheap; only when it says enough rows (probes add a few) count the run's own.
        if "history" not in done and iceberg_row_count(settings) >= rows_before + report.produced:
            table.refresh()
            landed = table.scan(row_filter=StartsWith("event_id", ids.event_prefix),
                                selected_fields=("event_id",)).to_arrow().num_rows
            if landed >= report.produced:
                done["history"] = time.monotonic() - started
        time.sleep(0.5)
    missing = probe.finish(settle_s=settle_s)

    def rate(seconds: float | None) -> float | None:
        return round(report.produced / seconds, 1) if seconds else None

    slower = max(done.values()) if len(done) == 2 else None
    return LakeBenchResult(
        events=report.produced, produce_rate=round(report.rate, 1),
        checkpoint_interval_ms=_checkpoint_interval(settings, history_job),
        history_caught_up_s=round(done["history"], 2) if "history" in done else None,
        features_caught_up_s=round(done["features"], 2) if "features" in done else None,
        history_events_per_s=rate(done.get("history")), features_events_per_s=rate(done.get("features")),
        combined_events_per_s=rate(slower), commit_latency_idle=latency_summary(idle.latencies),
        commit_latency=latency_summary(probe.latencies), probes_missing=missing + idle_missing,
    )
