"""The experiments that run: declared here, once, as `Experiment` values (fyp/experiments/spec.py).

The feed service assigns each user with `fyp.experiments.assign.assign_user` over `EXPERIMENTS` and applies the
user's arms' overrides (today `ranker.weights.<head>`, fyp/ranking/combine.py, and `ranker.model`, a ranker
version, fyp/feed/model.py). Layers are checked at import, so a bad declaration fails when the service starts,
not mid-request.

One runs: `ranker_weights_follow`, in layer "ranking", on all users from 2026-12-01T00:00Z. Half the users
(arm `control`) get the default head weights; the other half (arm `follow8`) value a follow at 8 completions
instead of 4: does ranking harder for follows grow follows without costing completions? A follow is the rarest
signal that a viewer wants more of an author; the ranker's follow head beats popularity on held-out data
(tests/unit/fyp/ranking/test_ranker_world.py), so the weight moves the feed by a signal the model has.
tests/unit/fyp/experiments/test_declared.py checks the declaration and that both arms are served.
"""

from __future__ import annotations

from fyp.experiments.spec import Arm, Experiment, check_layers

__all__ = ["EXPERIMENTS"]

RANKER_WEIGHTS_FOLLOW = Experiment(
    name="ranker_weights_follow", layer="ranking",
    arms=(Arm(name="control"), Arm(name="follow8", overrides={"ranker.weights.followed": 8.0})),
    traffic_percent=100, start_ms=1_796_083_200_000)  # 2026-12-01T00:00:00Z

EXPERIMENTS: tuple[Experiment, ...] = (RANKER_WEIGHTS_FOLLOW,)
check_layers(EXPERIMENTS)
