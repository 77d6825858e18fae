"""`fyp capacity`: the capacity model (fyp/capacity.py) for the design's load, or for inputs you change."""

from __future__ import annotations

import dataclasses

import typer
from rich.table import Table

from fyp.capacity import CapacityInputs, override, plan
from fyp.commands.output import console, fail_cleanly, print_json

__all__ = ["register"]


def capacity(
    assignments: list[str] = typer.Option([], "--set", help="Change an input: name=number (repeatable), e.g. "
                                          "mau=2e9 or redis_bytes_per_entity.video=500."),
    as_json: bool = typer.Option(False, "--json", help="Print the inputs and every computed figure as JSON."),
) -> None:
    """Cores, Redis shards, Kafka brokers and partitions, transcoders, index shards for a load (docs/CAPACITY.md)."""
    with fail_cleanly(ValueError):
        result = plan(override(CapacityInputs(), assignments))
    if as_json:
        print_json(dataclasses.asdict(result))
        return
    table = Table("resource", "figure", "from")
    events = f"{result.mean_events_per_s:,.0f} / {result.peak_events_per_s:,.0f}"
    table.add_row("engagement events/s, mean / peak", events,
                  "mau x events_per_user_per_day / 86,400; x peak_to_mean")
    table.add_row("TaskManager cores", f"{result.taskmanager_cores:,}",
                  "peak x taskmanager_cpu_s_per_million_events / 1e6 / cpu_utilisation_at_peak")
    table.add_row("Redis data", f"{result.redis_total_gb:,.0f} GB", "entities x redis_bytes_per_entity")
    table.add_row("Redis Cluster", f"{result.redis_primaries:,} primaries + {result.redis_replicas:,} replicas",
                  "max(data / redis_gb_per_shard, write CPU / cpu_utilisation_at_peak)")
    table.add_row("Kafka ingress at peak", f"{result.kafka_peak_mb_per_s:,.0f} MB/s", "peak x event_bytes")
    table.add_row("Kafka", f"{result.kafka_brokers:,} brokers, {result.kafka_partitions:,} partitions",
                  "ingress x RF / broker_ingress_mb_per_s; one partition per TaskManager core at least")
    table.add_row("transcoder cores", f"{result.transcoder_cores:,}",
                  "uploads x mean_upload_seconds x transcode_cpu_s_per_source_s / 86,400 x peak / utilisation")
    table.add_row("index", f"{result.index_total_gb:,.0f} GB in {result.index_shards:,} shards",
                  "indexed_videos x index_bytes_per_vector / index_gb_per_shard")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("capacity")(capacity)
