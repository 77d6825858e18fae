"""Submit PyFlink jobs in `jobs/` to the local cluster with `flink run -py`, and list or cancel them."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from fyp.config import REPO_ROOT, Settings
from fyp.pipelines import PIPELINES, Pipeline
from fyp.stack.flink_cluster import FlinkDistribution
from fyp.stack.process import StackError

if TYPE_CHECKING:
    from fyp.stack.resume import ResumePoint

__all__ = ["ALIVE_STATES", "JOBS_DIR", "RunningJob", "alive_copies", "all_tasks_running", "available_jobs",
           "cancel_job", "ensure_job", "list_jobs", "parse_properties", "record_savepoint", "recorded_savepoint",
           "refuse_a_second_copy", "running_parallelism", "savepoint_record", "submission_parallelism", "submit_job",
           "submit_resuming", "task_counts"]

JOBS_DIR = REPO_ROOT / "jobs"
_JOB_ID = re.compile(r"JobID ([0-9a-f]{32})")


@dataclass(frozen=True, kw_only=True)
class RunningJob:
    job_id: str
    name: str
    state: str
    start_time_ms: int


def available_jobs() -> list[str]:
    """The jobs of the catalogue (fyp/pipelines.py); each has its file in `jobs/`."""
    return sorted(PIPELINES)


def parse_properties(items: list[str]) -> dict[str, str]:
    """`key=value` strings (the `-D` options of the CLI) as a dict; a ValueError names the first malformed one.

    >>> parse_properties(["state.backend.type=hashmap", "a.b=x=y"])
    {'state.backend.type': 'hashmap', 'a.b': 'x=y'}
    """
    properties: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected key=value, got {item!r}")
        properties[key.strip()] = value
    return properties


def job_path(name: str) -> Path:
    path = JOBS_DIR / f"{name.removesuffix('.py')}.py"
    if name.removesuffix(".py") not in PIPELINES or not path.exists():
        raise StackError(f"no job {name!r} in {JOBS_DIR}; available: {', '.join(available_jobs())}")
    return path


def _require_jobmanager(settings: Settings) -> None:
    """Fail at once when the JobManager is down: `flink run` would build the job, then retry for minutes."""
    try:
        httpx.get(f"{settings.flink_rest_url}/config", timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        raise StackError(f"the Flink JobManager at {settings.flink_rest_url} is not reachable ({exc}); "
                         "is the local stack up? `fyp up` starts it") from exc


def submission_parallelism(job: str, requested: int | None) -> int | None:
    """`flink run -p` for `job`: the one asked for, else the catalogue's default (None: the cluster's).

    >>> submission_parallelism("follow_graph", None), submission_parallelism("follow_graph", 3)
    (1, 3)
    >>> submission_parallelism("engagement_features", None) is None
    True
    """
    return requested or PIPELINES[job].parallelism


def submit_job(
    settings: Settings, name: str, *, parallelism: int | None = None, properties: dict[str, str] | None = None,
    job_args: list[str] | None = None, timeout_s: float = 300, from_savepoint: str | None = None,
) -> str:
    """Run `flink run --detached -py jobs/<name>.py` and return the Flink job id.

    parallelism: `flink run -p`; None: the catalogue's default for the job (`Pipeline.parallelism`), else the cluster's.
    properties: Flink configuration overrides, passed as -D key=value (e.g. execution.checkpointing.interval).
    from_savepoint: restore the job's state from this savepoint or retained checkpoint (`flink run -s`).
    """
    path = job_path(name)  # a misspelt name first: it is the likelier mistake, and needs no cluster
    parallelism = submission_parallelism(path.stem, parallelism)
    _require_jobmanager(settings)
    dist = FlinkDistribution(settings)
    argv = ["bash", str(dist.bin("flink")), "run", "--detached", "-py", str(path)]
    if parallelism:
        argv += ["-p", str(parallelism)]
    if from_savepoint:
        argv += ["-s", from_savepoint]
    for key, value in (properties or {}).items():
        argv.append(f"-D{key}={value}")
    argv += job_args or []
    env = {**os.environ, **dist.environment()}
    try:
        result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout_s, check=False,
                                cwd=REPO_ROOT)
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"`flink run` for {name} did not finish within {timeout_s:.0f} s") from exc
    match = _JOB_ID.search(result.stdout + result.stderr)
    if result.returncode != 0 or match is None:
        log = settings.logs_dir / f"submit-{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(result.stdout + "\n" + result.stderr)
        # The Python traceback says what went wrong; the Java stack frames around it rarely do.
        lines = [ln for ln in (result.stdout + result.stderr).splitlines() if not ln.lstrip().startswith("at ")]
        causes = [ln.strip() for ln in lines if "Exception:" in ln or "Error:" in ln]
        tail = "\n".join(causes[:3] or lines[-15:])
        raise StackError(f"submitting {name} failed (exit {result.returncode}); full output in {log}:\n{tail}")
    return match.group(1)


# A job in one of these states holds (or waits for) its slots.
ALIVE_STATES = ("RUNNING", "CREATED", "RESTARTING")


def savepoint_record(settings: Settings, job: str) -> Path:
    """Where the path of `job`'s last stop-with-savepoint is kept: beside the state, so it outlives `fyp down`."""
    return settings.data_dir / "flink" / "last-savepoint" / job


def record_savepoint(settings: Settings, job: str, savepoint: str) -> None:
    """Remember `savepoint` as `job`'s state to resume from (`ensure_job`)."""
    record = savepoint_record(settings, job)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(savepoint + "\n")


def recorded_savepoint(settings: Settings, job: str) -> str | None:
    """`job`'s recorded savepoint, or None: none recorded, or a local one whose files are gone."""
    record = savepoint_record(settings, job)
    if not record.exists():
        return None
    from fyp.stack.resume import still_there

    savepoint = record.read_text().strip()
    return savepoint if still_there(savepoint) else None


def ensure_job(settings: Settings, pipeline: Pipeline, *, properties: dict[str, str] | None = None) -> str:
    """The id of `pipeline`'s job when one is alive on the cluster, else of a newly submitted one, resumed from the
    newest state of the job last submitted for it (`submit_resuming`), so that a job never starts empty after a stop
    or a stack restart while its state is on disk."""
    if alive := alive_copies(settings, pipeline.job):
        return alive[0].job_id
    return submit_resuming(settings, pipeline.job, properties=properties, allow_duplicate=True)[0]  # none alive


def alive_copies(settings: Settings, job: str) -> list[RunningJob]:
    """The jobs on the cluster that run `jobs/<job>.py` (by its pipeline name) and hold or wait for slots."""
    _require_jobmanager(settings)
    name = PIPELINES[job].pipeline_name
    return [j for j in list_jobs(settings) if j.name == name and j.state in ALIVE_STATES]


def refuse_a_second_copy(settings: Settings, job: str) -> None:
    """A StackError when `job`'s pipeline is alive on the cluster. A second copy reads the same topics from its own
    offsets and writes the same outputs: the history job would commit every event to Iceberg twice, and two
    features jobs race each other's values into Redis."""
    name = PIPELINES[job].pipeline_name
    if alive := alive_copies(settings, job):
        ids = ", ".join(f"{j.job_id} ({j.state})" for j in alive)
        raise StackError(f"{name} is already on the cluster as job {ids}. A second copy would read the same topics "
                         "and write the same outputs twice. Cancel it first (`fyp cancel JOB_ID`), change its "
                         f"parallelism with `fyp rescale {job} -p N`, or pass --allow-duplicate to submit one anyway")


def submit_resuming(settings: Settings, job: str, *, fresh: bool = False, from_savepoint: str | None = None,
                    allow_duplicate: bool = False, **options: Any) -> tuple[str, ResumePoint | None]:
    """`submit_job` from `from_savepoint`, else, unless `fresh`, from the newest state of the job last submitted for
    `job` (`fyp.stack.resume.resume_point`: a savepoint its last stop recorded, or a retained checkpoint); the
    submission is recorded for the next one. Returns the new job id and the state it resumed from by default (None:
    none, or `from_savepoint`/`fresh` given). A restore that fails is an error naming the records, never an empty
    start in its place, which would overwrite what the state computed. Unless `allow_duplicate`, a job whose
    pipeline is already alive is refused (`refuse_a_second_copy`)."""
    from fyp.stack.resume import record_submitted, resume_point, submission_record

    job = job_path(job).stem  # a misspelt name is refused before the cluster is asked
    if not allow_duplicate:
        refuse_a_second_copy(settings, job)
    resume = None if fresh or from_savepoint else resume_point(settings, job)
    start = from_savepoint or (resume and resume.path)
    try:
        job_id = submit_job(settings, job, from_savepoint=start, **options)
    except StackError as exc:
        if resume is None:
            raise
        raise StackError(f"{exc}\n{job} was to resume from its {resume.describe()}; if that state is no longer "
                         f"wanted, delete {savepoint_record(settings, job)} and {submission_record(settings, job)} "
                         f"(or submit with `fyp submit {job} --fresh`), and the job starts empty") from exc
    record_submitted(settings, job, job_id, start)
    return job_id, resume


def list_jobs(settings: Settings) -> list[RunningJob]:
    response = httpx.get(f"{settings.flink_rest_url}/jobs/overview", timeout=5)
    response.raise_for_status()
    return [RunningJob(job_id=j["jid"], name=j["name"], state=j["state"], start_time_ms=j["start-time"])
            for j in response.json()["jobs"]]


def running_parallelism(settings: Settings, pipeline: Pipeline) -> int | None:
    """The parallelism (its vertices' largest) of `pipeline`'s RUNNING job, or None when none runs or Flink's REST
    API does not answer."""
    try:
        running = [j for j in list_jobs(settings) if j.name == pipeline.pipeline_name and j.state == "RUNNING"]
        if not running:
            return None
        response = httpx.get(f"{settings.flink_rest_url}/jobs/{running[0].job_id}", timeout=5)
        response.raise_for_status()
    except httpx.HTTPError:
        return None
    return max((n for _, n, _ in task_counts(response.json())), default=None)


def task_counts(details: Mapping) -> tuple[tuple[str, int, int], ...]:
    """Per vertex of a job's `GET /jobs/<id>` details: (vertex id, parallelism, tasks RUNNING). Tasks, not the
    vertex status: a vertex is RUNNING as soon as one of its tasks is, while the others may still be SCHEDULED or
    DEPLOYING (waiting for a slot)."""
    return tuple((v["id"], int(v["parallelism"]), int(v["tasks"].get("RUNNING", 0))) for v in details["vertices"])


def all_tasks_running(state: str, tasks: tuple[tuple[str, int, int], ...]) -> bool:
    """A job in `state` with these `task_counts` runs every task (what a savepoint needs)."""
    return state == "RUNNING" and bool(tasks) and all(n == running for _, n, running in tasks)


def cancel_job(settings: Settings, job_id: str) -> None:
    """Cancel a job; a StackError for an id that is malformed or that the cluster does not know."""
    if not re.fullmatch(r"[0-9a-f]{32}", job_id):
        raise StackError(f"{job_id!r} is not a Flink job id (32 hex digits); `fyp jobs` lists them")
    response = httpx.patch(f"{settings.flink_rest_url}/jobs/{job_id}", params={"mode": "cancel"}, timeout=10)
    if response.status_code == 404:
        raise StackError(f"the cluster has no job {job_id}; `fyp jobs` lists them")
    response.raise_for_status()
