"""Render the feature reference (docs/FEATURES.md) from the declarations, so the doc cannot drift."""

from __future__ import annotations

from collections.abc import Sequence

from udfs.featurespec import FeatureSet, window_label

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
