"""Which arm of which experiment a user is in: a pure function of (user, declarations, time).

Two hashes, each BLAKE2b of a salted string, so every process, language and restart agrees (Python's `hash()`
is randomised per process):
1. layer hash: (layer, user) -> one of the layer's BUCKETS; each experiment of the layer owns a contiguous range of
   buckets, in declaration order, so a user is in at most one experiment per layer;
2. arm hash: (experiment salt, user) -> a point in [0, total arm weight), so arms split the experiment's users by
   weight, independently of which buckets it owns.

Layers are independent of each other because each layer's salt differs (tests/unit/fyp/experiments check this
with chi-square tests over 100k users).

>>> from fyp.experiments.spec import Arm, Experiment
>>> exp = Experiment(name="ranker_v2", layer="ranking", arms=(Arm(name="control"), Arm(name="v2")),
...                  traffic_percent=100, start_ms=0)
>>> assign_user("u42", [exp], now_ms=1) == assign_user("u42", [exp], now_ms=1)
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fyp.experiments.spec import BUCKETS, Experiment, check_layers

__all__ = ["Assignment", "assign_user", "layer_bucket", "merged_overrides", "unit_hash"]

MAX_USER_ID_BYTES = 128  # the events' id limit (udfs/limits.py); longer ids are refused, not truncated


@dataclass(frozen=True, kw_only=True)
class Assignment:
    """A user's arm in one experiment."""

    experiment: str
    layer: str
    arm: str

    @property
    def arm_id(self) -> str:
        """What feed responses and impression events carry: 'experiment:arm'."""
        return f"{self.experiment}:{self.arm}"


def unit_hash(salt: str, user_id: str) -> int:
    """A 64-bit integer from (salt, user_id); the separator keeps ("a", "b:c") and ("a:b", "c") apart."""
    raw = user_id.encode()
    if not raw or len(raw) > MAX_USER_ID_BYTES:
        raise ValueError(f"user id must be 1..{MAX_USER_ID_BYTES} bytes, got {len(raw)}")
    digest = hashlib.blake2b(salt.encode() + b"\x00" + raw, digest_size=8).digest()
    return int.from_bytes(digest, "big")


def layer_bucket(layer: str, user_id: str) -> int:
    """The user's bucket in `layer`: 0 .. BUCKETS-1."""
    return unit_hash(f"layer:{layer}", user_id) % BUCKETS


def _arm(experiment: Experiment, user_id: str) -> str:
    total = sum(arm.weight for arm in experiment.arms)
    point = unit_hash(f"arm:{experiment.salt or experiment.name}", user_id) % total
    for arm in experiment.arms:
        if point < arm.weight:
            return arm.name
        point -= arm.weight
    raise AssertionError("unreachable: point < total weight")


def assign_user(user_id: str, experiments: Sequence[Experiment], *, now_ms: int) -> tuple[Assignment, ...]:
    """The user's assignments, at most one per layer, among the experiments running at `now_ms`.

    A bucket range stays with its experiment before it starts and after it ends (`check_layers`), so such a
    user is simply in no experiment of that layer.
    """
    found: list[Assignment] = []
    for layer, members in check_layers(experiments).items():
        bucket = layer_bucket(layer, user_id)
        start = 0
        for experiment in members:
            if start <= bucket < start + experiment.buckets:
                if experiment.running_at(now_ms):
                    found.append(Assignment(experiment=experiment.name, layer=layer, arm=_arm(experiment, user_id)))
                break
            start += experiment.buckets
    return tuple(found)


def merged_overrides(assignments: Sequence[Assignment], experiments: Sequence[Experiment]) -> dict[str, object]:
    """The config values the user's arms change, merged; `ValueError` if two arms set one key (they would have
    to share a layer: declare them in one)."""
    by_name: Mapping[str, Experiment] = {e.name: e for e in experiments}
    merged: dict[str, object] = {}
    owner: dict[str, str] = {}
    for assignment in assignments:
        arm = next(a for a in by_name[assignment.experiment].arms if a.name == assignment.arm)
        for key, value in arm.overrides.items():
            if key in merged:
                raise ValueError(f"{assignment.arm_id} and {owner[key]} both set {key!r}: put the two experiments "
                                 "in one layer")
            merged[key], owner[key] = value, assignment.arm_id
    return merged
