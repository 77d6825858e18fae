"""Where a job that is not running resumes from: the newest state on disk of the job last submitted for it.

A standalone JobManager that stops (`fyp down`, a crash) takes its running jobs with it, but not their state: every
job keeps its last checkpoints (`execution.checkpointing.externalized-checkpoint-retention: RETAIN_ON_CANCELLATION`,
flink-conf/config.yaml, and a JobManager that is killed cleans up nothing). A features job submitted again without
that state would start empty from its consumer group's committed offsets and overwrite every Redis value with
one computed from the events since: absolute values from state, so wrong ones, silently. So each managed
submission (`fyp.stack.submit.ensure_job`, `fyp submit`, `fyp rescale`) is recorded, and the next one resumes from
the newest of:

    the savepoint its last stop recorded (`record_savepoint`: the demo's stops), when that stop came after the last
        submission;
    else the newest retained checkpoint (`chk-N/_metadata`) of the job last submitted;
    else what that job itself resumed from (it stopped before its first checkpoint).

Checkpoints are found where the cluster's configuration puts them (`state.checkpoints.dir`: file:// in the single
profile, s3:// on SeaweedFS in the cluster profile).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import yaml

from fyp.config import Settings

__all__ = ["ResumePoint", "checkpoints_dir", "latest_checkpoint", "record_submitted", "resume_point",
           "still_there", "submission_record"]

_CHECKPOINT = re.compile(r"chk-(\d+)$")


@dataclass(frozen=True, kw_only=True)
class ResumePoint:
    path: str  # what `flink run -s` takes: a savepoint or a retained checkpoint's directory
    kind: str  # "savepoint" or "checkpoint"
    job_id: str | None  # the Flink job whose checkpoint it is (None: a savepoint)

    def describe(self) -> str:
        return f"savepoint {self.path}" if self.kind == "savepoint" else \
            f"retained checkpoint {self.path} of job {self.job_id}"


def submission_record(settings: Settings, job: str) -> Path:
    """Where the last managed submission of `job` is kept (its Flink job id, and what it resumed from)."""
    return settings.data_dir / "flink" / "last-submitted" / job


def record_submitted(settings: Settings, job: str, job_id: str, resumed_from: str | None) -> None:
    record = submission_record(settings, job)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"job_id": job_id, "resumed_from": resumed_from}) + "\n")


def checkpoints_dir(settings: Settings) -> str | None:
    """`state.checkpoints.dir` of the rendered cluster configuration (nested or flat keys), or None when none is
    rendered or set."""
    from fyp.stack.flink_cluster import FlinkDistribution

    config = FlinkDistribution(settings).conf_dir / "config.yaml"
    if not config.exists():
        return None
    data = yaml.safe_load(config.read_text()) or {}
    if "state.checkpoints.dir" in data:
        return str(data["state.checkpoints.dir"])
    found = data.get("state", {}).get("checkpoints", {}) if isinstance(data.get("state"), dict) else {}
    return str(found["dir"]) if isinstance(found, dict) and found.get("dir") else None


def latest_checkpoint(settings: Settings, job_id: str, directory: str | None = None) -> str | None:
    """The newest completed checkpoint of Flink job `job_id` (a `chk-N` holding `_metadata`), as a path `flink run
    -s` takes, or None. directory: the checkpoints' root (default: the cluster's `state.checkpoints.dir`)."""
    root = directory or checkpoints_dir(settings)
    if not root:
        return None
    url = urlparse(root)
    if url.scheme == "s3":
        return _latest_on_s3(settings, url.netloc, url.path.strip("/"), job_id)
    base = Path(url.path if url.scheme == "file" else root) / job_id
    numbered = [(int(m.group(1)), d) for d in base.glob("chk-*") if (m := _CHECKPOINT.search(d.name))
                and (d / "_metadata").exists()] if base.is_dir() else []
    if not numbered:
        return None
    return f"file://{max(numbered)[1]}" if url.scheme == "file" else str(max(numbered)[1])


def _latest_on_s3(settings: Settings, bucket: str, prefix: str, job_id: str) -> str | None:
    from fyp.stack.seaweedfs import s3_client  # boto3 is slow to import; only the cluster profile needs it

    paginator = s3_client(settings).get_paginator("list_objects_v2")
    numbered = []
    for page in paginator.paginate(Bucket=bucket, Prefix=f"{prefix}/{job_id}/chk-".lstrip("/")):
        for item in page.get("Contents", []):
            directory, _, name = item["Key"].rpartition("/")
            if name == "_metadata" and (m := _CHECKPOINT.search(directory)):
                numbered.append((int(m.group(1)), directory))
    return f"s3://{bucket}/{max(numbered)[1]}" if numbered else None


def resume_point(settings: Settings, job: str) -> ResumePoint | None:
    """Where `job` resumes from (this module's docstring), or None: nothing recorded, or no state left on disk."""
    from fyp.stack.submit import recorded_savepoint, savepoint_record

    savepoint = recorded_savepoint(settings, job)
    record = submission_record(settings, job)
    if not record.exists():
        return ResumePoint(path=savepoint, kind="savepoint", job_id=None) if savepoint else None
    if savepoint and savepoint_record(settings, job).stat().st_mtime >= record.stat().st_mtime:
        return ResumePoint(path=savepoint, kind="savepoint", job_id=None)  # the last stop came after it
    last = json.loads(record.read_text())
    checkpoint = latest_checkpoint(settings, last["job_id"])
    if checkpoint:
        return ResumePoint(path=checkpoint, kind="checkpoint", job_id=last["job_id"])
    earlier = last.get("resumed_from")
    if earlier and still_there(earlier):
        return ResumePoint(path=earlier, kind="savepoint" if "/chk-" not in earlier else "checkpoint", job_id=None)
    return None


def still_there(path: str) -> bool:
    """Whether a local savepoint or checkpoint (`file:`, `file://` or a bare path) still has its metadata; a remote
    one is taken on trust."""
    url = urlparse(path)
    if url.scheme not in ("", "file"):
        return True
    return (Path(url.path) / "_metadata").exists()
