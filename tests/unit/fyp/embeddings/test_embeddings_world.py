"""fyp.embeddings.world (a generated world's positives through the backfill) and `fyp bench two-tower` on a tiny
world. The model's figures on the unit test's world are in test_two_tower_world.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from fyp.commands import train as train_commands
from fyp.embeddings.data import DAY_MS
from fyp.embeddings.world import World, world_positives

TINY = World(users=30, videos=120, seed=3, days=2, views_per_day=1_000)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("days", 1, "days must be >= 2"),
    ("views_per_day", 1_200, "multiple of block"),
    ("users", 0, "users must be >= 1"),
    ("views_per_day", 3_000_000, "more than"),
    ("start_ms", 1_764_547_200_001, "UTC midnight"),
])
def test_a_world_refuses_what_it_cannot_build(field: str, value: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        World(**{field: value})


def test_a_world_gives_positives_on_each_of_its_days_with_the_generators_ids() -> None:
    positives = world_positives(TINY)
    days = np.unique(positives.time_ms // DAY_MS)
    assert days.tolist() == [TINY.start_ms // DAY_MS, TINY.start_ms // DAY_MS + 1]
    assert 0 < len(positives) < TINY.views
    assert all(v.startswith("v") for v in positives.catalogue.video_ids)
    assert {u[0] for u in positives.user_ids.tolist()} == {"u"}


def _bench(*args: str):
    app, bench = typer.Typer(), typer.Typer()
    app.add_typer(bench, name="bench")
    train_commands.register(app, bench=bench)
    return CliRunner().invoke(app, ["bench", "two-tower", *args])


def test_the_bench_prints_recall_of_model_popularity_and_oracle_as_json() -> None:
    result = _bench("--users", "30", "--videos", "120", "--world-seed", "3", "--days", "2", "--views-per-day",
                    "1000", "--batch-size", "32", "--epochs", "2", "--threads", "1", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["world"]["days"] == 2 and out["world"]["positives"] > 0
    for ranker in ("model", "popularity", "oracle"):
        assert set(out["recall"][ranker]) == {"10", "50", "100"}
    assert set(out["recall"]["oracle_lift"]) == {"10", "50", "100"}


def test_the_bench_trains_the_popularity_towers_on_the_videos_counts() -> None:
    result = _bench("--users", "30", "--videos", "120", "--world-seed", "3", "--days", "2", "--views-per-day",
                    "1000", "--batch-size", "32", "--epochs", "2", "--threads", "1", "--popularity-towers", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    tower = out["tower_config"]
    assert tower["video_ids"] is False and tower["user_feature_columns"] == []
    assert tower["video_feature_columns"] == ["impressions_decay_24h", "plays_decay_24h", "completions_decay_24h"]
    assert set(out["recall"]["model"]) == {"10", "50", "100"}


def test_the_bench_refuses_a_bad_world_with_a_clear_error() -> None:
    result = _bench("--views-per-day", "1200", "--json")
    assert result.exit_code != 0 and "multiple of block" in result.output
