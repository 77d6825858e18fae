package dev.fyp.flink.aggregates;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import dev.fyp.flink.aggregates.Reference.Event;

/** Seeded event sequences with out-of-order, late and very late events, nulls and NaNs. */
final class RandomEvents {

    private RandomEvents() {}

    static List<Event> generate(Random rnd, int n, long windowMs) {
        List<Event> out = new ArrayList<>(n);
        long now = rnd.nextInt(1_000_000) - 500_000; // negative times too
        for (int k = 0; k < n; k++) {
            double r = rnd.nextDouble();
            if (r < 0.05) {
                now += windowMs * (1 + rnd.nextInt(3)); // a gap that empties the window
            } else if (r < 0.75) {
                now += rnd.nextInt((int) Math.max(1, windowMs / 20)); // ordinary progress
            }
            long t = now;
            double late = rnd.nextDouble();
            if (late < 0.2) {
                t = now - rnd.nextInt((int) Math.max(1, windowMs)); // out of order, mostly in window
            } else if (late < 0.25) {
                t = now - windowMs - rnd.nextInt((int) Math.max(1, 3 * windowMs)); // too late
            }
            Double v = Math.round((rnd.nextDouble() * 15.0 - 5.0) * 1000.0) / 1000.0;
            double odd = rnd.nextDouble();
            if (odd < 0.01) {
                v = null;
            } else if (odd < 0.015) {
                v = Double.NaN;
            } else if (odd < 0.02) {
                out.add(new Event(v, null));
                continue;
            }
            out.add(new Event(v, t));
        }
        return out;
    }
}
