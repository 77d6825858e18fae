"""`merge_with_stats` drops a source from its round robin once it cannot give (a CPU saving): the result must be
the one of the plain round robin that asks every source for every slot, on any input hypothesis builds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fyp.candidates.merge import SOURCES, Candidate, Merged, merge_with_stats


def plain_round_robin(sources, quotas, *, k, exclude=()) -> Merged:
    """The merge as it was written before: every source asked in every round until a round takes nothing."""
    excluded = set(exclude)
    names = [n for n in quotas if n in sources]
    pools = {}
    for name in names:
        seen: set[str] = set()
        pools[name] = [c for c in sources[name] if c.video_id not in excluded
                       and not (c.video_id in seen or seen.add(c.video_id))]
    taken_ids: set[str] = set()
    out: list[Candidate] = []
    taken = dict.fromkeys(names, 0)
    cursor = dict.fromkeys(names, 0)

    def take(name: str, limit: int) -> bool:
        pool = pools[name]
        while taken[name] < limit and cursor[name] < len(pool):
            candidate = pool[cursor[name]]
            cursor[name] += 1
            if candidate.video_id not in taken_ids:
                taken_ids.add(candidate.video_id)
                out.append(candidate)
                taken[name] += 1
                return True
        return False

    for limits in ({n: quotas[n] for n in names}, dict.fromkeys(names, k)):
        progress = True
        while len(out) < k and progress:
            progress = False
            for name in names:
                if len(out) >= k:
                    break
                progress = take(name, limits[name]) or progress
    return Merged(candidates=out, offered={n: len(sources[n]) for n in names},
                  filtered={n: len(sources[n]) - len(pools[n]) for n in names}, taken=taken)


ids = st.sampled_from([f"v{i}" for i in range(40)])  # few ids, so sources overlap and repeat themselves


@st.composite
def inputs(draw):
    names = draw(st.lists(st.sampled_from(SOURCES), min_size=1, max_size=5, unique=True))
    sources = {n: [Candidate(v, n, 1.0) for v in draw(st.lists(ids, max_size=30))] for n in names}
    quotas = {n: draw(st.integers(0, 12)) for n in draw(st.permutations(SOURCES))}
    k = draw(st.integers(0, 50))
    exclude = draw(st.sets(ids, max_size=10))
    return sources, quotas, k, exclude


@settings(max_examples=150, deadline=None)
@given(inputs())
def test_the_rotation_without_exhausted_sources_merges_as_the_plain_round_robin(case) -> None:
    sources, quotas, k, exclude = case
    assert merge_with_stats(sources, quotas, k=k, exclude=exclude) == plain_round_robin(
        sources, quotas, k=k, exclude=exclude)
