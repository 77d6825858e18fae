"""`fyp submit`, `fyp jobs`, `fyp cancel`, `fyp rescale`: Flink jobs on the local cluster."""

from __future__ import annotations

import httpx
import typer
from rich.table import Table

from fyp.commands.output import console, fail_cleanly, print_json
from fyp.config import load_settings
from fyp.stack.process import StackError
from fyp.stack.rescale import rescale_job
from fyp.stack.submit import (
    alive_copies,
    available_jobs,
    cancel_job,
    job_path,
    list_jobs,
    parse_properties,
    submit_resuming,
)

__all__ = ["register"]


def submit(
    job: str = typer.Argument(..., help=f"A job in jobs/: {', '.join(available_jobs())}"),
    job_args: list[str] = typer.Argument(None, help="Arguments for the job itself, after `--`."),
    parallelism: int = typer.Option(None, "--parallelism", "-p", min=1, help="Job parallelism (default: cluster's)."),
    checkpoint_interval: str = typer.Option(
        None, "--checkpoint-interval", help="Override execution.checkpointing.interval, e.g. 10s."),
    conf: list[str] = typer.Option([], "--conf", "-D", help="Flink configuration key=value (repeatable)."),
    from_savepoint: str = typer.Option(
        None, "--from-savepoint", "-s", help="Restore state from this savepoint or retained checkpoint path."),
    fresh: bool = typer.Option(
        False, "--fresh", help="Start with empty state even where the job has state to resume from (by default it "
        "resumes from the newest savepoint or retained checkpoint of its last submission, fyp/stack/resume.py)."),
    allow_duplicate: bool = typer.Option(
        False, "--allow-duplicate", help="Submit even when the job is already on the cluster (by default that is "
        "refused: a second copy writes the same outputs twice)."),
    skip_if_running: bool = typer.Option(
        False, "--skip-if-running", help="When the job is already on the cluster, print its id and exit 0 "
        "instead of refusing (for scripts that submit the same jobs on every start)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Submit a PyFlink job with `flink run -py` (detached); prints its Flink job id. It resumes from the state of
    the job last submitted for it, where that state is still on disk (a stack restart loses running jobs, not their
    checkpoints), unless --fresh or --from-savepoint. A job already on the cluster is refused."""
    try:
        properties = parse_properties(conf)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--conf") from None
    if fresh and from_savepoint:
        raise typer.BadParameter("--fresh starts without state; it cannot be given with --from-savepoint",
                                 param_hint="--fresh")
    if checkpoint_interval:
        properties["execution.checkpointing.interval"] = checkpoint_interval
    job = job.removesuffix(".py")
    if skip_if_running and not allow_duplicate:
        with fail_cleanly(StackError):
            alive = alive_copies(load_settings(), job_path(job).stem)
        if alive:
            if as_json:
                print_json({"job": job, "job_id": alive[0].job_id, "resumed_from": None, "already_running": True})
            else:
                console.print(f"[green]✓[/] {job} is already running: {alive[0].job_id}")
            return
    with fail_cleanly(StackError), console.status(f"submitting {job} …"):
        job_id, resume = submit_resuming(load_settings(), job, fresh=fresh, from_savepoint=from_savepoint,
                                         allow_duplicate=allow_duplicate, parallelism=parallelism,
                                         properties=properties, job_args=job_args or [])
    start = from_savepoint or (resume and resume.path)
    if as_json:
        print_json({"job": job, "job_id": job_id, "resumed_from": start, "already_running": False})
    else:
        console.print(f"[green]✓[/] submitted {job}: {job_id}"
                      + (f" (resumed from its {resume.describe()})" if resume else "")
                      + (f" (from {from_savepoint})" if from_savepoint else ""))


def jobs(as_json: bool = typer.Option(False, "--json", help="Print the result as JSON.")) -> None:
    """List the cluster's jobs and their states."""
    with fail_cleanly(httpx.HTTPError):
        found = list_jobs(load_settings())
    if as_json:
        print_json({"jobs": found})
        return
    table = Table("job id", "name", "state")
    for job in found:
        table.add_row(job.job_id, job.name, job.state)
    console.print(table)


def cancel(
    job_id: str = typer.Argument(..., help="Flink job id (see `fyp jobs`)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Cancel a running job."""
    with fail_cleanly(StackError, httpx.HTTPError):
        cancel_job(load_settings(), job_id)
    if as_json:
        print_json({"job_id": job_id, "cancelled": True})
    else:
        console.print(f"[green]✓[/] cancelled {job_id}")


def rescale(
    job: str = typer.Argument(..., help=f"A running job of jobs/: {', '.join(available_jobs())}"),
    parallelism: int = typer.Option(..., "--parallelism", "-p", min=1, help="The job's new parallelism."),
    job_args: list[str] = typer.Argument(None, help="Arguments for the job itself, after `--`."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Stop a running job with a savepoint and resubmit it from there at a new parallelism."""
    with fail_cleanly(StackError, httpx.HTTPError), console.status(f"rescaling {job} to {parallelism} …"):
        done = rescale_job(load_settings(), job, parallelism, job_args=job_args or [])
    if as_json:
        print_json(done)
    else:
        console.print(f"[green]✓[/] {done.job}: {done.old_job_id} -> {done.new_job_id} at parallelism "
                      f"{done.parallelism} ({done.seconds:.1f} s)\n  savepoint {done.savepoint}")


def register(app: typer.Typer) -> None:
    app.command()(submit)
    app.command()(jobs)
    app.command()(cancel)
    app.command()(rescale)
