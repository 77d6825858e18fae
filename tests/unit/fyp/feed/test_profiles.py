"""The viewer's age from the profile hash (fyp/feed/profiles.py): the age rule, validation, the loader."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from fyp.feed.profiles import (
    MAX_AGE_YEARS,
    age_years,
    parse_birth_date,
    profile_key,
    read_profiles_csv,
    viewer_age,
    write_profiles,
)

ON = date(2026, 12, 7)


@pytest.mark.parametrize(("value", "expected"), [
    (b"2008-12-07", "adult"),   # 18 today
    (b"2008-12-08", "minor"),   # 18 tomorrow
    ("1950-06-01", "adult"),
    (None, "unknown"),
    (b"", "invalid"),
    (b"2008-02-30", "invalid"),  # not a date
    (b"2030-01-01", "invalid"),  # in the future
    (b"1800-01-01", "invalid"),  # over MAX_AGE_YEARS
    (b"20081207", "invalid"),
    (b"\xff\xfe", "invalid"),
])
def test_viewer_age(value: Any, expected: str) -> None:
    assert viewer_age(value, ON) == expected


def test_a_leap_day_birthday_comes_on_the_first_of_march() -> None:
    assert age_years(date(2008, 2, 29), date(2026, 2, 28)) == 17
    assert age_years(date(2008, 2, 29), date(2026, 3, 1)) == 18


def test_the_oldest_birth_date_accepted() -> None:
    assert parse_birth_date(f"{ON.year - MAX_AGE_YEARS}-12-07", ON)
    with pytest.raises(ValueError, match="over"):
        parse_birth_date(f"{ON.year - MAX_AGE_YEARS - 1}-12-07", ON)


class Hashes:
    """HSET through a pipeline, over a dict."""

    def __init__(self) -> None:
        self.hashes: dict[str, dict[str, str]] = {}
        self.executed = 0

    def pipeline(self, transaction: bool = False) -> Hashes:
        return self

    def hset(self, key: str, field: str, value: str) -> None:
        self.hashes.setdefault(key, {})[field] = value

    def execute(self) -> list[Any]:
        self.executed += 1
        return []


def test_the_loader_checks_every_row_before_writing_any(tmp_path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("user_id,birth_date,ignored\nu1,1990-05-01,x\n u2 ,2012-01-31,y\n")
    redis = Hashes()
    assert write_profiles(redis, read_profiles_csv(good), on=ON) == 2
    assert redis.hashes == {profile_key("u1"): {"birth_date": "1990-05-01"},
                            profile_key("u2"): {"birth_date": "2012-01-31"}}
    again = Hashes()
    write_profiles(again, read_profiles_csv(good), on=ON)
    assert again.hashes == redis.hashes  # absolute values: a second load changes nothing

    for text, message in [("user_id,birth_date\nu1,1990-05-01\nu3,tomorrow\n", "row 2 \\(u3\\)"),
                          ("user_id,birth_date\na:b,1990-05-01\n", "separator"),
                          ("user_id,birth_date\n,1990-05-01\n", "empty"),
                          (f"user_id,birth_date\n{'u' * 300},1990-05-01\n", "bytes")]:
        bad = tmp_path / "bad.csv"
        bad.write_text(text)
        redis = Hashes()
        with pytest.raises(ValueError, match=message):
            write_profiles(redis, read_profiles_csv(bad), on=ON)
        assert redis.hashes == {} and redis.executed == 0


def test_the_loader_refuses_a_file_without_the_columns(tmp_path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("user,born\nu1,1990-05-01\n")
    with pytest.raises(ValueError, match="birth_date, user_id"):
        read_profiles_csv(path)
