"""`fyp bench experiment-report`: rows/s and peak memory of the experiment report's scan on a generated history.

The history is written to a local Iceberg table (pyiceberg's SQL catalog on SQLite, Parquet files on local disk)
laid out as the stack's (`connectors.iceberg_tables.create_engagement_history`: day x event_type partitions,
zstd), so the measurement needs no stack and other helpers' traffic does not touch it; the read path is the
report's own (plan_files, pyiceberg's Arrow reader, the folds), with local files for S3.

Each round runs each mode in a fresh Python process, modes alternating. Memory: the process's RSS once its imports
are done and the table is loaded, and its peak RSS during the run (Linux: the peak is reset with
/proc/self/clear_refs after the imports, then read from VmHWM), so the imports' own peak does not hide the run's:
- `stream`: what `fyp experiment report` does (fyp/experiments/history.py `fold_window`, then `build_report`);
- `batch_reader`: the same folds fed by pyiceberg's `DataScan.to_arrow_batch_reader()` as is (history.py says
  why the report does not use it: every file is submitted at once);
- `whole`: the report's columns of the whole window loaded as one Arrow table and converted to pandas, what the
  report did before streaming; its aggregation is not run, so its memory is a lower bound of that path's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["EXPERIMENT", "MODES", "build_history", "run_bench"]

EXPERIMENT = "bench"
MODES = ("stream", "batch_reader", "whole")
_TABLE = "bench.engagement_history"
_KINDS = np.array(["impression", "watch", "like", "skip", "share"])
_KIND_WEIGHTS = (0.4, 0.3, 0.05, 0.2, 0.05)
_DAY_MS = 86_400_000
_T0_MS = 1_780_000_000_000 // _DAY_MS * _DAY_MS  # a midnight UTC in 2026


def _catalog(warehouse: Path) -> Any:
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog("bench", uri=f"sqlite:///{warehouse}/catalog.db", warehouse=f"file://{warehouse}")


def build_history(warehouse: Path, *, users: int, events_per_user: int, days: int, appends: int,
                  seed: int = 7) -> int:
    """Write users x events_per_user generated engagement rows over `days` days in `appends` commits (each writes
    one file per day x event type); every user is in arm control or treat of EXPERIMENT. Returns the rows."""
    import pyarrow as pa

    from connectors.iceberg_tables import create_engagement_history

    warehouse.mkdir(parents=True, exist_ok=True)
    cat = _catalog(warehouse)
    cat.create_namespace_if_not_exists("bench")
    table = create_engagement_history(cat, _TABLE)
    schema = table.schema().as_arrow()
    rng = np.random.default_rng(seed)
    rows = users * events_per_user
    step = -(-rows // appends)
    for start in range(0, rows, step):
        n = min(step, rows - start)
        user = rng.integers(0, users, n)
        kind = _KINDS[rng.choice(len(_KINDS), n, p=_KIND_WEIGHTS)]
        impression = kind == "impression"
        arm = np.where(user % 2 == 0, f"{EXPERIMENT}:control", f"{EXPERIMENT}:treat")
        lengths = np.where(impression, 2, 0)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        values = np.empty(int(offsets[-1]), dtype=object)
        values[0::2], values[1::2] = arm[impression], "other:x"
        duration = rng.choice([10_000, 30_000, 60_000], n)
        columns = {
            "event_type": pa.array(kind),
            "event_id": pa.array([f"e{start + i}" for i in range(n)]),
            "event_time": pa.array(_T0_MS + rng.integers(0, days * _DAY_MS, n), pa.int64())
            .cast(pa.timestamp("ms", tz="UTC")).cast(pa.timestamp("us", tz="UTC")),
            "user_id": pa.array(np.char.add("u", user.astype(str))),
            "video_id": pa.array(np.char.add("v", rng.integers(0, 100_000, n).astype(str))),
            "watch_ms": pa.array(np.where(kind == "watch", rng.integers(0, 60_000, n), 0),
                                 mask=kind != "watch"),
            "video_duration_ms": pa.array(duration, mask=~np.isin(kind, ["watch", "skip"])),
            "dwell_ms": pa.array(rng.integers(0, 4_000, n), mask=kind != "skip"),
            "action": pa.array(np.where(rng.random(n) < 0.9, "LIKE", "UNLIKE"), mask=kind != "like"),
            "arms": pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, pa.string())),
        }
        arrays = [columns[f.name].cast(f.type) if f.name in columns else pa.nulls(n, f.type) for f in schema]
        table.append(pa.Table.from_arrays(arrays, schema=schema))
    return rows


def _status_kib(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"/proc/self/status has no {field}")


def _one(mode: str, warehouse: Path) -> dict[str, Any]:
    """One mode in this process: its wall time, its RSS before, and its peak RSS during the run."""
    from fyp.experiments.fold import EVENT_COLUMNS, EXPOSURE_COLUMNS, fold_exposures, fold_user_sums
    from fyp.experiments.history import fold_window
    from fyp.experiments.report import COLUMNS, build_report

    table = _catalog(warehouse).load_table(_TABLE)
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    before_kib = _status_kib("VmRSS")
    started = time.perf_counter()
    if mode == "stream":
        exposures, per_user = fold_window(table, EXPERIMENT)
        users = sum(a.users for a in build_report(exposures, per_user, EXPERIMENT).arms)
    elif mode == "batch_reader":
        from pyiceberg.expressions import EqualTo

        exposures = fold_exposures(table.scan(row_filter=EqualTo("event_type", "impression"),
                                              selected_fields=EXPOSURE_COLUMNS).to_arrow_batch_reader(), EXPERIMENT)
        per_user = fold_user_sums(table.scan(selected_fields=EVENT_COLUMNS).to_arrow_batch_reader(), exposures.first)
        users = sum(a.users for a in build_report(exposures, per_user, EXPERIMENT).arms)
    elif mode == "whole":
        frame = table.scan(selected_fields=COLUMNS).to_arrow().to_pandas()
        users = int(frame["user_id"].nunique())
    else:
        raise ValueError(f"mode {mode!r}: one of {MODES}")
    wall = time.perf_counter() - started
    peak_kib = _status_kib("VmHWM")
    return {"mode": mode, "wall_s": round(wall, 3), "rss_before_mib": round(before_kib / 1024, 1),
            "peak_rss_mib": round(peak_kib / 1024, 1), "peak_over_before_mib": round((peak_kib - before_kib) / 1024, 1),
            "users": users,
            "load_1m": os.getloadavg()[0]}


def run_bench(warehouse: Path, *, users: int, events_per_user: int, days: int, appends: int, rounds: int,
              modes: tuple[str, ...] = MODES) -> dict[str, Any]:
    """Build the history, then `rounds` rounds of every mode, each in its own process, modes alternating."""
    started = time.perf_counter()
    rows = build_history(warehouse, users=users, events_per_user=events_per_user, days=days, appends=appends)
    files = len(_catalog(warehouse).load_table(_TABLE).inspect.files())
    results = {"rows": rows, "users": users, "days": days, "files": files,
               "build_s": round(time.perf_counter() - started, 1), "rounds": []}
    for round_ in range(rounds):
        order = modes if round_ % 2 == 0 else tuple(reversed(modes))
        for mode in order:
            out = subprocess.run([sys.executable, "-m", "fyp.bench.report_scan", mode, str(warehouse)],
                                 capture_output=True, text=True, check=True, env=os.environ.copy())
            result = json.loads(out.stdout)
            result |= {"round": round_, "rows_per_s": round(rows / result["wall_s"])}
            results["rounds"].append(result)
    return results


if __name__ == "__main__":  # one mode in a fresh process: python -m fyp.bench.report_scan MODE WAREHOUSE
    print(json.dumps(_one(sys.argv[1], Path(sys.argv[2]))))
