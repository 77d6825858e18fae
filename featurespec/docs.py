"""Render the feature reference (docs/FEATURES.md) from the declarations, so the doc cannot drift."""

from __future__ import annotations

from collections.abc import Sequence

from featurespec.declaration import FeatureSet, window_label

__all__ = ["render_feature_reference"]

_HEADER = """# Feature reference

Generated from `features/` by `fyp features-doc`; do not edit by hand (a test compares it with the code).

Every feature set is one Redis string per entity, key `<key prefix><key values joined by ':'>`, holding
the packed layout of docs/REDIS_LAYOUT.md: event time (ms), update time (ms), then one float32 per column
below, in order. Windowed columns (`_1m`, `_10m`, `_1h`, `_24h`) are sliding sums as of the entity's last
counted event (one that counts in at least one of the set's aggregations; other events leave the entity
untouched) at a granularity of window / tiles; a reader zeroes a window whose span has wholly passed since then.
Decayed columns (`_decay_30m`, ...) are exponentially decayed sums with that half-life; a reader multiplies
by 2^(-(now - event time) / half-life). Ratios are derived at read time from two columns of the same window.

Adding or changing a set: docs/ADDING_FEATURES.md. Several versions of one set may be listed: the job computes
each, readers read the one `features.READ_VERSIONS` names.

**Why a set does not name its source.** Every set here reads one stream, the decoded engagement row
(`fyp.engagement.v1`, udfs/envelope.py), and everything around the declarations assumes it: the features job
decodes, deduplicates and applies lateness once for all sets; `featurespec.sql` and the reference evaluator
check a set's SQL against the engagement-row columns; `fyp verify` and `fyp features-restore` read the
engagement history table. A `source` field (Chronon's GroupBy names its source) would have one legal value
and nothing would act on it, so it is left out until a second stream needs features. Then it would take: a
`Source` record in `featurespec` (topic, decoder, row columns, history table); the compiler and the evaluator
checking columns against the set's source; the features job building the decode and dedup views once per
source and grouping the sets by it (today's `engagement_views`); verify and the restore reading the source's
history table; and this reference naming each set's source.
"""


def _aggregation_rows(feature_set: FeatureSet) -> list[str]:
    rows = []
    for aggregation in feature_set.aggregations:
        what = aggregation.description or (
            "events" if aggregation.operation == "count" else f"sum of `{aggregation.expression}`")
        where = f"`{aggregation.where}`" if aggregation.where else ("every row" if feature_set.where else "every event")
        rows.append(f"| `{aggregation.name}` | {aggregation.operation} | {what} | {where} |")
    return rows


def render_feature_reference(feature_sets: Sequence[FeatureSet]) -> str:
    parts = [_HEADER]
    for fs in feature_sets:
        windows = ", ".join(window_label(w) for w in fs.windows) or "none"
        decays = ", ".join(window_label(h) for h in fs.half_lives) or "none"
        parts.append(f"## `{fs.qualified_name}` — entity `{fs.entity.name}`\n")
        if fs.description:
            parts.append(f"{fs.description}\n")
        parts.append(
            f"- key: `{fs.key_prefix}{':'.join('{' + k + '}' for k in fs.entity.key_columns)}`, TTL "
            f"{int(fs.ttl.total_seconds())} s\n- windows: {windows} ({fs.tiles} tiles each); half-lives: {decays}\n"
            f"- {len(fs.columns())} columns, in storage order: {', '.join(f'`{c}`' for c in fs.columns())}\n")
        if fs.where:
            parts.append(f"- rows: only events where `{fs.where}`\n")
        if fs.counted_where and fs.counted_where != fs.where:
            parts.append(f"- counted events (the others leave the entity untouched): `{fs.counted_where}`\n")
        for d in fs.derived:
            about = f" ({d.description})" if d.description else ""
            parts.append(f"- derived per row: `{d.name}` = `` {d.sql} ``{about}\n")
        parts.append("| aggregation | operation | value | counted events |\n|---|---|---|---|")
        parts.extend(_aggregation_rows(fs))
        if fs.ratios:
            parts.append("\n| ratio (per window) | numerator | denominator |\n|---|---|---|")
            parts.extend(f"| `{r.name}` | `{r.numerator}` | `{r.denominator}` |" for r in fs.ratios)
        parts.append("")
    return "\n".join(parts)
