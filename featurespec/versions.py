"""Versions of a feature set: which the job computes, which readers read, and when an old one may go.

A changed definition is published as a new version beside the old one (its own key prefix, `key_prefix`):
the job computes every set in `features.ALL_FEATURE_SETS`, possibly two versions of one name, while readers
read the one version per name that `features.READ_VERSIONS` names. docs/ADDING_FEATURES.md walks through it.

>>> from features.engagement.video_engagement import v1
>>> [fs.qualified_name for fs in read_sets((v1,), {"video_engagement": 1})]
['video_engagement.v1']
>>> retire_refusal("video_engagement", 1, computed=(v1,), read_versions={"video_engagement": 1})
'video_engagement.v1 is still computed (features.ALL_FEATURE_SETS): remove it there and resubmit the job first'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from featurespec.declaration import FeatureSet, key_prefix

__all__ = ["read_sets", "retire_refusal", "select_sets"]


def read_sets(computed: Sequence[FeatureSet], read_versions: Mapping[str, int]) -> tuple[FeatureSet, ...]:
    """The set readers read for each name in `computed`: the version `read_versions` names, in the order the
    names first appear in `computed`. Raises ValueError when a computed name has no read version, a read
    version is not computed (readers would find no keys), or a name is declared twice with one version."""
    by_version: dict[tuple[str, int], FeatureSet] = {}
    for fs in computed:
        if (fs.name, fs.version) in by_version:
            raise ValueError(f"{fs.qualified_name} is declared twice")
        by_version[(fs.name, fs.version)] = fs
    names = list(dict.fromkeys(fs.name for fs in computed))
    unread = [n for n in names if n not in read_versions]
    if unread:
        raise ValueError(f"no read version for {', '.join(unread)}: add it to READ_VERSIONS")
    unknown = sorted(set(read_versions) - set(names))
    if unknown:
        raise ValueError(f"READ_VERSIONS names {', '.join(unknown)}, which no computed set has")
    missing = [f"{n}.v{read_versions[n]}" for n in names if (n, read_versions[n]) not in by_version]
    if missing:
        raise ValueError(f"readers would read {', '.join(missing)}, which the job does not compute")
    return tuple(by_version[(n, read_versions[n])] for n in names)


def select_sets(wanted: Iterable[str], computed: Sequence[FeatureSet]) -> tuple[FeatureSet, ...]:
    """The computed sets that `wanted` names: `name` for every computed version of it, `name.vN` for exactly
    that version. Raises ValueError for a name or version the job does not compute.

    >>> from features.engagement.video_engagement import v1
    >>> [fs.qualified_name for fs in select_sets(["video_engagement.v1"], (v1,))]
    ['video_engagement.v1']
    """
    chosen: dict[str, FeatureSet] = {}
    for spec in wanted:
        found = [fs for fs in computed if spec in (fs.name, fs.qualified_name)]
        if not found:
            known = ", ".join(fs.qualified_name for fs in computed)
            raise ValueError(f"the job computes no feature set {spec!r}; known: {known}")
        chosen.update((fs.qualified_name, fs) for fs in found)
    return tuple(chosen.values())


def retire_refusal(
    name: str, version: int, *, computed: Sequence[FeatureSet], read_versions: Mapping[str, int],
    live_prefixes: Iterable[str] = (),
) -> str | None:
    """Why version `version` of set `name` may not be retired yet (its keys deleted), or None when it may.

    computed: what the job computes (a computed version would be written again).
    read_versions: what readers read, per set name.
    live_prefixes: other key prefixes in use (serving sets, exploration decisions), which a retirement must
        not touch.
    """
    qualified = f"{name}.v{version}"
    if any(fs.name == name and fs.version == version for fs in computed):
        return f"{qualified} is still computed (features.ALL_FEATURE_SETS): remove it there and resubmit the job first"
    if read_versions.get(name) == version:
        return f"{qualified} is still the version readers read (features.READ_VERSIONS)"
    prefix = key_prefix(name, version)
    if prefix in set(live_prefixes):
        return f"{prefix} is a live key prefix (a serving set or exploration's decisions), not a retired feature set"
    return None
