"""`fyp dlq inspect` and `fyp dlq replay`: the dead-letter topics for operators (fyp.deadletters).

`--topic` picks the topic: fyp.engagement.dlq.v1 (the default: the features job's) or fyp.uploads.dlq.v1 (the
transcoder's and the moderator's).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import typer
from rich.table import Table

from fyp.commands.output import console, err_console, fail_cleanly, print_json
from fyp.config import load_settings
from schemas.topics import ENGAGEMENT_DLQ

__all__ = ["dlq_app", "register"]

dlq_app = typer.Typer(help="The dead-letter topics: counts by reason, samples, replay after a fix.",
                      no_args_is_help=True)

_REASON_HELP = "Only this reason, or a reason family such as `too_long` (repeatable)."
_SINCE_HELP = "Only dead letters from after this: a duration back from now (30m, 2h) or an ISO time."
_UNTIL_HELP = "Only dead letters from before this: a duration back from now or an ISO time."
_TOPIC_HELP = "The dead-letter topic: fyp.engagement.dlq.v1 (features job) or fyp.uploads.dlq.v1 (upload workers)."


def _time_ms(text: str | None, now_ms: int) -> int | None:
    """`30m` (that long before now) or `2026-12-06T05:00:00+00:00` (naive = UTC) as epoch ms."""
    if text is None:
        return None
    from fyp.lake.maintenance import parse_duration

    try:
        return now_ms - int(parse_duration(text).total_seconds() * 1000)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration (30m, 2h) nor an ISO time (2026-12-06T05:00:00)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _letters(reason: list[str] | None, since: str | None, until: str | None, quiet: bool,
             topic: str = ENGAGEMENT_DLQ.name):
    """The selected dead letters of `topic`, read with a progress bar on stderr."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from fyp.deadletters import DLQ_TOPICS, read_dead_letters, select

    if topic not in DLQ_TOPICS:
        raise ValueError(f"{topic!r} is not a dead-letter topic; use one of {', '.join(DLQ_TOPICS)}")
    now_ms = int(time.time() * 1000)
    since_ms, until_ms = _time_ms(since, now_ms), _time_ms(until, now_ms)
    bar = Progress(TextColumn("reading dead letters"), BarColumn(), MofNCompleteColumn(), console=err_console,
                   transient=True, disable=quiet)
    with bar:
        task = bar.add_task("read", total=None)
        letters = list(select(
            read_dead_letters(load_settings(), topic=topic,
                              progress=lambda done, total: bar.update(task, completed=done, total=total)),
            reasons=tuple(reason or ()), since_ms=since_ms, until_ms=until_ms))
    return letters


def _expected_errors():
    from confluent_kafka import KafkaException

    return (ValueError, RuntimeError, KafkaException, OSError)


@dlq_app.command()
def inspect(
    reason: list[str] = typer.Option(None, "--reason", help=_REASON_HELP),
    since: str = typer.Option(None, "--since", help=_SINCE_HELP),
    until: str = typer.Option(None, "--until", help=_UNTIL_HELP),
    samples: int = typer.Option(3, "--samples", min=0, help="Samples shown per reason."),
    topic: str = typer.Option(ENGAGEMENT_DLQ.name, "--topic", help=_TOPIC_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print counts and samples as JSON."),
) -> None:
    """Count dead letters by reason and show a few of each (key, original partition and offset, consumer group)."""
    from fyp.deadletters import summarize

    with fail_cleanly(*_expected_errors()):
        summary = summarize(_letters(reason, since, until, quiet=as_json, topic=topic), samples_per_reason=samples)
    if as_json:
        print_json(summary)
        return
    table = Table("reason", "dead letters", "samples (key @ topic/partition/offset [consumer group])")
    for name, count in summary.by_reason.items():
        shown = "; ".join(f"{s['key']} @ {s['topic']}/{s['partition']}/{s['offset']}"
                          + (f" [{s['consumer']}]" if s.get("consumer") else "")
                          for s in summary.samples.get(name, []))
        table.add_row(name, f"{count:,}", shown)
    console.print(table)
    console.print(f"{summary.total:,} dead letters on {topic}")


@dlq_app.command()
def replay(
    reason: list[str] = typer.Option(None, "--reason", help=_REASON_HELP),
    since: str = typer.Option(None, "--since", help=_SINCE_HELP),
    until: str = typer.Option(None, "--until", help=_UNTIL_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would be replayed; send nothing."),
    topic: str = typer.Option(ENGAGEMENT_DLQ.name, "--topic", help=_TOPIC_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
) -> None:
    """Send the selected dead letters back to their original topic, with their original keys and headers.

    Use after a fix (a raised limit, a new schema registered): the job then reads them as new records. Records
    still bad become dead letters again. Replay a selection once: the job deduplicates event ids for minutes, not
    forever. A replayed record carries the header `fyp-dlq-offset`. An upload record parked by both workers is
    sent once.
    """
    from fyp.deadletters import distinct_originals, summarize
    from fyp.deadletters import replay as send

    with fail_cleanly(*_expected_errors()):
        letters = _letters(reason, since, until, quiet=as_json, topic=topic)
        if not reason and not since and not until and not dry_run:
            raise ValueError("give --reason, --since or --until (or --dry-run): replaying everything is rarely meant")
        sent = 0 if dry_run else send(load_settings(), letters)
    originals = distinct_originals(letters)
    report = {"topic": topic, "selected": len(letters), "originals": originals, "replayed": sent, "dry_run": dry_run,
              "by_reason": summarize(letters, samples_per_reason=0).by_reason}
    if as_json:
        print_json(report)
    else:
        verb = "would replay" if dry_run else "replayed"
        console.print(f"{verb} {originals if dry_run else sent:,} originals of {len(letters):,} selected dead "
                      "letters: " + ", ".join(f"{k} {v:,}" for k, v in report["by_reason"].items()), highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(dlq_app, name="dlq")
