"""The `fyp` command line: one typer app; each command group lives in `fyp/commands/`."""

from __future__ import annotations

import typer

from fyp.commands import bench, demo, features, index, jobs, lake, produce, stack, train, uploads, verify

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
train.register(app)
index.register(app)  # after bench and uploads: it adds to their `bench` and `serve` groups


def main() -> None:
    app()


if __name__ == "__main__":
    main()
