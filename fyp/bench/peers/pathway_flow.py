"""The Pathway peer: video_engagement features as a Pathway program, written to Redis as the job does.

Pathway (a Rust dataflow engine, differential dataflow, driven from Python) reads the topic with
`pw.io.kafka.read` in static mode: every record the topic holds when the run starts, from the earliest offset,
then the run ends. A Python UDF decodes each record (udfs.envelope.to_engagement_row) and drops bad ones, and
records of no video, counting them. `groupby(video).reduce` with a stateful reducer (`pw.reducers.stateful_many`)
folds each commit's rows of a video into the video's state, in (partition, offset) order, with the feature
set's fold (`key`, `new_state`, `update`, `pack`: featurespec.reference.evaluate.FeatureEvaluator, or any
object with those four methods), and gives the video's absolute packed value. `pw.io.subscribe` collects the
changed videos of each Pathway commit (on_change) and writes them to Redis in one pipeline when the commit's
time closes (on_time_end), with the job's stale-write script (fyp.bench.peers.redis_writer).

Pathway's own windows and reducers do not fit. `windowby` with `pw.temporal.sliding(hop=2 h, duration=24 h)`
assigns each row to 12 overlapping window instances and emits one row per instance, where the job keeps one
ring of 12 tiles per window and column and writes one absolute value per video as of its newest event; the
1 min, 10 min and 1 h windows would each be another windowby and a join. Nor is there a decayed-sum reducer. So
the fold is the reference's, inside one reducer.

Not like the job: state lives in this process only (no persistence configured), no offsets are committed to the
consumer group, and the engine runs one worker thread (Pathway's default while PATHWAY_THREADS is unset; the
Python UDF and reducer hold the GIL anyway). Run it as a module in the Pathway environment, `.venv-pathway`
(fyp.bench.peers.pathway_process does, for the runner):

    .venv-pathway/bin/python -m fyp.bench.peers.pathway_flow --events 200000 --group-id g --topic T --json
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

import pathway as pw

from features.engagement.video_engagement import v1
from featurespec import FeatureSet
from fyp.bench.peers.fast_fold import FastFold
from fyp.bench.peers.pathway_steps import ChangedValues, Folder, Progress, decoder, fold_rows
from fyp.bench.peers.redis_writer import PackedFeatureWriter, redis_client
from fyp.bench.peers.result import PeerRun
from fyp.config import Settings, load_settings
from schemas.topics import ENGAGEMENT

__all__ = ["build_flow", "kafka_source", "main", "run_pathway"]


def kafka_source(settings: Settings, *, topic: str, group_id: str) -> pw.Table:
    """The topic as a table of `data` (the record's value), `partition` and `offset`, read once, from the start.

    No offsets are committed (librdkafka would commit what it handed to Pathway by default): the fold's state
    lives in this process only, so offsets committed without it would make a rerun skip records."""
    rdkafka = {**settings.kafka_client_config(), "group.id": group_id, "auto.offset.reset": "earliest",
               "enable.auto.commit": "false"}
    raw = pw.io.kafka.read(rdkafka, topic, format="raw", mode="static", with_metadata=True, name="engagement")
    return raw.select(data=pw.this.data, partition=pw.this._metadata["partition"].as_int(),
                      offset=pw.this._metadata["offset"].as_int())


def build_flow(source: pw.Table, folder: Folder, progress: Progress, sink: ChangedValues) -> None:
    """Wire decode -> group by video -> fold -> Redis onto `source` (columns data, partition, offset)."""
    decode = decoder(folder, progress)

    # Transforms: decode once per record (a non-deterministic UDF: Pathway memoizes it, so it runs once a row) into
    # (video, row), drop what decode refused, fold each video's rows.
    @pw.udf
    def decoded(data: bytes) -> tuple[str, pw.PyObjectWrapper] | None:
        record = decode(data)
        return None if record is None else (record.video, pw.wrap_py_object(record.row))

    @pw.reducers.stateful_many
    def fold(state: pw.PyObjectWrapper | None, batch: list[tuple[list, int]]) -> pw.PyObjectWrapper:
        if any(count != 1 for _, count in batch):
            raise ValueError("the engagement stream is insert-only; a retraction reached the fold")
        # A commit's rows of one group come in no set order: fold them in (partition, offset) order, as a consumer
        # of the topic would, so that a value does not hang on the engine's layout of the batch.
        batch.sort(key=lambda entry: (entry[0][1], entry[0][2]))
        folded = fold_rows(folder, None if state is None else state.value, (values[0].value for values, _ in batch))
        progress.folded += folded.folded
        return pw.wrap_py_object(folded)

    records = source.select(pw.this.partition, pw.this.offset, decoded=decoded(pw.this.data))
    records = records.filter(pw.this.decoded.is_not_none())
    keyed = records.select(pw.this.partition, pw.this.offset, video=pw.unwrap(pw.this.decoded)[0],
                           row=pw.unwrap(pw.this.decoded)[1])
    videos = keyed.groupby(pw.this.video).reduce(
        pw.this.video, folded=fold(pw.this.row, pw.this.partition, pw.this.offset))

    # Sink: every video a commit changed, one Redis pipeline per commit.
    pw.io.subscribe(videos, on_change=sink.on_change, on_time_end=sink.on_time_end, name="redis")


def run_pathway(
    settings: Settings, *, events: int, group_id: str, topic: str = ENGAGEMENT.name, feature_set: FeatureSet = v1,
) -> PeerRun:
    """Run the flow over what `topic` holds now, as consumer group `group_id`, folding its first `events`
    records; raises RuntimeError if the topic held fewer."""
    # The naive peer's fold (fyp/bench/peers/fast_fold.py): the peers differ in their framework, not their Python.
    folder = FastFold.of(feature_set)
    progress = Progress(events)
    sink = ChangedValues(PackedFeatureWriter(redis_client(settings), feature_set), progress)
    build_flow(kafka_source(settings, topic=topic, group_id=group_id), folder, progress, sink)
    progress.start()  # the run's clock includes connecting to Kafka (Progress.start says why)
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    if not progress.done:
        raise RuntimeError(f"pathway peer: {topic} held {progress.admitted} records, fewer than {events}")
    return progress.result(redis_writes=sink.writer.written, entities=len(sink.videos))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--group-id", required=True)
    parser.add_argument("--topic", default=ENGAGEMENT.name)
    parser.add_argument("--settings-stdin", action="store_true",
                        help="read Settings as JSON from stdin (fyp.bench.peers.pathway_process), else the env's")
    parser.add_argument("--json", action="store_true", help="print the PeerRun as one JSON line")
    args = parser.parse_args(argv)
    if args.settings_stdin:
        from fyp.bench.peers.pathway_process import settings_from_json

        settings = settings_from_json(sys.stdin.read())
    else:
        settings = load_settings()
    run = run_pathway(settings, events=args.events, group_id=args.group_id, topic=args.topic)
    print(json.dumps(asdict(run)) if args.json else run)


if __name__ == "__main__":
    main()
