"""fyp/bench/peers: the runner (the evaluator the peers share is tested in test_featurespec_reference.py)."""

from __future__ import annotations

import pytest

from fyp.bench.peers.runner import run_peer


@pytest.mark.parametrize(("name", "events", "timeout_s", "message"), [
    ("flink", 10, 1.0, "unknown peer 'flink'"),
    ("naive", 0, 1.0, "events must be >= 1"),
    ("quix", 10, 0.0, "timeout_s must be > 0"),
])
def test_run_peer_refuses_bad_arguments_before_connecting(name, events, timeout_s, message):
    with pytest.raises(ValueError, match=message):
        run_peer(name, None, events=events, group_id="g", timeout_s=timeout_s)
