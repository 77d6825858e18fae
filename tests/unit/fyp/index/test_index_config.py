"""What one index service is: the config checks itself, names its consumer group, and finds its port."""

from __future__ import annotations

import pytest

from fyp.index.config import DEFAULT_PORT, ServiceConfig, default_port


@pytest.mark.parametrize("changes", [{"dim": 0}, {"max_k": 0}, {"keep_snapshots": 0}, {"snapshot_every_s": -1}])
def test_config_checks_itself(changes):
    with pytest.raises(ValueError, match="must be >= 1"):
        ServiceConfig(replica_id="r", **changes)


def test_group_id_is_per_index_and_replica(monkeypatch):
    assert ServiceConfig(name="videos", replica_id="r1").group_id == "fyp-index-videos-r1"
    monkeypatch.setenv("FYP_INDEX_REPLICA", "pod-7")
    assert ServiceConfig(name="shorts").group_id == "fyp-index-shorts-pod-7"


def test_default_port_follows_the_stack_offset(monkeypatch):
    monkeypatch.delenv("FYP_INDEX_PORT", raising=False)
    monkeypatch.setenv("FYP_PORT_OFFSET", "1000")
    assert default_port() == DEFAULT_PORT + 1000
    monkeypatch.setenv("FYP_INDEX_PORT", "9999")
    assert default_port() == 9999
