"""The follow graph job on the real stack: a follow made days ago is served by candidate generation's followed
source, an unfollow removes it (and an older follow arriving after it does not bring it back), the follower count
is an absolute value, nothing has a TTL, and graph.follows_changelog / the graph.follows view hold the events and
the current edges."""

from __future__ import annotations

import contextlib
import json
import time
import uuid

import httpx
import pytest
from typer import Typer
from typer.testing import CliRunner

from connectors.iceberg_tables import catalog, ensure_tables
from connectors.redis_video_store import AUTHOR_VIDEOS_KEY
from features.follow_graph import FOLLOWERS_FIELD, followers_key, following_key
from fyp.candidates.sources import RedisSources
from fyp.lake.sql import run_query
from fyp.stack.submit import cancel_job, submit_job
from schemas.topics import ENGAGEMENT
from tests.integration.conftest import eventually
from tests.integration.test_exploration import end_offsets

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000


def test_follows_of_any_age_are_served_until_unfollowed(settings, engagement_producer, redis_client):
    ensure_tables(settings)  # graph.follows_changelog on a stack started before it existed
    run = uuid.uuid4().hex[:8]
    user, other, author, marker = f"fg-{run}-u", f"fg-{run}-w", f"fg-{run}-a", f"fg-{run}-m"
    video = f"fg-{run}-v"
    now = int(time.time() * 1000)
    start = end_offsets(settings, ENGAGEMENT)  # the job reads only what this test sends
    # At 2, against the catalogue's default of 1: the job must run at the -p it is given (its program once set
    # parallelism.default, which overrode it).
    job_id = submit_job(settings, "follow_graph", parallelism=2,
                        properties={"execution.checkpointing.interval": "5s"}, job_args=[
        "--group-id", f"fyp-follow-graph-it-{run}", "--start-offsets", ",".join(f"{p}:{o}" for p, o in start.items())])
    keys = [following_key(user), following_key(other), followers_key(author), followers_key(marker),
            AUTHOR_VIDEOS_KEY.format(author_id=author)]
    try:
        redis_client.zadd(AUTHOR_VIDEOS_KEY.format(author_id=author), {video: now})  # the embedding job's write

        def follow(who: str, whom: str, action: str, at: int) -> None:
            engagement_producer.send("Follow", user_id=who, video_id=f"v-{whom}", author_id=whom, action=action,
                                     event_time=at)

        follow(user, author, "FOLLOW", now - 3 * DAY_MS)  # three days ago: the 24 h history sets forgot it
        follow(other, author, "FOLLOW", now - 60_000)
        follow(other, author, "FOLLOW", now - 60_000)  # a duplicate
        engagement_producer.flush()
        eventually(lambda: redis_client.zscore(following_key(user), author) == float(now - 3 * DAY_MS),
                   timeout_s=180, message=f"{author} in {following_key(user)}")
        vertices = httpx.get(f"{settings.flink_rest_url}/jobs/{job_id}", timeout=5).json()["vertices"]
        assert max(v["parallelism"] for v in vertices) == 2, [(v["name"][:40], v["parallelism"]) for v in vertices]
        sources = RedisSources(redis_client)
        _, followed, _ = sources.user_context(user)
        assert followed == {author}
        assert [c.video_id for c in sources.followed(followed, 10)] == [video]
        eventually(lambda: redis_client.hget(followers_key(author), FOLLOWERS_FIELD) == b"2", timeout_s=30,
                   message=f"{followers_key(author)} = 2")
        # No TTL on either: a live edge never expires.
        assert redis_client.ttl(following_key(user)) == -1 and redis_client.ttl(followers_key(author)) == -1

        follow(user, author, "UNFOLLOW", now)
        follow(user, author, "FOLLOW", now - 2 * DAY_MS)  # older than the unfollow, arriving after it
        follow(user, marker, "FOLLOW", now)  # same user, so same partition: read after the two above
        engagement_producer.flush()
        eventually(lambda: redis_client.zscore(following_key(user), marker) is not None, timeout_s=60,
                   message=f"{marker} in {following_key(user)}")
        assert redis_client.zscore(following_key(user), author) is None
        _, followed, _ = sources.user_context(user)
        assert followed == {marker} and sources.followed(followed, 10) == []
        assert redis_client.hget(followers_key(author), FOLLOWERS_FIELD) == b"1"
        assert redis_client.hget(followers_key(marker), FOLLOWERS_FIELD) == b"1"

        # Iceberg: every event in the changelog (committed on the 5 s checkpoints); the view's current edges.
        lake = catalog(settings)
        where = f"WHERE user_id IN ('{user}', '{other}')"

        def changelog() -> list[tuple]:
            rows = run_query(lake, "SELECT user_id, author_id, op, epoch_ms(event_time) AS t "
                                   f"FROM graph.follows_changelog {where}").rows.to_pylist()
            return sorted((r["user_id"], r["author_id"], r["op"], r["t"]) for r in rows) if len(rows) >= 6 else []

        assert eventually(changelog, timeout_s=90, message="six rows in graph.follows_changelog") == sorted([
            (user, author, "+", now - 3 * DAY_MS), (other, author, "+", now - 60_000),
            (other, author, "+", now - 60_000), (user, author, "-", now), (user, author, "+", now - 2 * DAY_MS),
            (user, marker, "+", now)])
        current = run_query(lake, f"SELECT user_id, author_id FROM graph.follows {where}").rows.to_pylist()
        assert sorted((r["user_id"], r["author_id"]) for r in current) == sorted([(other, author), (user, marker)])

        from fyp.commands import lake as lake_commands

        app = Typer()
        lake_commands.register(app)
        listed = json.loads(CliRunner().invoke(app, ["tables", "--json"]).stdout)
        assert "graph.follows" in [v["name"] for v in listed["views"]]
    finally:
        redis_client.delete(*keys)
        with contextlib.suppress(httpx.HTTPError):
            cancel_job(settings, job_id)
