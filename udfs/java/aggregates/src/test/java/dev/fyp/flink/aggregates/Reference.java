package dev.fyp.flink.aggregates;

import java.util.List;

/** Brute-force references, independent of the accumulators under test. */
final class Reference {

    private Reference() {}

    /** One input row; either field may be null. */
    record Event(Double v, Long t) {
        static Event of(double v, long t) {
            return new Event(v, t);
        }

        boolean accepted() {
            return v != null && t != null && Double.isFinite(v);
        }
    }

    /** Σ v·2^(-(ref-e)/h) with ref the maximum accepted event time; null if none accepted. */
    static Double decayedSum(List<Event> events, long halfLifeMs) {
        Long ref = maxTime(events);
        if (ref == null) {
            return null;
        }
        double sum = 0.0;
        for (Event e : events) {
            if (e.accepted()) {
                sum += e.v() * Math.pow(2.0, -((double) (ref - e.t())) / halfLifeMs);
            }
        }
        return sum;
    }

    /** Σ|v|·2^(-(ref-e)/h): the scale against which rounding errors are measured. */
    static double decayedScale(List<Event> events, long halfLifeMs) {
        Long ref = maxTime(events);
        if (ref == null) {
            return 0.0;
        }
        double sum = 0.0;
        for (Event e : events) {
            if (e.accepted()) {
                sum += Math.abs(e.v()) * Math.pow(2.0, -((double) (ref - e.t())) / halfLifeMs);
            }
        }
        return sum;
    }

    /** Σ v over accepted events with floor(e/tw) > floor(ref/tw) - tiles; null if none accepted. */
    static Double slidingSum(List<Event> events, long windowMs, int tiles) {
        Long ref = maxTime(events);
        if (ref == null) {
            return null;
        }
        long tw = windowMs / tiles;
        long refTile = Math.floorDiv(ref, tw);
        double sum = 0.0;
        for (Event e : events) {
            if (e.accepted() && Math.floorDiv(e.t(), tw) > refTile - tiles) {
                sum += e.v();
            }
        }
        return sum;
    }

    /** Σ|v| over the same events as {@link #slidingSum}. */
    static double slidingScale(List<Event> events, long windowMs, int tiles) {
        Long ref = maxTime(events);
        if (ref == null) {
            return 0.0;
        }
        long tw = windowMs / tiles;
        long refTile = Math.floorDiv(ref, tw);
        double sum = 0.0;
        for (Event e : events) {
            if (e.accepted() && Math.floorDiv(e.t(), tw) > refTile - tiles) {
                sum += Math.abs(e.v());
            }
        }
        return sum;
    }

    static Long maxTime(List<Event> events) {
        Long ref = null;
        for (Event e : events) {
            if (e.accepted() && (ref == null || e.t() > ref)) {
                ref = e.t();
            }
        }
        return ref;
    }

    /** |actual - expected| <= 1e-9 · max(1, scale), both null, or fails with a message. */
    static void assertClose(Double expected, Double actual, double scale, String what) {
        if (expected == null || actual == null) {
            if (expected != actual) {
                throw new AssertionError(what + ": expected " + expected + " but was " + actual);
            }
            return;
        }
        double tol = 1e-9 * Math.max(1.0, scale);
        if (!(Math.abs(expected - actual) <= tol)) {
            throw new AssertionError(
                    what + ": expected " + expected + " but was " + actual + " (tolerance " + tol + ")");
        }
    }
}
