"""`fyp demo` fails unless its index part shows the takedown working and its feed part shows a watched video
leave the feed (fyp/commands/demo.py, `_check_index`, `_check_feed`)."""

from __future__ import annotations

import pytest
import typer

from fyp.commands.demo import _check_index

GOOD = {"first_in_similar_of_second": True, "first_in_similar_after_takedown": False,
        "takedown": {"still_readable": 0, "published_keys": 12, "objects_moved": 12}}


def test_a_working_takedown_passes_and_a_summary_without_the_index_part_too() -> None:
    _check_index({"index": GOOD})
    _check_index({})


@pytest.mark.parametrize("broken", [
    {"takedown": {"still_readable": 3, "published_keys": 12, "objects_moved": 9}},
    {"takedown": {}},  # the probe never ran
    {"first_in_similar_after_takedown": True},
    {"first_in_similar_of_second": False},
])
def test_the_demo_exits_1_when_any_part_of_the_takedown_failed(broken: dict) -> None:
    with pytest.raises(typer.Exit) as exited:
        _check_index({"index": {**GOOD, **broken}})
    assert exited.value.exit_code == 1


def test_the_demo_exits_1_unless_the_watched_video_left_the_feed() -> None:
    from fyp.commands.demo import _check_feed

    _check_feed({"feed": {"left_feed": True, "watched": "v1", "user": "u0"}})
    for feed in ({"left_feed": False, "watched": "v1", "user": "u0"}, {}):
        with pytest.raises(typer.Exit) as exited:
            _check_feed({"feed": feed})
        assert exited.value.exit_code == 1
