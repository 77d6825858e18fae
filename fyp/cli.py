"""The `fyp` command line: one typer app; each command group lives in `fyp/commands/`.

The groups that several command modules add to (`bench`, `serve`, `worker`) are declared here, once, and
handed to each module's `register`, so no module depends on another having created them first.
"""

from __future__ import annotations

import sys

import typer

from fyp.commands import (
    bench,
    capacity,
    demo,
    dlq,
    experiment,
    features,
    feed,
    index,
    jobs,
    lake,
    music,
    produce,
    serving,
    stack,
    takedown,
    train,
    training,
    uploads,
    verify,
)
from fyp.commands.output import print_error
from fyp.commands.unreachable import is_unreachable

__all__ = ["app", "main"]

app = typer.Typer(
    name="fyp",
    help="For-You pipeline: run the local stack, submit Flink jobs, produce traffic, read features.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

bench_group = typer.Typer(
    help="Benchmarks: freshness, throughput, serving, upload, index, lake, chaos, limits, music, two-tower.",
    no_args_is_help=True)
serve_group = typer.Typer(help="Run a service in the foreground.", no_args_is_help=True)
worker_group = typer.Typer(help="Run a pipeline worker in the foreground.", no_args_is_help=True)
app.add_typer(bench_group, name="bench")
app.add_typer(serve_group, name="serve")
app.add_typer(worker_group, name="worker")

stack.register(app)
produce.register(app)
jobs.register(app)
demo.register(app)
features.register(app)
bench.register(bench_group)
uploads.register(app, serve=serve_group, worker=worker_group)
takedown.register(app)
music.register(app, bench=bench_group)
lake.register(app, worker=worker_group)
verify.register(app)
dlq.register(app)
experiment.register(app)
train.register(app, bench=bench_group)
training.register(app)
index.register(app, serve=serve_group, worker=worker_group, bench=bench_group)
serving.register(app, serve=serve_group)
feed.register(app, serve=serve_group, bench=bench_group)
capacity.register(app)


def main() -> None:
    try:
        app()
    except Exception as exc:
        # A command run with the stack down: one line naming the service, not a client library's traceback.
        if not is_unreachable(exc):
            raise
        print_error(exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
