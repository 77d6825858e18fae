"""Candidate generation without Redis: quotas, the merge, co-watch combination, the generator over plain sources,
the cold-start market and trending list, and the history sets (co-watch) computed by DuckDB from plain rows."""

from __future__ import annotations

import doctest
import importlib
from datetime import timedelta

import pyarrow as pa
import pytest

from fyp.candidates.generator import CandidateGenerator
from fyp.candidates.history_sets import HistorySetsConfig, compute_sets, history_query
from fyp.candidates.market import Market, choose_market, cold_start_trending, request_market
from fyp.candidates.merge import DEFAULT_SHARES, Candidate, merge, merge_with_stats, quota_counts
from fyp.candidates.sources import combine_cowatch, exploration_pool


def cands(source: str, *ids: str) -> list[Candidate]:
    return [Candidate(v, source, float(len(ids) - i)) for i, v in enumerate(ids)]


@pytest.mark.parametrize(("k", "shares", "expected"), [
    (10, DEFAULT_SHARES, {"ann": 4, "cowatch": 2, "followed": 2, "trending": 1, "exploration": 1}),
    (100, DEFAULT_SHARES, {"ann": 40, "cowatch": 20, "followed": 15, "trending": 15, "exploration": 10}),
    (1, DEFAULT_SHARES, {"ann": 1, "cowatch": 0, "followed": 0, "trending": 0, "exploration": 0}),
    (0, {"a": 1.0}, {"a": 0}),
    (7, {"a": 1, "b": 1, "c": 1}, {"a": 3, "b": 2, "c": 2}),
])
def test_quota_counts_add_up_to_k(k, shares, expected):
    counts = quota_counts(k, shares)
    assert counts == expected and sum(counts.values()) == k


@pytest.mark.parametrize(("k", "shares", "match"), [
    (-1, {"a": 1}, "k must be"), (5, {"a": -1}, "shares must be"), (5, {"a": 0}, "at least one"),
])
def test_quota_counts_refuse_bad_input(k, shares, match):
    with pytest.raises(ValueError, match=match):
        quota_counts(k, shares)


def test_merge_respects_quotas_and_interleaves():
    sources = {"ann": cands("ann", "a1", "a2", "a3", "a4"), "trending": cands("trending", "t1", "t2", "t3")}
    got = merge(sources, {"ann": 2, "trending": 2}, k=4)
    assert [(c.video_id, c.source) for c in got] == [("a1", "ann"), ("t1", "trending"), ("a2", "ann"),
                                                     ("t2", "trending")]


def test_merge_gives_unused_slots_to_other_sources():
    sources = {"ann": cands("ann", "a1", "a2", "a3", "a4"), "followed": cands("followed", "f1")}
    merged = merge_with_stats(sources, {"ann": 2, "followed": 2}, k=4)
    assert [c.video_id for c in merged.candidates] == ["a1", "f1", "a2", "a3"]
    assert merged.taken == {"ann": 3, "followed": 1}


def test_merge_filters_and_credits_the_first_source():
    sources = {"ann": cands("ann", "seen", "x", "gone"), "cowatch": cands("cowatch", "x", "y", "y")}
    merged = merge_with_stats(sources, {"ann": 2, "cowatch": 2}, k=10, exclude={"seen", "gone"})
    assert [(c.video_id, c.source) for c in merged.candidates] == [("x", "ann"), ("y", "cowatch")]
    assert merged.filtered == {"ann": 2, "cowatch": 1}  # two excluded; one repeat within cowatch
    assert merged.offered == {"ann": 3, "cowatch": 3}


def test_merge_never_exceeds_k_nor_repeats():
    sources = {name: cands(name, *(f"v{i}" for i in range(30))) for name in DEFAULT_SHARES}
    got = merge(sources, quota_counts(20, DEFAULT_SHARES), k=20)
    assert len(got) == 20 and len({c.video_id for c in got}) == 20


def test_sources_without_a_quota_get_nothing():
    assert merge({"ann": cands("ann", "a"), "other": cands("other", "o")}, {"ann": 1}, k=5) == cands("ann", "a")


def test_combine_cowatch_sums_over_seeds():
    got = combine_cowatch([[(b"b", 0.5), (b"c", 0.2)], [(b"c", 0.4), (b"d", 0.1)]], limit=2)
    assert [(c.video_id, c.source, c.score) for c in got] == [("c", "cowatch", 0.6), ("b", "cowatch", 0.5)]


class PlainSources:
    """The RedisSources interface over dicts."""

    def __init__(self, *, seen=(), follows=(), market=None, lists=None, hidden=()):
        self.seen, self.follows, self.market = list(seen), set(follows), market
        self.lists = lists or {}
        self._hidden = set(hidden)

    def user_context(self, user_id):
        return self.seen, self.follows, self.market

    def cowatch(self, seeds, limit):
        return self.lists.get("cowatch", [])[:limit]

    def followed(self, authors, limit):
        return self.lists.get("followed", [])[:limit] if authors else []

    def trending(self, market, limit):
        """The market's list ("trending:US:en") then the global one ("trending:global"), as RedisSources does."""
        pairs = [(c.video_id, c.score) for c in self.lists.get(f"trending:{market.key}" if market else "", [])]
        return cold_start_trending(pairs, [(c.video_id, c.score) for c in self.lists.get("trending:global", [])],
                                   limit=limit)

    def exploration(self, limit):
        return self.lists.get("exploration", [])[:limit]

    def hidden(self, video_ids):
        return self._hidden & set(video_ids)


def test_generator_filters_seen_and_removed_and_reports_sources():
    sources = PlainSources(seen=["s1"], follows={"a"}, market="US:en", hidden={"gone"}, lists={
        "cowatch": cands("cowatch", "c1", "s1"), "followed": cands("followed", "gone", "f1"),
        "trending:US:en": cands("trending", "t1"), "exploration": cands("exploration", "new1"),
    })
    generated = CandidateGenerator(sources).generate("u1", 10, lambda n: cands("ann", "a1", "s1", "a2")[:n])
    body = generated.as_json()
    assert {(r["video_id"], r["source"]) for r in body["results"]} == {
        ("a1", "ann"), ("a2", "ann"), ("c1", "cowatch"), ("f1", "followed"), ("t1", "trending"),
        ("new1", "exploration")}
    assert body["filters"] == {"recent_seen": 1, "hidden": 1}
    assert body["sources"]["ann"]["quota"] == 4 and body["sources"]["ann"]["taken"] == 2


def test_generator_without_an_embedding_still_answers():
    def no_embedding(n):
        raise LookupError("no embedding for user 'u1'")

    sources = PlainSources(lists={"exploration": cands("exploration", "new1", "new2")})
    body = CandidateGenerator(sources).generate("u1", 5, no_embedding).as_json()
    assert [r["video_id"] for r in body["results"]] == ["new1", "new2"]
    assert body["sources"]["ann"]["error"] == "no embedding for user 'u1'"
    assert body["sources"]["trending"]["error"] == "no market known for the user and none asked: global set only"
    assert body["market"] == {"market": None, "from": "none", "market_videos": 0, "global_videos": 0}


# The cold start: a user with no history. Markets "US:en" (the user's own, from their events) and "FR:fr".
COLD_LISTS = {"trending:US:en": cands("trending", "us1", "us2"), "trending:FR:fr": cands("trending", "fr1", "fr2"),
              "trending:global": cands("trending", "g1", "fr1", "g2", "g3"),
              "exploration": cands("exploration", "new1")}


@pytest.mark.parametrize(("stored", "asked", "first", "market", "split"), [
    # the request's market wins over the user's own: its set first, then the global set's others
    (None, Market(region="FR", language="fr"), ["fr1", "fr2", "g1", "g2"], ("FR:fr", "request"), (2, 3)),
    ("US:en", Market(region="FR", language="fr"), ["fr1", "fr2", "g1", "g2"], ("FR:fr", "request"), (2, 3)),
    # no request: the market of the user's latest event (the features job's USER_MARKET)
    ("US:en", None, ["us1", "us2", "g1", "fr1"], ("US:en", "user"), (2, 3)),
    # neither: the global set alone
    (None, None, ["g1", "fr1", "g2", "g3"], (None, "none"), (0, 4)),
    # a market nobody watched in yet: no set, so the global one
    (None, Market(region="ZZ", language="zz"), ["g1", "fr1", "g2", "g3"], ("ZZ:zz", "request"), (0, 4)),
])
def test_a_new_user_gets_the_market_trending_set_then_the_global_one(stored, asked, first, market, split):
    body = CandidateGenerator(PlainSources(market=stored, lists=COLD_LISTS)).generate(
        "new", 5, None, market=asked).as_json()
    trending = [r["video_id"] for r in body["results"] if r["source"] == "trending"]
    assert trending[:4] == first
    assert (body["market"]["market"], body["market"]["from"]) == market
    assert (body["market"]["market_videos"], body["market"]["global_videos"]) == split
    assert "new1" in {r["video_id"] for r in body["results"]}  # exploration still has its slot


@pytest.mark.parametrize(("market", "global_", "limit", "expected"), [
    ([("a", 3.0), ("b", 2.0)], [("c", 9.0)], 5, ["a", "b", "c"]),
    ([("a", 3.0), ("b", 2.0)], [("c", 9.0)], 1, ["a"]),
    ([], [(b"c", 9.0), (b"d", 8.0)], 5, ["c", "d"]),  # redis-py answers bytes
    ([("a", 3.0)], [("a", 9.0), ("d", 8.0)], 5, ["a", "d"]),  # a video in both sets counts once, as the market's
    ([("a", 3.0)], [("d", 8.0)], 0, []),
])
def test_cold_start_trending_puts_the_market_first_and_dedups(market, global_, limit, expected):
    got = cold_start_trending(market, global_, limit=limit)
    assert [c.video_id for c in got.candidates] == expected
    assert got.market_videos + got.global_videos == len(expected)
    assert {c.source for c in got.candidates} <= {"trending"}


@pytest.mark.parametrize(("region", "language", "message"), [
    ("US", None, "give both or neither"),
    (None, "en", "give both or neither"),
    ("US:CA", "en", "holds ':'"),
    ("US", "e\tn", "control character"),
    ("R" * 17, "en", "region is 17 bytes, more than the 16"),
    ("US", "", "language must not be empty"),
])
def test_a_market_no_event_could_carry_is_refused(region, language, message):
    with pytest.raises(ValueError, match=message):
        request_market(region, language)


def test_a_stored_market_that_is_not_one_is_ignored():
    assert choose_market(None, "no-separator") == (None, "none")
    assert choose_market(None, ":en") == (None, "none")
    assert choose_market(None, "pt-BR") == (None, "none")
    assert choose_market(None, "BR:pt-BR") == (Market(region="BR", language="pt-BR"), "user")


def test_exploration_pool_drops_demoted_and_puts_promoted_first():
    fresh = [("n5", 5.0), ("n4", 4.0), ("n3", 3.0), ("n2", 2.0), ("n1", 1.0)]
    pool = exploration_pool(fresh, promoted={"n1": 7.0, "n3": 9.0}, demoted={"n4", "n2"}, limit=10)
    assert [(c.video_id, c.score) for c in pool] == [("n3", 9.0), ("n1", 7.0), ("n5", 5.0)]
    assert {c.source for c in pool} == {"exploration"}


def test_exploration_pool_respects_the_limit_and_keeps_undecided_order():
    fresh = [(b"n3", 3.0), (b"n2", 2.0), (b"n1", 1.0)]  # redis-py answers bytes
    assert [c.video_id for c in exploration_pool(fresh, promoted={}, demoted=set(), limit=2)] == ["n3", "n2"]
    assert exploration_pool(fresh, promoted={"n1": 1.0}, demoted=set(), limit=0) == []
    # a video both promoted and demoted cannot happen (one decision per video); demotion wins if it does
    assert [c.video_id for c in exploration_pool(fresh, promoted={"n1": 9.0}, demoted={"n1"}, limit=5)] == ["n3", "n2"]


def test_demoted_videos_never_reach_the_merged_candidates():
    pool = exploration_pool([("new1", 2.0), ("bad", 1.5), ("new2", 1.0)], promoted={}, demoted={"bad"}, limit=10)
    sources = PlainSources(lists={"exploration": pool})
    body = CandidateGenerator(sources).generate("u1", 10, None).as_json()
    assert [r["video_id"] for r in body["results"]] == ["new1", "new2"]


# -- history sets ------------------------------------------------------------------------------------------


def events(rows: list[tuple]) -> pa.Table:
    names = ["user_id", "video_id", "author_id", "event_type", "action", "watch_ms", "video_duration_ms", "region",
             "language", "t"]
    return pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})


def watch(user, video, t, watched=9000, duration=10000, region="US"):
    return (user, video, "a", "watch", None, watched, duration, region, "en", t)


def test_cowatch_counts_users_and_normalises():
    rows = [watch(u, v, t) for u in ("u1", "u2", "u3") for t, v in enumerate(("x", "y"))]
    rows += [watch("u3", "z", 10), watch("u4", "z", 1), watch("u4", "x", 2)]
    rows += [watch("u5", "x", 1, watched=100), watch("u5", "y", 2, watched=100)]  # skipped plays: not positive
    sets = compute_sets(events(rows), HistorySetsConfig(min_users=2))
    pairs = {(x, y): round(s, 3) for x, y, s in zip(*(sets["cowatch"].column(c).to_pylist()
                                                      for c in ("x", "y", "strength")), strict=True)}
    # x: u1..u4 (4 users), y: u1..u3 (3), z: u3, u4 (2); (x, y) by 3 users, (x, z) by 2, (y, z) by 1 (dropped).
    assert pairs == {("x", "y"): round(3 / (4 * 3) ** 0.5, 3), ("y", "x"): round(3 / (4 * 3) ** 0.5, 3),
                     ("x", "z"): round(2 / (4 * 2) ** 0.5, 3), ("z", "x"): round(2 / (4 * 2) ** 0.5, 3)}


def test_cowatch_keeps_only_each_users_most_recent_videos():
    rows = [watch(u, f"old{u}", 1) for u in ("u1", "u2")]
    rows += [watch(u, v, 10 + i) for u in ("u1", "u2") for i, v in enumerate(("a", "b"))]
    sets = compute_sets(events(rows), HistorySetsConfig(per_user=2, min_users=2))
    assert set(sets["cowatch"].column("x").to_pylist()) == {"a", "b"}


def test_history_sets_are_cowatch_only():
    """Follows come from the follow graph job (jobs/follow_graph.py), markets from the features job: the history
    query no longer reads follow events, and a follow row yields no set."""
    rows = [("u1", "v1", "a1", "follow", "FOLLOW", None, None, "US", "en", 1)]
    assert set(compute_sets(events(rows), HistorySetsConfig())) == {"cowatch"}
    assert "'follow'" not in history_query(0)


def test_history_sets_config_is_checked():
    with pytest.raises(ValueError, match="per_user"):
        HistorySetsConfig(per_user=1)
    with pytest.raises(ValueError, match="positive"):
        HistorySetsConfig(lookback=timedelta(0))


# By name: the package's `merge` function hides the module of that name as an attribute.
@pytest.mark.parametrize("module", ["fyp.candidates.market", "fyp.candidates.merge", "fyp.candidates.sources",
                                    "workers.candidate_sets"])
def test_docstring_examples_run(module):
    assert doctest.testmod(importlib.import_module(module), raise_on_error=True).failed == 0
