package dev.fyp.flink.aggregates;

import org.apache.flink.table.functions.AggregateFunction;

/**
 * {@code DECAYED_SUM(value DOUBLE, event_time_ms BIGINT, half_life_ms BIGINT) -> DOUBLE}: an
 * exponentially decayed sum (Twitter/X "real-time aggregates" style).
 *
 * <p>The sum is kept referenced to {@code ref}, the maximum event time accepted so far:
 *
 * <pre>
 *   value = Σ v_i · 2^(-(ref - e_i) / h)
 * </pre>
 *
 * <p>An event newer than {@code ref} first decays the sum to its own time ({@code sum *=
 * 2^(-(e - ref) / h)}), then adds its value and becomes the new {@code ref}. An older (late or
 * out-of-order) event adds {@code v · 2^(-(ref - e) / h)}. The result therefore does not depend on
 * the order of the events (up to floating-point rounding). Two accumulators are merged by rebasing
 * both to the larger {@code ref}.
 *
 * <p>{@link #getValue} returns the sum as of {@code ref} (null if no event was accepted). A reader
 * decays it to its own time with {@code value · 2^(-(now - ref) / h)}, where {@code ref} is {@code
 * MAX(event_time_ms)} over the same group. Ignored rows (below) do not advance {@code ref}, so a
 * filtered column should be written {@code CASE WHEN cond THEN x ELSE 0.0 END} (not with a NULL
 * {@code ELSE}) for its {@code ref} to be the group's {@code MAX(event_time_ms)}; see
 * docs/AGGREGATES.md.
 *
 * <p>Rows whose value or event time is null, or whose value is NaN or infinite (which would poison
 * the long-lived state for good), are ignored. The half-life must be a positive constant of the
 * call site; anything else fails the job with an {@link IllegalArgumentException}.
 *
 * <p>Meant for append-only input: there is deliberately no {@code retract} method, so the planner
 * rejects a query that feeds it an updating stream at planning time instead of failing at run time.
 * {@code merge} is implemented, so the planner can split it into local/global (two-phase)
 * aggregation.
 */
public class DecayedSum extends AggregateFunction<Double, DecayedSum.Acc> {

    private static final long serialVersionUID = 1L;

    /** Accumulator. Public fields so that Flink maps it to a structured type for state. */
    public static class Acc {
        /** Decayed sum as of {@link #ref}. */
        public double sum;
        /** Maximum event time (ms) accepted so far; meaningless while {@link #empty}. */
        public long ref;
        /** Half-life (ms) of the call site; 0 until the first accepted event. */
        public long halfLifeMs;
        /** True until the first accepted event. */
        public boolean empty = true;

        public Acc() {}
    }

    @Override
    public Acc createAccumulator() {
        return new Acc();
    }

    public void accumulate(Acc acc, Double value, Long eventTimeMs, Long halfLifeMs) {
        if (value == null || eventTimeMs == null) {
            return;
        }
        final double v = value;
        if (!Double.isFinite(v)) {
            return;
        }
        final long h = checkHalfLife(halfLifeMs);
        final long e = eventTimeMs;
        if (acc.empty) {
            acc.sum = v;
            acc.ref = e;
            acc.halfLifeMs = h;
            acc.empty = false;
            return;
        }
        if (acc.halfLifeMs != h) {
            throw new IllegalArgumentException(
                    "DECAYED_SUM: half_life_ms must be constant per call site, got "
                            + h + " after " + acc.halfLifeMs);
        }
        if (e > acc.ref) {
            acc.sum = acc.sum * decay(e - acc.ref, h) + v;
            acc.ref = e;
        } else {
            acc.sum += v * decay(acc.ref - e, h);
        }
    }

    /**
     * Withdraws a row accumulated earlier: subtracts its contribution as of the current reference time.
     * Needed only because the planner marks a proc-time keep-first deduplication under mini-batch as
     * possibly updating; such a deduplication only ever inserts, so in practice this is not called.
     */
    public void retract(Acc acc, Double value, Long eventTimeMs, Long halfLifeMs) {
        if (acc.empty || value == null || eventTimeMs == null || !Double.isFinite(value)) {
            return;
        }
        acc.sum -= value * Math.pow(0.5, (double) (acc.ref - eventTimeMs) / (double) acc.halfLifeMs);
    }

    public void merge(Acc acc, Iterable<Acc> others) {
        for (Acc o : others) {
            if (o == null || o.empty) {
                continue;
            }
            if (acc.empty) {
                acc.sum = o.sum;
                acc.ref = o.ref;
                acc.halfLifeMs = o.halfLifeMs;
                acc.empty = false;
                continue;
            }
            if (acc.halfLifeMs != o.halfLifeMs) {
                throw new IllegalArgumentException(
                        "DECAYED_SUM: cannot merge accumulators with different half-lives ("
                                + acc.halfLifeMs + " and " + o.halfLifeMs + ")");
            }
            final long h = acc.halfLifeMs;
            if (o.ref > acc.ref) {
                acc.sum = acc.sum * decay(o.ref - acc.ref, h) + o.sum;
                acc.ref = o.ref;
            } else {
                acc.sum += o.sum * decay(acc.ref - o.ref, h);
            }
        }
    }

    public void resetAccumulator(Acc acc) {
        acc.sum = 0.0;
        acc.ref = 0L;
        acc.halfLifeMs = 0L;
        acc.empty = true;
    }

    @Override
    public Double getValue(Acc acc) {
        return acc.empty ? null : acc.sum;
    }

    /** 2^(-dt / h) for dt >= 0. */
    static double decay(long dtMs, long halfLifeMs) {
        return Math.pow(0.5, (double) dtMs / (double) halfLifeMs);
    }

    private static long checkHalfLife(Long halfLifeMs) {
        if (halfLifeMs == null || halfLifeMs <= 0) {
            throw new IllegalArgumentException(
                    "DECAYED_SUM: half_life_ms must be a positive constant, got " + halfLifeMs);
        }
        return halfLifeMs;
    }
}
