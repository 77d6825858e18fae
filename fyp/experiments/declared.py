"""The experiments that run: declared here, once, as `Experiment` values (fyp/experiments/spec.py).

The feed service assigns each user with `fyp.experiments.assign.assign_user` over `EXPERIMENTS` and applies the
user's arms' overrides (today it reads `ranker.weights.<head>`, fyp/ranking/combine.py). Layers are checked at
import, so a bad declaration fails when the service starts, not mid-request. None runs yet.

A declaration looks like:

    Experiment(name="ranker_weights_share", layer="ranking",
               arms=(Arm(name="control"), Arm(name="share8", overrides={"ranker.weights.shared": 8.0})),
               traffic_percent=10, start_ms=1_796_000_000_000)
"""

from __future__ import annotations

from fyp.experiments.spec import Experiment, check_layers

__all__ = ["EXPERIMENTS"]

EXPERIMENTS: tuple[Experiment, ...] = ()
check_layers(EXPERIMENTS)
