"""fyp.traffic.keygroups against Flink's own KeyGroupRangeAssignment, through the JVM PyFlink starts."""

from __future__ import annotations

import random

from pyflink.java_gateway import get_gateway

from fyp.traffic.keygroups import java_string_hash, key_subtask


def test_key_subtask_is_flinks_for_random_keys() -> None:
    jvm = get_gateway().jvm
    assignment = jvm.org.apache.flink.runtime.state.KeyGroupRangeAssignment
    rng = random.Random(7)
    alphabet = "abcdef0123456789-_:é漢🙂"
    keys = ["", "a"] + ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))) for _ in range(400)]
    for key in keys:
        assert java_string_hash(key) == jvm.java.util.Objects.hashCode(key), key
        for parallelism, max_parallelism in ((1, 128), (2, 128), (3, 128), (7, 4096), (16, 32768)):
            assert key_subtask(key, parallelism, max_parallelism) == assignment.assignKeyToParallelOperator(
                key, max_parallelism, parallelism), (key, parallelism, max_parallelism)
