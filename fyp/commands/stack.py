"""`fyp up`, `fyp down`, `fyp status`: the local stack without Docker."""

from __future__ import annotations

import os
import time

import typer
from rich.table import Table

from fyp.commands.output import console, fail_cleanly, print_json
from fyp.config import load_settings, write_profile
from fyp.stack.process import StackError
from fyp.stack.services import SERVICE_NAMES, select

__all__ = ["register"]

SERVICES_HELP = (f"Services to act on (default: all): {', '.join(SERVICE_NAMES)}; a name also picks its numbered "
                 "instances of the cluster profile (redis: redis-0 .. redis-5), and one of those alone")


def up(
    services: list[str] = typer.Argument(None, help=SERVICES_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    cluster: bool = typer.Option(
        False, "--cluster", help="Switch this FYP_HOME to the cluster profile (written to $FYP_HOME/profile): "
        "Redis Cluster (3 primaries + 3 replicas), Kafka brokers, TaskManagers. Without it, `fyp up` keeps the "
        "profile the home already has, so a cluster home stays a cluster."),
) -> None:
    """Start the local stack (idempotent) and wait until every service is healthy."""
    if cluster:
        with fail_cleanly(ValueError):
            if os.environ.get("FYP_PROFILE", "cluster") != "cluster":
                raise ValueError(f"--cluster contradicts FYP_PROFILE={os.environ['FYP_PROFILE']}: unset one of them")
            write_profile(load_settings().home, "cluster")
        load_settings.cache_clear()  # settings follow the profile just written
    settings = load_settings()
    timings: dict[str, float] = {}
    with fail_cleanly(StackError, ValueError):
        for service in select(settings, services):
            started = time.monotonic()
            if not as_json:
                with console.status(f"starting {service.name} …"):
                    service.start()
                console.print(f"[green]✓[/] {service.name:<18} {service.address()}  "
                              f"({time.monotonic() - started:.1f} s)")
            else:
                service.start()
            timings[service.name] = round(time.monotonic() - started, 2)
    if as_json:
        print_json({"started": timings, "home": str(settings.home), "seconds": round(sum(timings.values()), 2)})
    else:
        console.print(f"stack up in {sum(timings.values()):.1f} s; state and logs in {settings.home}")


def down(
    services: list[str] = typer.Argument(None, help=SERVICES_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Stop the local stack (idempotent); data stays in $FYP_HOME."""
    settings = load_settings()
    stopped = []
    with fail_cleanly(StackError, ValueError):
        for service in reversed(select(settings, services)):
            was_running = service.pid() is not None
            service.stop()
            stopped.append({"name": service.name, "was_running": was_running})
            if not as_json:
                console.print(f"[dim]■[/] {service.name:<18} {'stopped' if was_running else 'was not running'}")
    if as_json:
        print_json({"stopped": stopped})


def status(
    services: list[str] = typer.Argument(None, help=SERVICES_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Show each service with its address and health; exit 1 if any is unhealthy."""
    settings = load_settings()
    with fail_cleanly(ValueError):
        healths = [service.health() for service in select(settings, services)]
    if as_json:
        print_json({"home": str(settings.home), "healthy": all(h.healthy for h in healths),
                    "services": healths})
    else:
        table = Table(title=f"fyp stack ({settings.home})")
        for column in ("service", "address", "pid", "health", "detail"):
            table.add_column(column)
        for h in healths:
            mark = "[green]healthy[/]" if h.healthy else ("[red]unhealthy[/]" if h.running else "[dim]stopped[/]")
            table.add_row(h.name, h.address, str(h.pid or "-"), mark, h.detail)
        console.print(table)
    if not all(h.healthy for h in healths):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(down)
    app.command()(status)
