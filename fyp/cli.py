"""The `fyp` command line: one typer app; each command group lives in `fyp/commands/`."""

from __future__ import annotations

import sys

import typer

from fyp.commands import bench, demo, dlq, features, index, jobs, lake, produce, stack, train, uploads, verify
from fyp.commands.output import print_error
from fyp.commands.unreachable import is_unreachable

__all__ = ["app", "main"]

app = typer.Typer(
    name="fyp",
    help="For-You pipeline: run the local stack, submit Flink jobs, produce traffic, read features.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

stack.register(app)
produce.register(app)
jobs.register(app)
demo.register(app)
features.register(app)
bench.register(app)
uploads.register(app)
lake.register(app)
verify.register(app)
dlq.register(app)
train.register(app)
index.register(app)  # after bench and uploads: it adds to their `bench` and `serve` groups


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
