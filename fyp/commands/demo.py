"""`fyp demo`: the whole pipeline end to end on the local stack, then a report of what happened."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import typer
from rich.console import Console
from rich.table import Table

from features import ALL_FEATURE_SETS
from features.follow_graph import FOLLOWERS_KEY_PREFIX, FOLLOWING_KEY_PREFIX
from features.serving_sets import SERVING_SETS
from fyp.commands.demo_training import LoggedReads, demo_clock, newest_event_time_ms, training_summary
from fyp.commands.output import console, err_console, fail_cleanly, print_json
from fyp.config import load_settings
from fyp.pipelines import (
    ENGAGEMENT_FEATURES_JOB,
    ENGAGEMENT_HISTORY_JOB,
    FOLLOW_GRAPH_JOB,
    SERVED_TRAINING_JOB,
    UPLOAD_ORCHESTRATION_JOB,
    VIDEO_EMBEDDINGS_JOB,
    Pipeline,
)
from fyp.serving import FeatureClient
from fyp.stack.process import StackError, wait_until
from fyp.stack.services import all_services
from fyp.stack.submit import cancel_job, ensure_job, record_savepoint
from fyp.traffic import TrafficConfig, TrafficGenerator, wall_clock_ms
from fyp.traffic.clock import accelerated_clock
from fyp.traffic.producer import ProducePlan, ProducerError, produce
from fyp.training.skew import IN_FLIGHT_BOUND_MS
from schemas.topics import ENGAGEMENT

__all__ = ["register"]

DEMO_JOBS = (ENGAGEMENT_FEATURES_JOB, ENGAGEMENT_HISTORY_JOB, FOLLOW_GRAPH_JOB)
# With --upload: the orchestrator (it also writes history.upload_events and history.videos_changelog), submitted
# here so that it commits to Iceberg at the demo's checkpoint interval.
UPLOAD_JOBS = (UPLOAD_ORCHESTRATION_JOB,)
# With --training: served features joined with the labels that followed (training.served_watch_outcomes).
TRAINING_JOBS = (SERVED_TRAINING_JOB,)


def _ensure_jobs(settings, checkpoint_interval: str, jobs: tuple[Pipeline, ...] = DEMO_JOBS, *,
                 out: Console = console) -> dict[str, str]:
    """Submit each job of `jobs` unless it is already running; return job name -> Flink job id."""
    ids = {}
    for pipeline in jobs:
        with out.status(f"submitting {pipeline.job} unless it runs …"):
            ids[pipeline.job] = ensure_job(settings, pipeline,
                                           properties={"execution.checkpointing.interval": checkpoint_interval})
        out.print(f"[green]✓[/] {pipeline.job} running ({ids[pipeline.job]})")
    return ids


def _pause_embedding_job(settings, *, out: Console = console) -> None:
    """Stop an earlier demo's video_embeddings before this demo submits its jobs. On a kept stack it still holds 2
    of the TaskManager's 8 slots, so follow_graph and served_training would wait for a slot all through the demo,
    and follow_graph's stop-with-savepoint at the end would fail. It is stopped with a savepoint, which is
    recorded, so that the demo's own submit resumes it with its state (`ensure_job`). A job not running yet (waiting
    for a slot) has nothing newer than its last savepoint or checkpoint, and is cancelled."""
    from fyp.stack.rescale import stop_with_savepoint
    from fyp.stack.submit import ALIVE_STATES, list_jobs

    for job in list_jobs(settings):
        if job.name != VIDEO_EMBEDDINGS_JOB.pipeline_name or job.state not in ALIVE_STATES:
            continue
        with fail_cleanly(StackError), out.status("stopping the last demo's video_embeddings for its slots …"):
            if job.state == "RUNNING":
                record_savepoint(settings, VIDEO_EMBEDDINGS_JOB.job, stop_with_savepoint(settings, job.job_id))
            else:
                cancel_job(settings, job.job_id)
        out.print("[green]✓[/] video_embeddings of the last demo stopped; it resumes once this demo's jobs run")


def demo(
    rate: float = typer.Option(
        2_000, "--rate", min=1,
        help="Events per second to produce. The default is what a 2-core laptop running the whole stack keeps up "
             "with (at 5,000 the features job's largest lag was 32-43 s; docs/TRAINING.md)."),
    duration: float = typer.Option(150, "--duration", min=1, help="Seconds of traffic."),
    users: int = typer.Option(20_000, "--users", min=1, help="Distinct viewers in the generated traffic."),
    videos: int = typer.Option(20_000, "--videos", min=1, help="Distinct videos in the generated traffic."),
    malformed_fraction: float = typer.Option(0.001, "--malformed-fraction", min=0, max=1,
                                             help="Share of bad events (DLQ)."),
    checkpoint_interval: str = typer.Option("10s", "--checkpoint-interval", help="Iceberg commit interval."),
    seed: int = typer.Option(7, "--seed", help="Traffic generator seed."),
    upload: bool = typer.Option(True, "--upload/--no-upload",
                                help="Also upload a generated clip, follow it to ready and play its manifests."),
    training: bool = typer.Option(True, "--training/--no-training",
                                  help="Also log ranking reads, build the training table and run the skew check."),
    speed: float = typer.Option(20, "--speed", min=1,
                                help="Event-time seconds per second of traffic: 20 covers 50 minutes in 150 s, so "
                                     "the 10-minute label windows close (docs/TRAINING.md)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Start the stack, submit the jobs, produce realistic traffic, and report events, features and rows."""
    # pyiceberg takes ~0.4 s to import: only this command pays for it.
    from fyp.lake.maintenance import parse_duration
    from fyp.stack.observe import dead_letter_count, feature_key_counts, iceberg_row_count, job_source_records

    try:
        interval_s = parse_duration(checkpoint_interval).total_seconds()
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--checkpoint-interval") from None
    if interval_s < 1:
        raise typer.BadParameter("at least 1s", param_hint="--checkpoint-interval")
    checkpoint_interval = f"{round(interval_s * 1000)} ms"  # the form Flink reads
    with fail_cleanly(ValueError):  # checked before anything starts
        config = TrafficConfig(users=users, videos=videos, malformed_fraction=malformed_fraction)
    # Progress goes to stderr under --json, so stdout holds the report alone.
    out = err_console if as_json else console
    settings = load_settings()
    with fail_cleanly(StackError, ProducerError):
        for service in all_services(settings):
            with out.status(f"starting {service.name} …"):
                service.start()
        out.print("[green]✓[/] stack healthy")
        # Event time runs `speed` times faster, ending at about now, from no earlier than the events already in
        # Kafka (a second demo soon after the first runs slower: fyp/commands/demo_training.py demo_clock).
        start_ms, speed = demo_clock(now_ms=wall_clock_ms(), duration_s=duration, speed=speed,
                                     newest_ms=newest_event_time_ms(settings, ENGAGEMENT.name))
        clock = accelerated_clock(start_ms=start_ms, speed=speed)
        generator = TrafficGenerator(config, seed, clock=clock)
        _pause_embedding_job(settings, out=out)
        job_ids = _ensure_jobs(settings, checkpoint_interval, out=out)
        training_ids = _ensure_jobs(settings, checkpoint_interval, TRAINING_JOBS, out=out) if training else {}
        if upload:  # early: its Python worker loads torch and the sentence model while the traffic runs
            from fyp.commands.demo_index import ensure_embedding_job

            _ensure_jobs(settings, checkpoint_interval, UPLOAD_JOBS, out=out)
            with out.status("submitting video_embeddings …"):
                ensure_embedding_job(settings)
        baseline = {job: job_source_records(settings, jid) for job, jid in job_ids.items()}
        reads = LoggedReads(settings, clock, seed=seed).start() if training else None
        with out.status(f"producing {rate:,.0f} events/s for {duration:.0f} s ({speed:g}x event time) …"):
            try:
                report = produce(generator, ProducePlan(rate=rate, duration=timedelta(seconds=duration)),
                                 client_config=settings.kafka_client_config())
            finally:
                served = reads.stop() if reads is not None else None
        out.print(f"[green]✓[/] produced {report.produced:,} events ({report.rate:,.0f}/s)"
                  + (f"; {served['logged']:,} ranking reads logged" if served else ""))

        def consumed(job: str) -> int:
            return job_source_records(settings, job_ids[job]) - baseline[job]

        with out.status("waiting for the jobs to catch up …"):
            wait_until(lambda: all(consumed(j) >= report.produced for j in job_ids), timeout_s=120, interval_s=1)
            committed_before = iceberg_row_count(settings)
            wait_until(lambda: iceberg_row_count(settings) > committed_before, timeout_s=interval_s * 3 + 10)
            time.sleep(1)
    consumed_now = {job: consumed(job) for job in job_ids}
    summary = {
        "produced": report.produced,
        "consumed": consumed_now,
        "behind": {job: max(report.produced - n, 0) for job, n in consumed_now.items()},
        "features": feature_key_counts(settings, {
            **{fs.qualified_name: fs.key_prefix for fs in ALL_FEATURE_SETS},
            **{f"{spec.qualified_name} (sorted sets)": spec.key_prefix for spec in SERVING_SETS}}),
        "follow_graph": feature_key_counts(settings, {"following sets": FOLLOWING_KEY_PREFIX,
                                                      "follower counts": FOLLOWERS_KEY_PREFIX}),
        "iceberg_rows": iceberg_row_count(settings),
        "dead_letters": dead_letter_count(settings),
    }
    if training:
        with fail_cleanly(StackError, RuntimeError), out.status(
                "training data: served rows joined with their labels; the point-in-time table; the skew check …"):
            # The bound is the largest lag measured in the run, on any partition (or the configured bound at the
            # clock's speed, where larger). The probe sees each partition's leading deduplication lane only, so a
            # partition's own largest lag is no bound on its trailing lane (issue #17: a hot video lacked an
            # event 121 s old on a partition whose largest measured lag was 104-119 s); it is printed, not used.
            # Each serve is searched first within the lags measured at its own read (the job trails far more while
            # it starts than once it keeps up), then within the bound (fyp.training.skew.compare).
            configured = int(IN_FLIGHT_BOUND_MS * speed)
            bound = max(served["max_lag_ms"], configured, *served["max_lag_ms_by_partition"].values())
            by_request = reads.request_bounds(configured)
            bounds_file = settings.data_dir / "demo-request-bounds.json"
            bounds_file.write_text(json.dumps(by_request))
            summary["training"] = {"reads": served, "event_time_speed": speed, "request_bounds_file": str(bounds_file),
                                   **training_summary(settings, in_flight_bound_ms=bound, request_bounds_ms=by_request)}
        # Slots: features 2, history 2, follow_graph 1, served_training 1, orchestration 2, video_embeddings 2 make
        # 10, and the local TaskManager has 8: served_training has done its part, and its slot goes to
        # video_embeddings (which waits in RESTARTING until a slot frees).
        for job_id in training_ids.values():
            cancel_job(settings, job_id)
            out.print("[green]✓[/] served_training stopped (its slot goes to video_embeddings)")
    if upload:  # the follow graph has counted the traffic's follows (above); its slot goes to video_embeddings too
        from fyp.stack.rescale import stop_with_savepoint

        # With a savepoint: the job's state is the only full copy of the graph (docs/REDIS_LAYOUT.md, "The follow
        # graph"), so it must resume from it, never start empty.
        with fail_cleanly(StackError), out.status("stopping follow_graph with a savepoint …"):
            savepoint = stop_with_savepoint(settings, job_ids[FOLLOW_GRAPH_JOB.job])
            record_savepoint(settings, FOLLOW_GRAPH_JOB.job, savepoint)  # the next demo resumes from it
        out.print(f"[green]✓[/] follow_graph stopped (its slot goes to video_embeddings); the next `fyp demo` resumes "
                  f"it from its savepoint, or: fyp submit follow_graph --from-savepoint {savepoint}")
    top = FeatureClient.from_settings(settings).get("video", "v0")
    summary["example_video_v0"] = {k: round(v, 3) for k, v in (top.values if top else {}).items()
                                   if k.startswith(("plays_", "completion_rate_", "like_rate_"))}
    if upload:
        from fyp.bench.upload import upload_and_play

        with fail_cleanly(StackError, RuntimeError), out.status(
                "uploading a generated clip: upload API -> S3 -> orchestration job -> transcoder -> moderator …"):
            summary["upload"] = upload_and_play(settings)
    from fyp.commands.demo_feed import DEMO_USER, feed_demo
    from fyp.commands.demo_index import index_demo, index_service

    with fail_cleanly(StackError, RuntimeError), index_service(settings) as index_url:
        if upload and summary["upload"].get("status") == "ready":
            with out.status("index: embedding job -> index service; a second upload; `fyp similar`; a takedown …"):
                summary["index"] = index_demo(settings, summary["upload"]["video_id"], index_url)
        with out.status(f"feed: {DEMO_USER}'s feed, a Watch of its top video, the feed again until it is gone …"):
            summary["feed"] = feed_demo(settings, index_url, user_id=DEMO_USER, seed=seed, users=users,
                                        videos=videos)
    if upload:
        with out.status("waiting for the upload's rows in history.videos and history.upload_events …"):
            summary["lake_uploads"] = _uploads_in_lake(settings, summary["upload"]["video_id"], interval_s)
    if as_json:
        print_json(summary)
        if upload and not summary["upload"].get("playable"):
            raise typer.Exit(1)
        _check_index(summary)
        _check_feed(summary)
        return
    table = Table("what", "count", title="fyp demo")
    table.add_row("events produced", f"{summary['produced']:,}")
    for job, n in summary["consumed"].items():
        behind = summary["behind"][job]
        table.add_row(f"events consumed by {job}", f"{n:,}" + (f" ({behind:,} still to process)" if behind else ""))
    for name, n in {**summary["features"], **summary["follow_graph"]}.items():
        table.add_row(f"Redis keys {name}", f"{n:,}")
    table.add_row("Iceberg rows history.engagement_events", f"{summary['iceberg_rows']:,}")
    table.add_row("dead letters", f"{summary['dead_letters']:,}")
    console.print(table)
    console.print("video v0 now:", summary["example_video_v0"])
    if "training" in summary:
        t = summary["training"]
        skew = t["skew"]
        rates = ", ".join(f"{label} {rate:.1%}" for label, rate in t["label_rates"].items())
        searched = (f"; searched per partition and deduplication subtask, {skew['dedup_subtasks']} subtasks"
                    if skew.get("dedup_subtasks") else "; searched per partition")
        console.print(f"training: {t['table']} {t['rows']:,} rows ({rates}); {t['served_table']} "
                      f"{t['served_rows']:,} rows from {t['reads']['logged']:,} logged reads; skew check: "
                      f"{skew['mismatches']:,} of {skew['rows']:,} served rows differ, {skew['unexplained']:,} "
                      f"unexplained ({skew.get('unexplained_at_search_limit', 0):,} where a search stopped at its "
                      f"time limit), by cause {skew['by_cause']} (in-flight bound: "
                      f"{skew['in_flight_bound_ms'] / 1000:.0f} s of event time, the features job's largest lag "
                      "behind the reads, measured; largest per engagement partition: "
                      + (", ".join(f"{p} {b / 1000:.0f} s" for p, b in t["reads"]["max_lag_ms_by_partition"].items())
                         or "none")
                      + searched + f"; {skew.get('rows_with_own_bounds', 0):,} rows searched within the lags at "
                      f"their own read first ({t['request_bounds_file']}), {skew.get('beyond_own_bounds', 0):,} "
                      "values explained only beyond them)")
        if lags := t["reads"].get("lag_ms_by_tenth"):
            console.print("features job's lag behind the reads, largest per tenth of the run (event time): "
                          + ", ".join(f"{lag / 1000:.0f} s" for lag in lags))
    if upload:
        up = summary["upload"]
        console.print(f"upload {up['clip']} -> video {up['video_id']}: {up['status']} "
                      f"({up.get('verdict', up.get('status_reason', ''))}) in {up['seconds']} s; "
                      f"renditions {', '.join(up.get('renditions', []))}; "
                      f"HLS + DASH play back (ffprobe): {'yes' if up.get('playable') else 'NO'}")
    if "lake_uploads" in summary:
        lake = summary["lake_uploads"]
        console.print(f"Iceberg: history.videos by status {lake['videos_by_status']}; history.upload_events "
                      f"{lake['upload_events']:,} rows ({lake['video_events']} of video {lake['video_id']})")
    if "index" in summary:
        ix = summary["index"]
        console.print(f"index: {ix['first']} and {ix['second']} searchable (approval -> searchable "
                      f"{ix.get('approval_to_searchable_s')} s); in each other's `fyp similar`: "
                      f"{'yes' if ix.get('first_in_similar_of_second') else 'NO'}; takedown of {ix['first']} -> "
                      f"gone from the index in {ix.get('takedown_to_removed_s')} s, from `fyp similar "
                      f"{ix['second']}`: {'NO' if ix.get('first_in_similar_after_takedown', True) else 'yes'}")
        if "takedown" in ix:
            down = ix["takedown"]
            console.print(f"takedown {down['notice_id']} of {ix['first']}: {down['objects_moved']} objects moved to "
                          f"quarantine; of its {down['published_keys']} published keys, {down['still_readable']} "
                          f"still readable (e.g. {down['example_key']})")
        if "cold_start" in ix:
            cold, market = ix["cold_start"], ix["cold_start"]["market"]
            console.print(f"cold start: new user {cold['user']} in {market['market']} got {cold['results']} "
                          f"candidates, trending {market['market_videos']} from the market's set and "
                          f"{market['global_videos']} from the global one (first: {', '.join(cold['trending'])})")
    _print_feed(summary["feed"])
    if upload and not summary["upload"].get("playable"):
        raise typer.Exit(1)  # the demo's upload must reach ready and play back
    _check_index(summary)
    _check_feed(summary)


def _uploads_in_lake(settings, video_id: str, interval_s: float) -> dict:
    """Status counts of `history.videos` and the size of `history.upload_events`, once the video's rows landed."""
    from connectors.iceberg_tables import catalog
    from fyp.lake.sql import run_query

    lake = catalog(settings)

    def rows(sql: str) -> list[dict]:
        return run_query(lake, sql).rows.to_pylist()

    def video_events() -> int:
        landed = rows(f"SELECT count(*) AS n FROM history.videos WHERE video_id = '{video_id}'")[0]["n"]
        return landed and rows(f"SELECT count(*) AS n FROM history.upload_events WHERE video_id = '{video_id}'")[0]["n"]

    wait_until(video_events, timeout_s=interval_s * 3 + 10, interval_s=1)
    return {
        "video_id": video_id, "video_events": video_events(),
        "videos_by_status": {r["status"]: r["n"] for r in rows(
            "SELECT status, count(*) AS n FROM history.videos GROUP BY 1 ORDER BY 1")},
        "upload_events": rows("SELECT count(*) AS n FROM history.upload_events")[0]["n"],
    }


def _check_index(summary: dict) -> None:
    """Exit 1 unless the approved upload was found by `fyp similar`, and after its takedown was gone from it and
    none of its published media could be read."""
    index = summary.get("index")
    if index is not None and not (index.get("first_in_similar_of_second")
                                  and index.get("first_in_similar_after_takedown") is False
                                  and index.get("takedown", {}).get("still_readable", 1) == 0):
        raise typer.Exit(1)


def _print_feed(feed: dict) -> None:
    model = feed["model"]
    served = f"ranker {model['version']}" if not model["fallback"] else \
        f"fallback: no ranker, coarse order ({model.get('reason', 'no model')})"
    console.print(f"feed of {feed['user']}: arms {', '.join(feed['arms']) or 'none'}; {served}")
    for name in ("before", "after"):
        console.print(f"  {name:<6} " + "  ".join(f"{i['video_id']} {i['score']:.4f}" for i in feed[name]))
    took = f"gone from the feed {feed['watch_to_gone_s']} s after the Watch" if feed["left_feed"] else "STILL THERE"
    console.print(f"  watched {feed['watched']} (a Watch event to Kafka): {took}")


def _check_feed(summary: dict) -> None:
    """Exit 1 unless the watched video left the user's feed within the feed step's timeout."""
    if not summary["feed"].get("left_feed"):
        err_console.print(f"[bold red]error:[/] {summary['feed'].get('watched')} was still in the feed of "
                          f"{summary['feed'].get('user')} after the timeout: the recent-seen filter did not see the "
                          "Watch (is the features job running?)")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(demo)
