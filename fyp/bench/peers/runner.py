"""Run one Python peer over the engagement topic and report its throughput, for `fyp bench throughput`.

>>> run_peer("naive", load_settings(), events=200_000, group_id="bench-naive-1", timeout_s=600)  # doctest: +SKIP
{'events': 200000, 'seconds': 12.75, 'events_per_s': 15686.9, 'redis_writes': 31723, ...}
"""

from __future__ import annotations

import time
from typing import Any, Literal

from fyp.bench.peers.result import PeerRun
from fyp.config import Settings
from schemas.topics import ENGAGEMENT

__all__ = ["PEERS", "PeerName", "run_peer"]

PeerName = Literal["quix", "naive", "bytewax", "pathway"]
PEERS: tuple[PeerName, ...] = ("quix", "naive", "bytewax", "pathway")


def run_peer(
    name: PeerName, settings: Settings, *, events: int, group_id: str, timeout_s: float,
    topic: str = ENGAGEMENT.name,
) -> dict[str, Any]:
    """Consume `topic` from the earliest offset as a fresh consumer group until `events` records were processed,
    computing video_engagement.v1 into Redis as the features job does.

    name: "quix" (fyp.bench.peers.quix_app), "naive" (fyp.bench.peers.naive_consumer), "bytewax"
        (fyp.bench.peers.bytewax_flow) or "pathway" (fyp.bench.peers.pathway_flow, run in the .venv-pathway
        environment by fyp.bench.peers.pathway_process).
    events: records to process (the topic must hold at least this many); bad records count, as the job's.
    group_id: a consumer group with no committed offsets.
    timeout_s: give up (TimeoutError) after this many seconds from the call.
    topic: the topic to read (default fyp.engagement.v1).

    Returns events, seconds (first record consumed to last Redis write; also as first_to_last_s), events_per_s,
    submit_to_last_s (from this call, before the peer's imports and its consumer group join, to the last Redis
    write; None if the peer does not stamp its last write), redis_writes (keys written), and for context
    good_events, cpu_seconds (whole process, first record to last write), events_per_cpu_s and entities.
    """
    called = time.time()
    if events < 1:
        raise ValueError(f"events must be >= 1, got {events}")
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    if name == "quix":
        from fyp.bench.peers.quix_app import run_quix  # quixstreams is imported only when asked for

        run = run_quix(settings, events=events, group_id=group_id, timeout_s=timeout_s, topic=topic)
    elif name == "naive":
        from fyp.bench.peers.naive_consumer import run_naive

        run = run_naive(settings, events=events, group_id=group_id, timeout_s=timeout_s, topic=topic)
    elif name == "bytewax":
        from fyp.bench.peers.bytewax_flow import run_bytewax  # bytewax too

        run = run_bytewax(settings, events=events, group_id=group_id, timeout_s=timeout_s, topic=topic)
    elif name == "pathway":
        from fyp.bench.peers.pathway_process import run_pathway_process

        run = run_pathway_process(settings, events=events, group_id=group_id, timeout_s=timeout_s, topic=topic)
    else:
        raise ValueError(f"unknown peer {name!r}; choose one of {', '.join(PEERS)}")
    return _report(run, called)


def _report(run: PeerRun, called: float) -> dict[str, Any]:
    return {
        "events": run.events, "seconds": round(run.seconds, 3), "first_to_last_s": round(run.seconds, 3),
        "submit_to_last_s": None if run.last_write_at is None else round(run.last_write_at - called, 3),
        "events_per_s": round(run.events_per_s, 1), "redis_writes": run.redis_writes, "good_events": run.good_events,
        "cpu_seconds": round(run.cpu_seconds, 3),
        "events_per_cpu_s": round(run.events / run.cpu_seconds, 1) if run.cpu_seconds > 0 else None,
        "entities": run.entities,
    }
