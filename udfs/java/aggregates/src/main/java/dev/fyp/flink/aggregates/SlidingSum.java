package dev.fyp.flink.aggregates;

import java.util.Arrays;

import org.apache.flink.table.functions.AggregateFunction;

/**
 * {@code SLIDING_SUM(value DOUBLE, event_time_ms BIGINT, window_ms BIGINT, tiles INT) -> DOUBLE}:
 * the sum of the values of the last {@code window_ms} of event time, at tile granularity.
 *
 * <p>The accumulator is a ring of {@code tiles} buckets, each {@code tile = window_ms / tiles} wide
 * ({@code window_ms} must be a multiple of {@code tiles}). An event at time {@code e} belongs to the
 * tile with index {@code i = floor(e / tile)}, stored in slot {@code i mod tiles}; a slot that holds
 * an older index is reset when it is reused. With {@code ref} the maximum event time accepted so far
 * and {@code r = floor(ref / tile)}, the value is the sum of the buckets whose index lies in {@code
 * (r - tiles, r]}, i.e. of the events with {@code e >= (r - tiles + 1) · tile}: between {@code
 * window_ms - tile} and {@code window_ms} of history before {@code ref}, depending on where {@code
 * ref} falls within its tile.
 *
 * <p>Late and out-of-order events are added to their own tile as long as that tile is still in the
 * window; older ones are dropped, since they cannot affect the value any more. The result does not
 * depend on the order of the events (up to floating-point rounding). Two accumulators are merged
 * bucket by bucket, keeping for each slot the newest index (adding when both hold the same one).
 *
 * <p>{@link #getValue} returns the sum as of {@code ref} (null if no event was accepted). Rows whose
 * value or time is null, or whose value is NaN or infinite, are ignored and do not advance {@code
 * ref}: write a filtered column as {@code CASE WHEN cond THEN x ELSE 0.0 END} so that its {@code ref}
 * is the group's {@code MAX(event_time_ms)} (docs/AGGREGATES.md). {@code window_ms} and
 * {@code tiles} must be positive constants of the call site; anything else fails the job with an
 * {@link IllegalArgumentException}.
 *
 * <p>Meant for append-only input: there is deliberately no {@code retract} method, so the planner
 * rejects a query that feeds it an updating stream at planning time. {@code merge} is implemented,
 * so the planner can split it into local/global (two-phase) aggregation.
 *
 * <p>Cost: {@code accumulate} is O(1) and allocates nothing (the two arrays are allocated once, at
 * the first accepted event); {@code getValue} is O(tiles).
 */
public class SlidingSum extends AggregateFunction<Double, SlidingSum.Acc> {

    private static final long serialVersionUID = 1L;

    /** Accumulator. Public fields so that Flink maps it to a structured type for state. */
    public static class Acc {
        /** Per-slot sums; null until the first accepted event. */
        public double[] sums;
        /** Per-slot tile index of {@link #sums}; {@link Long#MIN_VALUE} marks a never-used slot. */
        public long[] tileIndex;
        /** Tile index of the maximum event time accepted so far ({@code floor(ref / tile)}). */
        public long refTile;
        /** Window length (ms) of the call site; 0 until the first accepted event. */
        public long windowMs;
        /** Number of tiles of the call site; 0 until the first accepted event. */
        public int tiles;

        public Acc() {}
    }

    @Override
    public Acc createAccumulator() {
        return new Acc();
    }

    public void accumulate(Acc acc, Double value, Long eventTimeMs, Long windowMs, Integer tiles) {
        if (value == null || eventTimeMs == null) {
            return;
        }
        final double v = value;
        if (!Double.isFinite(v)) {
            return;
        }
        final boolean first = acc.sums == null;
        if (first) {
            init(acc, windowMs, tiles);
        } else if (windowMs == null || tiles == null
                || acc.windowMs != windowMs || acc.tiles != tiles) {
            throw new IllegalArgumentException(
                    "SLIDING_SUM: window_ms and tiles must be constant per call site, got ("
                            + windowMs + ", " + tiles + ") after ("
                            + acc.windowMs + ", " + acc.tiles + ")");
        }
        final int n = acc.tiles;
        final long i = Math.floorDiv(eventTimeMs.longValue(), acc.windowMs / n);
        if (first || i > acc.refTile) {
            acc.refTile = i;
        } else if (i <= acc.refTile - n) {
            return; // older than the oldest tile of the window: cannot affect the value
        }
        final int slot = (int) Math.floorMod(i, (long) n);
        final long held = acc.tileIndex[slot];
        if (held == i) {
            acc.sums[slot] += v;
        } else {
            // held < i: a stale tile (or a never-used slot). held > i cannot happen: it would put i
            // at least `tiles` tiles behind refTile, which was handled above.
            acc.tileIndex[slot] = i;
            acc.sums[slot] = v;
        }
    }

    /**
     * Withdraws a row accumulated earlier. Needed only because the planner marks a proc-time keep-first
     * deduplication under mini-batch as possibly updating; such a deduplication only ever inserts, so in
     * practice this is not called. A row whose tile has left the ring no longer counts and is ignored.
     */
    public void retract(Acc acc, Double value, Long eventTimeMs, Long windowMs, Integer tiles) {
        if (acc.sums == null || value == null || eventTimeMs == null || !Double.isFinite(value)) {
            return;
        }
        final long i = Math.floorDiv(eventTimeMs.longValue(), acc.windowMs / acc.tiles);
        final int slot = (int) Math.floorMod(i, (long) acc.tiles);
        if (acc.tileIndex[slot] == i) {
            acc.sums[slot] -= value;
        }
    }

    public void merge(Acc acc, Iterable<Acc> others) {
        for (Acc o : others) {
            if (o == null || o.sums == null) {
                continue;
            }
            if (acc.sums == null) {
                acc.sums = o.sums.clone();
                acc.tileIndex = o.tileIndex.clone();
                acc.refTile = o.refTile;
                acc.windowMs = o.windowMs;
                acc.tiles = o.tiles;
                continue;
            }
            if (acc.windowMs != o.windowMs || acc.tiles != o.tiles) {
                throw new IllegalArgumentException(
                        "SLIDING_SUM: cannot merge accumulators with different (window_ms, tiles): ("
                                + acc.windowMs + ", " + acc.tiles + ") and ("
                                + o.windowMs + ", " + o.tiles + ")");
            }
            final int n = acc.tiles;
            final long ref = Math.max(acc.refTile, o.refTile);
            final long oldest = ref - n; // exclusive
            for (int s = 0; s < n; s++) {
                final long oi = o.tileIndex[s];
                if (oi <= oldest) {
                    continue; // empty or out of the merged window
                }
                final long ai = acc.tileIndex[s];
                if (ai == oi) {
                    acc.sums[s] += o.sums[s];
                } else if (ai < oi) {
                    acc.tileIndex[s] = oi;
                    acc.sums[s] = o.sums[s];
                }
                // ai > oi: acc holds a newer tile in that slot, so o's tile is out of the window.
            }
            acc.refTile = ref;
        }
    }

    public void resetAccumulator(Acc acc) {
        acc.sums = null;
        acc.tileIndex = null;
        acc.refTile = 0L;
        acc.windowMs = 0L;
        acc.tiles = 0;
    }

    @Override
    public Double getValue(Acc acc) {
        if (acc.sums == null) {
            return null;
        }
        final long oldest = acc.refTile - acc.tiles; // exclusive
        double total = 0.0;
        for (int s = 0; s < acc.tiles; s++) {
            if (acc.tileIndex[s] > oldest) {
                total += acc.sums[s];
            }
        }
        return total;
    }

    private static void init(Acc acc, Long windowMs, Integer tiles) {
        if (windowMs == null || tiles == null || windowMs <= 0 || tiles <= 0
                || windowMs % tiles != 0) {
            throw new IllegalArgumentException(
                    "SLIDING_SUM: window_ms and tiles must be positive constants with window_ms a"
                            + " multiple of tiles, got window_ms=" + windowMs + ", tiles=" + tiles);
        }
        final int n = tiles;
        acc.windowMs = windowMs;
        acc.tiles = n;
        acc.sums = new double[n];
        acc.tileIndex = new long[n];
        Arrays.fill(acc.tileIndex, Long.MIN_VALUE);
    }
}
