"""Labels (fyp.training.labels) and which spine rows a build holds (fyp.training.backfill): the [t, t + within)
window, the row's own event, the label keys, the closed-horizon rule and the day range."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from featurespec.training import Label
from fyp.training.backfill import backfill, spine_indexes
from fyp.training.history import History
from fyp.training.labels import label_values
from tests.unit.fyp.training.streams import LATENESS_MS, MINUTE, T0, event, history
from training import watch_outcomes

LIKED = Label(name="liked", where="event_type = 'like'", within=timedelta(minutes=10))


def labels(label, events, rows):
    return label_values(label, events, np.array([e[2] for e in events], np.int64), rows,
                        np.array([r[2] for r in rows], np.int64)).tolist()


def test_a_label_is_true_for_a_matching_event_in_t_to_t_plus_within():
    impression = event("impression", T0)
    at_start, before, at_end = event("like", T0), event("like", T0 - 1), event("like", T0 + 10 * MINUTE)
    assert labels(LIKED, [at_start], [impression]) == [True]
    assert labels(LIKED, [before], [impression]) == [False]
    assert labels(LIKED, [at_end], [impression]) == [False]  # the window is half-open
    assert labels(LIKED, [event("like", T0 + 10 * MINUTE - 1)], [impression]) == [True]


def test_a_label_needs_the_rows_keys_and_never_counts_the_row_itself():
    impression = event("impression", T0, user="u1", video="v1")
    assert labels(LIKED, [event("like", T0 + 1, video="v2")], [impression]) == [False]
    assert labels(LIKED, [event("like", T0 + 1, user="u2")], [impression]) == [False]
    seen = Label(name="seen", where="event_type = 'impression'", within=timedelta(minutes=1))
    again = event("impression", T0 + 5)
    assert labels(seen, [impression], [impression]) == [False]  # its own event
    assert labels(seen, [impression, again], [impression, again]) == [True, False]
    by_author = Label(name="author_liked", where="event_type = 'like'", within=timedelta(minutes=1),
                      keys=("user_id", "author_id"))
    assert labels(by_author, [event("like", T0 + 1, video="v9")], [impression]) == [True]
    no_author = event("impression", T0, author=None)
    assert labels(by_author, [event("like", T0 + 1, author=None)], [no_author]) == [False]


def test_watch_outcomes_labels_follow_their_declared_predicates():
    impression = event("impression", T0)
    follows = [event("watch", T0 + 1), event("like", T0 + 2), event("skip", T0 + 3), event("follow", T0 + 4),
               event("share", T0 + 5)]
    hist = history([impression, *follows, event("like", T0 + 20 * MINUTE, user="u-closing")])
    built = backfill(watch_outcomes.v1, hist).table
    assert built.num_rows == 1
    assert {c: built.column(c)[0].as_py() for c in built.column_names if c.startswith("label_")} == {
        "label_completed": True, "label_liked": True, "label_shared": True, "label_followed": True,
        "label_skipped": True}
    half = history([impression, event("half_watch", T0 + 1), event("like", T0 + 20 * MINUTE, user="u-closing")])
    assert backfill(watch_outcomes.v1, half).table.column("label_completed")[0].as_py() is False


def test_a_build_holds_the_rows_whose_label_horizon_closed_within_its_range():
    horizon = watch_outcomes.v1.label_horizon // timedelta(milliseconds=1)
    rows = [event("impression", T0 + i * MINUTE) for i in range(30)]
    newest = T0 + 29 * MINUTE
    hist = history(rows)
    closed, still_open = spine_indexes(watch_outcomes.v1, hist, since_ms=None, until_ms=None)
    assert [rows[i][2] for i in closed] == [r[2] for r in rows if r[2] + horizon <= newest - LATENESS_MS]
    assert len(closed) + len(still_open) == 30 and len(closed) == 18
    closed, _ = spine_indexes(watch_outcomes.v1, hist, since_ms=T0 + 5 * MINUTE, until_ms=T0 + 7 * MINUTE)
    assert [rows[i][2] for i in closed] == [T0 + 5 * MINUTE, T0 + 6 * MINUTE]


def test_a_spine_row_is_one_distinct_event_late_or_not():
    impression = event("impression", T0, event_id="imp")
    newer = event("watch", T0 + 5 * MINUTE)
    late = event("impression", T0 + MINUTE)  # late behind `newer`: the job does not feature it, but it happened
    closing = event("like", T0 + 30 * MINUTE, user="u-closing")
    hist: History = history([impression, impression, newer, late, closing])
    built = backfill(watch_outcomes.v1, hist).table
    assert sorted(built.column("event_id").to_pylist()) == sorted(["imp", late[1]])
