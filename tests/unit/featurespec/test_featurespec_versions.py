"""featurespec/versions.py and features.READ_VERSIONS: which version readers read, which may be retired."""

from __future__ import annotations

import doctest
from dataclasses import replace
from datetime import timedelta

import pytest

import featurespec.declaration
import featurespec.scaffold
import featurespec.sql
import featurespec.versions
from features import ALL_FEATURE_SETS, READ_VERSIONS, SERVED_FEATURE_SETS, feature_set_for_entity
from features.engagement import video_engagement
from features.exploration import DECISIONS_KEY_PREFIX
from features.serving_sets import SERVING_SETS
from featurespec import key_prefix
from featurespec.versions import read_sets, retire_refusal, select_sets
from fyp.serving import FeatureClient

V1 = video_engagement.v1
V2 = replace(V1, version=2, windows=(*V1.windows, timedelta(days=7)), ttl=timedelta(days=8))


@pytest.mark.parametrize("module", [featurespec.declaration, featurespec.sql, featurespec.versions,
                                    featurespec.scaffold], ids=lambda m: m.__name__)
def test_docstring_examples_run(module):
    assert doctest.testmod(module, raise_on_error=True).failed == 0


def test_every_computed_set_is_read_at_one_version():
    assert {fs.name for fs in SERVED_FEATURE_SETS} == {fs.name for fs in ALL_FEATURE_SETS} == set(READ_VERSIONS)
    assert all(fs.version == READ_VERSIONS[fs.name] for fs in SERVED_FEATURE_SETS)


def test_readers_read_the_configured_version_while_both_are_computed():
    assert read_sets((V1, V2), {"video_engagement": 2}) == (V2,)
    assert read_sets((V1, V2), {"video_engagement": 1}) == (V1,)
    client = FeatureClient(None, read_sets((V1, V2), {"video_engagement": 2}))
    assert client.plans["video"].feature_set is V2
    assert "plays_168h" in client.plans["video"].columns


@pytest.mark.parametrize(("computed", "versions", "message"), [
    ((V1,), {}, "no read version for video_engagement"),
    ((V1,), {"video_engagement": 2}, r"readers would read video_engagement.v2, which the job does not compute"),
    ((V1,), {"video_engagement": 1, "gone": 1}, "READ_VERSIONS names gone"),
    ((V1, V1), {"video_engagement": 1}, "video_engagement.v1 is declared twice"),
])
def test_inconsistent_read_versions_are_refused(computed, versions, message):
    with pytest.raises(ValueError, match=message):
        read_sets(computed, versions)


def test_main_set_of_an_entity_is_its_read_version():
    assert feature_set_for_entity("video") is video_engagement.v1


def test_select_names_every_computed_version_or_exactly_one():
    assert select_sets(["video_engagement"], (V1, V2)) == (V1, V2)
    assert select_sets(["video_engagement.v2"], (V1, V2)) == (V2,)
    assert select_sets(["video_engagement.v2", "video_engagement"], (V1, V2)) == (V2, V1)
    with pytest.raises(ValueError, match=r"no feature set 'video_engagement.v3'; known: video_engagement.v1, "):
        select_sets(["video_engagement.v3"], (V1, V2))


@pytest.mark.parametrize(("computed", "versions", "message"), [
    ((V1, V2), {"video_engagement": 2}, "video_engagement.v1 is still computed"),
    ((V2,), {"video_engagement": 1}, "video_engagement.v1 is still the version readers read"),
    ((V2,), {"video_engagement": 2}, None),
])
def test_retirement_waits_until_nothing_computes_or_reads_the_version(computed, versions, message):
    refusal = retire_refusal("video_engagement", 1, computed=computed, read_versions=versions)
    assert refusal == message if message is None else message in refusal


def test_live_serving_prefixes_are_never_retired():
    live = [DECISIONS_KEY_PREFIX, *(s.key_prefix for s in SERVING_SETS)]
    for name in ("recent_seen", "trending", "exploration"):
        assert "live key prefix" in retire_refusal(name, 1, computed=(), read_versions={}, live_prefixes=live)
    assert key_prefix("video_engagement", 1) == V1.key_prefix == "fyp:video_engagement:v1:"
