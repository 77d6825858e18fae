"""A guard around a per-event Python function, so that no record can fail or stall a job by itself.

Flink restarts a job whose operator throws, and the restarted job meets the same record again: one poison record
would restart the job forever. So a guarded function never raises. When the wrapped function raises, or takes
longer than its time budget, the guard answers None (SQL NULL) and remembers a reason for that input; the job's
dead-letter branch asks `failure(...)` for the same input and sends the record to the dead-letter topic with that
reason (jobs/engagement_features.py), and the feature sets leave the record out (featurespec/sql.py drops rows
whose derived column is NULL).

A budget cannot interrupt a call in progress: Python offers no safe way to stop a running function in another
thread. It is the second line. The first is that every per-event function has a bounded cost by construction
(udfs/sentiment.py scores at most 64 words), tested at the input limits. The budget catches what that missed,
dead-letters it, and keeps a replay of the same record from paying twice while it is remembered.

Answers are remembered per input in a small LRU, shared by every Flink function of the same name within one
Python interpreter (udfs/flink_functions.py), so there the dead-letter check and every feature set computing the
same derived column reuse one evaluation per record instead of running the function again.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["GuardedFunction", "failure_function"]


class GuardedFunction:
    """`fn` made safe per record: `__call__` gives its value or None, `failure` the reason it gave None.

    >>> guarded = GuardedFunction("HALF", lambda x: 1 / x)
    >>> guarded(2), guarded.failure(2), guarded(0), guarded.failure(0)
    (0.5, None, None, 'udf_error:HALF:ZeroDivisionError')
    """

    def __init__(self, name: str, fn: Callable[..., Any], *, budget_ms: float = 1_000.0,
                 remembered: int = 4_096) -> None:
        self.name = name
        self.fn = fn
        self.budget_ms = budget_ms
        self.remembered = remembered
        self._answers: OrderedDict[Hashable, tuple[Any, str | None]] = OrderedDict()
        self.failures = 0  # how many evaluations failed (a metric for the wrapper that owns the counter)

    def _answer(self, args: tuple[Any, ...]) -> tuple[Any, str | None]:
        found = self._answers.get(args)
        if found is not None:
            self._answers.move_to_end(args)
            return found
        started = time.perf_counter()
        try:
            value, reason = self.fn(*args), None
        except Exception as exc:  # any failure of the wrapped function is the record's, not the job's
            value, reason = None, f"udf_error:{self.name}:{type(exc).__name__}"
        elapsed_ms = (time.perf_counter() - started) * 1000
        if reason is None and elapsed_ms > self.budget_ms:
            value, reason = None, f"udf_over_budget:{self.name}:{elapsed_ms:.0f}ms"
        if reason is not None:
            self.failures += 1
        self._answers[args] = (value, reason)
        if len(self._answers) > self.remembered:
            self._answers.popitem(last=False)
        return value, reason

    def __call__(self, *args: Any) -> Any:
        return self._answer(args)[0]

    def failure(self, *args: Any) -> str | None:
        """Why the function gave no value for these arguments, or None when it gave one."""
        return self._answer(args)[1]


def failure_function(name: str) -> str:
    """The SQL name of the function that says why guarded function `name` gave NULL (udfs/flink_functions.py)."""
    return f"{name}_FAILURE"
