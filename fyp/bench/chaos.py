"""`fyp bench chaos`: exactly-once history and consistent features while the TaskManager and Kafka die.

Generated events (one run id, so every event_id of the run shares a prefix) are produced at a steady rate to
the engagement topic while, on a schedule, the TaskManager is killed with SIGKILL and started again through
fyp.stack (Flink restores every job from its last checkpoint), and the Kafka broker is stopped and started.
Afterwards the history must hold each produced event exactly once, and the Redis features recomputed from the
history (fyp.lake.verify) must match.

Recovery of a kill: from the SIGKILL until every job has restarted (a new entry in its exception history) and
every task of every job is RUNNING again, by the JobManager's own task timestamps. Of a broker restart: until
the broker answers again, and until every task runs (0 when none had to restart: the Kafka source reconnects).

Why not the `numRestarts` metric: `/jobs/<id>/metrics` answers at once from the REST endpoint's metric cache,
which Flink 2.2 refreshes at most every 10 s (`metrics.fetcher.update-interval`) and only once the previous
fetch, from the JobManager and from every TaskManager, has completed. A metric request made just before a
kill starts such a fetch; a TaskManager that never answers it (killed before it did, or frozen with SIGSTOP
in a probe here) holds every later refresh until the request times out. In that probe numRestarts stayed at
its pre-kill value for over 150 s while the job details showed the job RESTARTING and RUNNING again: the way
a bench that read numRestarts just before each kill could see no restart and give up after 180 s. Job
details, exception history and subtask times come from the JobMaster's execution graph (cached for at most
`web.refresh-interval`, 3 s), and each restart of a job adds one entry to its exception history (the counts
matched numRestarts once that cache caught up).
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import httpx
from pyiceberg.expressions import StartsWith

from connectors.iceberg_tables import catalog, ensure_tables
from features import feature_set_for_entity
from fyp.config import Settings
from fyp.pipelines import ENGAGEMENT_FEATURES_JOB, ENGAGEMENT_HISTORY_JOB
from fyp.stack.flink_cluster import TaskManagerService
from fyp.stack.kafka_broker import KafkaService
from fyp.stack.process import StackError, reap, wait_until
from fyp.stack.service import ProcessService
from fyp.stack.submit import all_tasks_running as tasks_all_running
from fyp.stack.submit import ensure_job, task_counts
from fyp.traffic import TrafficConfig, TrafficGenerator
from fyp.traffic.ids import RunIds
from fyp.traffic.producer import ProducePlan, ProduceReport, produce
from schemas.tables import ENGAGEMENT_HISTORY

__all__ = [
    "ACTIONS",
    "CHAOS_JOBS",
    "ChaosResult",
    "Disruption",
    "JobView",
    "all_tasks_running",
    "ensure_jobs",
    "history_counts",
    "job_view",
    "jobs_running",
    "recovered",
    "recovery_seconds",
    "restarts_since",
    "run_chaos",
    "running_since",
]

# The jobs chaos runs, with short checkpoints to bound the replay.
CHAOS_JOBS = (ENGAGEMENT_HISTORY_JOB, ENGAGEMENT_FEATURES_JOB)
CHAOS_PROPERTIES = {"execution.checkpointing.interval": "5s"}


@dataclass(frozen=True, kw_only=True)
class Disruption:
    """One fault and how long the pipeline took to get over it (seconds from the fault)."""

    kind: str  # a kind of ACTIONS: "kill_taskmanager", "restart_kafka", "kill_kafka" or "kill_redis_primary"
    at_s: float  # seconds after production started
    service_back_s: float | None  # the new TaskManager registered / the broker answered again
    # Until the last task of every job was RUNNING again (after its job restarted, for a kill), by the
    # JobManager's task timestamps; 0.0 when no task stopped; None when that took over the timeout (180 s).
    jobs_running_s: float | None
    job_restarts: int  # restarts of all the jobs together (exception-history entries) until then


@dataclass(frozen=True, kw_only=True)
class ChaosResult:
    produced: int
    failed: int
    produce_seconds: float
    landed: int
    duplicates: int
    missing: int
    catch_up_s: float | None  # from the end of production until the history held every event
    disruptions: list[Disruption]
    verify: dict[str, int] = field(default_factory=dict)  # verified entities by status
    verify_causes: dict[str, int] = field(default_factory=dict)
    run_id: str = ""

    @property
    def exactly_once(self) -> bool:
        return self.failed == 0 and self.landed == self.produced and self.duplicates == 0 and self.missing == 0


def _rest(settings: Settings, path: str) -> dict:
    response = httpx.get(f"{settings.flink_rest_url}{path}", timeout=5)
    response.raise_for_status()
    return response.json()


@dataclass(frozen=True, kw_only=True)
class JobView:
    """One job as the JobManager's REST API shows it: `/jobs/<id>` and `/jobs/<id>/exceptions`."""

    job_id: str
    state: str  # the job's status: RUNNING, RESTARTING, …
    tasks: tuple[tuple[str, int, int], ...]  # per vertex: (vertex id, parallelism, tasks RUNNING)
    failures: tuple[int, ...]  # exception-history timestamps (ms), one per restart, newest first

    @classmethod
    def parse(cls, details: Mapping, exceptions: Mapping) -> JobView:
        tasks = task_counts(details)
        entries = exceptions["exceptionHistory"]["entries"]
        return cls(job_id=details["jid"], state=details["state"], tasks=tasks,
                   failures=tuple(int(e["timestamp"]) for e in entries))


def all_tasks_running(view: JobView) -> bool:
    return tasks_all_running(view.state, view.tasks)


def restarts_since(before: JobView, after: JobView) -> int:
    """Restarts between two views: exception-history entries newer than the newest one `before` saw.

    Flink keeps the last `web.exception-history-size` (16) entries, so this counts at most 16.
    """
    newest = max(before.failures, default=0)
    return sum(1 for t in after.failures if t > newest)


def recovered(before: Mapping[str, JobView], now: Mapping[str, JobView], *, must_restart: bool) -> bool:
    """Every job has all its tasks RUNNING and, when `must_restart`, has restarted since `before`."""
    return all(j in now and all_tasks_running(now[j]) and (not must_restart or restarts_since(view, now[j]) > 0)
               for j, view in before.items())


def running_since(subtask_times: Mapping) -> list[int]:
    """When each task of a vertex (`/jobs/<id>/vertices/<vid>/subtasktimes`) last switched to RUNNING (ms; 0:
    its current attempt does not run)."""
    return [int(s["timestamps"].get("RUNNING", 0)) for s in subtask_times["subtasks"]]


def recovery_seconds(fault_ms: int, task_running_ms: Iterable[int]) -> float:
    """Seconds from the fault until the last task ran again; 0.0 when every task kept running through it."""
    return round(max(0, max(task_running_ms, default=0) - fault_ms) / 1000, 2)


def job_view(settings: Settings, job_id: str) -> JobView:
    return JobView.parse(_rest(settings, f"/jobs/{job_id}"), _rest(settings, f"/jobs/{job_id}/exceptions"))


def jobs_running(settings: Settings, job_ids: Sequence[str]) -> bool:
    """Every job RUNNING with every task of every vertex RUNNING."""
    return all(all_tasks_running(job_view(settings, j)) for j in job_ids)


def ensure_jobs(settings: Settings) -> list[str]:
    """The ids of the running history and features jobs, submitting the missing ones (5 s checkpoints)."""
    return [ensure_job(settings, pipeline, properties=CHAOS_PROPERTIES) for pipeline in CHAOS_JOBS]


def history_counts(settings: Settings, event_prefix: str) -> tuple[int, int]:
    """(rows, distinct event ids) of the run in the history table."""
    table = catalog(settings).load_table(ENGAGEMENT_HISTORY)
    ids = table.scan(row_filter=StartsWith("event_id", event_prefix), selected_fields=("event_id",)).to_arrow()
    column = ids.column("event_id")
    return column.length(), len(column.unique()) if column.length() else 0


def _await_recovery(settings: Settings, before: Mapping[str, JobView], fault_ms: int, timeout_s: float, *,
                    must_restart: bool) -> tuple[float | None, int]:
    """Seconds from `fault_ms` (wall clock) until every task of every job ran again (after its job restarted,
    when `must_restart`), or None after `timeout_s`; and the restarts the jobs went through until then."""
    now: dict[str, JobView] = {}
    task_running_ms: list[int] = []

    def check() -> bool:
        now.update({j: job_view(settings, j) for j in before})
        if not recovered(before, now, must_restart=must_restart):
            return False
        task_running_ms[:] = [t for view in now.values() for vertex, _, _ in view.tasks
                              for t in running_since(_rest(settings, f"/jobs/{view.job_id}/vertices/{vertex}/"
                                                                     "subtasktimes"))]
        return all(task_running_ms)  # a task that failed again since the job details has no RUNNING time

    ok = wait_until(check, timeout_s=timeout_s, interval_s=0.5)
    restarts = sum(restarts_since(view, now[j]) for j, view in before.items() if j in now)
    # The JobManager stamps task states with its wall clock; every service runs on this machine (the bench
    # kills local processes), so it is the clock `fault_ms` was read from.
    return (recovery_seconds(fault_ms, task_running_ms) if ok else None), restarts


def _sigkill(service: ProcessService) -> tuple[float, int]:
    """SIGKILL `service`'s whole process group, as a crashed machine or container would lose it, and wait until it
    is gone; return when, as (monotonic seconds, wall-clock ms).

    fyp.stack starts each service as the leader of its own session, so the group is the service and whatever it
    forked (a TaskManager's Python workers). When this process started it (one an earlier fault restarted, or the
    integration tests' session stack), it is our child: it is reaped, or it would stay a zombie while we run."""
    pid = service.pid()
    if pid is None:
        raise StackError(f"{service.name} is not running")
    start, fault_ms = time.monotonic(), int(time.time() * 1000)
    os.killpg(pid, signal.SIGKILL)
    if not reap(pid, timeout_s=10):
        raise StackError(f"{service.name} (pid {pid}) is still running 10 s after SIGKILL")
    return start, fault_ms


def kill_taskmanager(
    settings: Settings, job_ids: Sequence[str], *, timeout_s: float = 180,
) -> tuple[float | None, float | None, int]:
    """SIGKILL the TaskManager, start a new one through fyp.stack, and wait until the jobs run again."""
    service = TaskManagerService(settings)
    before = {j: job_view(settings, j) for j in job_ids}
    old_ids = _taskmanager_ids(settings)
    start, fault_ms = _sigkill(service)
    service.start()  # a fresh process; the JobManager reschedules the jobs onto its slots
    registered = wait_until(lambda: bool(_taskmanager_ids(settings) - old_ids), timeout_s=timeout_s)
    back = round(time.monotonic() - start, 2) if registered else None
    running, restarts = _await_recovery(settings, before, fault_ms, timeout_s, must_restart=True)
    return back, running, restarts


def _taskmanager_ids(settings: Settings) -> set[str]:
    return {tm["id"] for tm in _rest(settings, "/taskmanagers")["taskmanagers"]}


def restart_kafka(
    settings: Settings, job_ids: Sequence[str], *, timeout_s: float = 180,
) -> tuple[float | None, float | None, int]:
    """Stop the broker (SIGTERM, as an operator or a rolling upgrade would) and start it again."""
    service = KafkaService(settings)
    before = {j: job_view(settings, j) for j in job_ids}
    start = time.monotonic()
    fault_ms = int(time.time() * 1000)
    service.stop()  # waits for the broker to exit and reaps it when this process started it
    service.start()
    back = round(time.monotonic() - start, 2)
    running, restarts = _await_recovery(settings, before, fault_ms, timeout_s, must_restart=False)
    return back, running, restarts


def kill_kafka(
    settings: Settings, job_ids: Sequence[str], *, node: int = 1, down_s: float = 10.0, timeout_s: float = 180,
) -> tuple[float | None, float | None, int]:
    """SIGKILL Kafka node `node`, keep it down `down_s` seconds while traffic flows, then start it again.

    With replication (the cluster profile: RF 3, min.insync.replicas 2) the other brokers lead its partitions
    meanwhile and acks=all writes go on; a single broker's producers buffer until it is back."""
    service = KafkaService(settings, node)
    before = {j: job_view(settings, j) for j in job_ids}
    start, fault_ms = _sigkill(service)
    time.sleep(down_s)
    service.start()  # healthy once it has rejoined the cluster
    back = round(time.monotonic() - start, 2)
    running, restarts = _await_recovery(settings, before, fault_ms, timeout_s, must_restart=False)
    return back, running, restarts


def kill_redis_primary(
    settings: Settings, job_ids: Sequence[str], *, timeout_s: float = 180,
) -> tuple[float | None, float | None, int]:
    """SIGKILL one Redis Cluster primary; `back` is when the cluster serves all slots again (its replica promoted).

    The killed node is started again afterwards and rejoins as a replica. The features job's Redis writer keeps
    the writes it could not deliver and retries them within `sink.max-outage`, so no job needs to restart."""
    from fyp.stack.redis_cluster import RedisNodeService, primary_ports

    if not settings.redis_cluster_nodes:
        raise StackError("kill_redis_primary needs the cluster profile (fyp up --cluster)")
    nodes = [RedisNodeService(settings, i) for i in range(len(settings.redis_cluster_nodes))]
    primaries = primary_ports(settings)
    victim = next(n for n in nodes if n.port == primaries[0])
    before = {j: job_view(settings, j) for j in job_ids}
    start, fault_ms = _sigkill(victim)
    promoted = wait_until(lambda: victim.port not in primary_ports(settings, exclude=victim.port)
                          and len(primary_ports(settings, exclude=victim.port)) == len(primaries),
                          timeout_s=timeout_s)
    back = round(time.monotonic() - start, 2) if promoted else None
    victim.start()  # rejoins as a replica of the promoted node
    running, restarts = _await_recovery(settings, before, fault_ms, timeout_s, must_restart=False)
    return back, running, restarts


# What `run_chaos` schedules, by kind.
ACTIONS: dict[str, Callable[..., tuple[float | None, float | None, int]]] = {
    "kill_taskmanager": kill_taskmanager, "restart_kafka": restart_kafka, "kill_kafka": kill_kafka,
    "kill_redis_primary": kill_redis_primary,
}


def run_chaos(
    settings: Settings, *, events: int, rate: float, schedule: Sequence[tuple[float, str]], tail_s: float = 3.0,
    users: int = 2_000, videos: int = 5_000, seed: int = 17, land_timeout_s: float = 300,
    verify_sample: int = 20, verify_timeout_s: float = 120, on_progress: Callable[[str], None] | None = None,
) -> ChaosResult:
    """Produce at `rate` events/s while disrupting on `schedule` ((seconds after the start, kind) pairs, kind
    one of ACTIONS: `kill_taskmanager`, `restart_kafka`, `kill_kafka` or `kill_redis_primary`; each fault waits
    for the recovery from the one before). Production goes on until `tail_s` after the last recovery, or until
    `events` were sent, whichever comes first."""
    from fyp.lake.history import sample_ids
    from fyp.lake.verify import summarize, verify

    say = on_progress or (lambda _message: None)
    ensure_tables(settings)
    job_ids = ensure_jobs(settings)
    if not wait_until(lambda: jobs_running(settings, job_ids), timeout_s=180):
        raise StackError(f"jobs {job_ids} are not all running; see the Flink UI")
    ids = RunIds(run_id=str(uuid.uuid4()))
    generator = TrafficGenerator(TrafficConfig(users=users, videos=videos), seed, run_id=ids.run_id)
    run_start_ms = int(time.time() * 1000)
    reports: list[ProduceReport] = []
    done = threading.Event()
    producer = threading.Thread(target=lambda: reports.append(produce(
        generator, ProducePlan(rate=rate, max_events=events), client_config=settings.kafka_client_config(),
        stop=done.is_set)), daemon=True)
    started = time.monotonic()
    producer.start()
    disruptions = []
    try:
        for at_s, kind in sorted(schedule):
            delay = at_s - (time.monotonic() - started)
            if delay > 0:
                time.sleep(delay)
            fault_at = round(time.monotonic() - started, 2)
            say(f"{kind} at {fault_at:.1f} s")
            action = ACTIONS[kind]
            back, running, restarts = action(settings, job_ids)
            disruptions.append(Disruption(kind=kind, at_s=fault_at, service_back_s=back, jobs_running_s=running,
                                          job_restarts=restarts))
            say(f"{kind}: service back in {back} s, jobs running in {running} s ({restarts} restarts)")
        time.sleep(tail_s)
    finally:
        done.set()
    producer.join()
    if not reports:
        raise StackError("the producer thread failed; see the error above")
    report = reports[0]
    produced_at = time.monotonic()
    say(f"produced {report.produced:,} ({report.failed} failed); waiting for the history")
    counts = (0, 0)

    def landed() -> bool:
        nonlocal counts
        counts = history_counts(settings, ids.event_prefix)
        return counts[0] >= report.produced

    caught_up = wait_until(landed, timeout_s=land_timeout_s, interval_s=1.0)
    catch_up_s = round(time.monotonic() - produced_at, 2) if caught_up else None
    time.sleep(1.0)  # a commit racing the last count would show as duplicates: count once more
    rows, distinct = history_counts(settings, ids.event_prefix)

    # Features: every sampled video and user consistent with the history (the features job may still be
    # catching up after its restarts, so retry while only `as_of` / `commit_delay` explain a difference).
    client = settings.redis_client()
    table = catalog(settings).load_table(ENGAGEMENT_HISTORY)
    by_status: dict[str, int] = {}
    by_cause: dict[str, int] = {}
    deadline = time.monotonic() + verify_timeout_s
    for entity in ("video", "user"):
        feature_set = feature_set_for_entity(entity)
        sample = sample_ids(table, feature_set, verify_sample, seed=seed, since_ms=run_start_ms)
        while True:
            checks = verify(feature_set, table, client, sample, now_ms=int(time.time() * 1000))
            summary = summarize(feature_set, checks)
            settled = set(summary.by_status) <= {"match"} or not (set(summary.by_cause) & {"as_of", "commit_delay"}
                                                                   or "missing" in summary.by_status)
            if settled or time.monotonic() > deadline:
                break
            time.sleep(2.0)
        for status, n in summary.by_status.items():
            by_status[status] = by_status.get(status, 0) + n
        for cause, n in summary.by_cause.items():
            by_cause[cause] = by_cause.get(cause, 0) + n
    return ChaosResult(
        produced=report.produced, failed=report.failed, produce_seconds=round(report.seconds, 2), landed=rows,
        duplicates=rows - distinct, missing=report.produced - distinct, catch_up_s=catch_up_s,
        disruptions=disruptions, verify=by_status, verify_causes=by_cause, run_id=ids.run_id,
    )

