"""An experiment is a value: a name, a layer, arms with their config overrides and weights, a traffic share and a
time range. Layers follow Google's overlapping-experiment design (Tang et al., KDD 2010): a user is in at most
one experiment per layer, and in one experiment of every layer at once, because each layer hashes users with its
own salt. Experiments that change the same parameters belong in one layer, so they never both apply to a user.

Validation raises `ValueError` when a value is built, so a bad declaration fails at import, not mid-request.

>>> exp = Experiment(name="ranker_v2", layer="ranking", arms=(Arm(name="control"), Arm(name="v2",
...     overrides={"ranker.model": "v2"})), traffic_percent=10, start_ms=0)
>>> exp.arm_names()
('control', 'v2')
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["BUCKETS", "MAX_ARMS", "MAX_NAME_CHARS", "Arm", "Experiment", "check_layers"]

BUCKETS = 10_000  # a layer's traffic unit: 0.01 % of users
MAX_ARMS = 16
MAX_NAME_CHARS = 64
MAX_OVERRIDES = 64
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _check_name(kind: str, name: str) -> None:
    if not (0 < len(name) <= MAX_NAME_CHARS and _NAME.match(name)):
        raise ValueError(f"{kind} name {name!r}: use 1-{MAX_NAME_CHARS} characters of a-z, 0-9 and _, "
                         "starting with a letter (it is a field in events and a column in reports)")


@dataclass(frozen=True, kw_only=True)
class Arm:
    """One arm: its name, its share of the experiment's users (relative weight, > 0), and the config values it
    changes (dotted keys, e.g. {"ranker.model": "v2"}); the control arm changes nothing."""

    name: str
    weight: int = 1
    overrides: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_name("arm", self.name)
        if self.weight <= 0:
            raise ValueError(f"arm {self.name!r}: weight must be > 0, got {self.weight}")
        if len(self.overrides) > MAX_OVERRIDES:
            raise ValueError(f"arm {self.name!r}: {len(self.overrides)} overrides, at most {MAX_OVERRIDES}")
        object.__setattr__(self, "overrides", MappingProxyType(dict(self.overrides)))


@dataclass(frozen=True, kw_only=True)
class Experiment:
    """A declared experiment.

    layer: experiments of one layer split that layer's users between them; traffic_percent: this experiment's
    share of its layer (0.01 .. 100, in steps of 0.01); start_ms / end_ms: epoch ms, end exclusive (None: open);
    salt: changes who is in which arm (a re-run with fresh users), default the experiment's name.
    """

    name: str
    layer: str
    arms: Sequence[Arm]
    traffic_percent: float
    start_ms: int
    end_ms: int | None = None
    salt: str = ""

    def __post_init__(self) -> None:
        _check_name("experiment", self.name)
        _check_name("layer", self.layer)
        object.__setattr__(self, "arms", tuple(self.arms))
        if not 2 <= len(self.arms) <= MAX_ARMS:
            raise ValueError(f"experiment {self.name!r}: {len(self.arms)} arms; use 2..{MAX_ARMS}")
        names = self.arm_names()
        if len(set(names)) != len(names):
            raise ValueError(f"experiment {self.name!r}: arm names repeat: {names}")
        if not 0 < self.traffic_percent <= 100 or round(self.traffic_percent * 100) != self.traffic_percent * 100:
            raise ValueError(f"experiment {self.name!r}: traffic_percent {self.traffic_percent} must be in "
                             "(0, 100], in steps of 0.01")
        if self.end_ms is not None and self.end_ms <= self.start_ms:
            raise ValueError(f"experiment {self.name!r}: end_ms {self.end_ms} is not after start_ms {self.start_ms}")
        if len(self.salt) > MAX_NAME_CHARS:
            raise ValueError(f"experiment {self.name!r}: salt longer than {MAX_NAME_CHARS} characters")

    def arm_names(self) -> tuple[str, ...]:
        return tuple(arm.name for arm in self.arms)

    @property
    def buckets(self) -> int:
        """How many of its layer's BUCKETS this experiment takes."""
        return round(self.traffic_percent * BUCKETS / 100)

    def running_at(self, now_ms: int) -> bool:
        return self.start_ms <= now_ms and (self.end_ms is None or now_ms < self.end_ms)


def check_layers(experiments: Sequence[Experiment]) -> dict[str, tuple[Experiment, ...]]:
    """The experiments grouped by layer, in declaration order; `ValueError` if names repeat or a layer's
    experiments together take more than 100 % of it (they would share users, so one user could be in both).

    Experiments whose time ranges do not overlap still each hold their share: a user's bucket then never moves
    from an ended experiment into a new one, so a finished test cannot carry over into the next.

    >>> a = Experiment(name="a", layer="l", arms=(Arm(name="x"), Arm(name="y")), traffic_percent=60, start_ms=0)
    >>> b = Experiment(name="b", layer="l", arms=(Arm(name="x"), Arm(name="y")), traffic_percent=50, start_ms=0)
    >>> check_layers([a, b])
    Traceback (most recent call last):
    ...
    ValueError: layer 'l': its experiments take 110.0 % of its traffic (a 60 %, b 50 %)
    """
    names = [e.name for e in experiments]
    if len(set(names)) != len(names):
        raise ValueError(f"experiment names repeat: {sorted(n for n in set(names) if names.count(n) > 1)}")
    layers: dict[str, list[Experiment]] = {}
    for experiment in experiments:
        layers.setdefault(experiment.layer, []).append(experiment)
    for layer, members in layers.items():
        taken = sum(e.buckets for e in members)
        if taken > BUCKETS:
            shares = ", ".join(f"{e.name} {e.traffic_percent:g} %" for e in members)
            raise ValueError(f"layer {layer!r}: its experiments take {taken * 100 / BUCKETS} % of its traffic "
                             f"({shares})")
    return {layer: tuple(members) for layer, members in layers.items()}
