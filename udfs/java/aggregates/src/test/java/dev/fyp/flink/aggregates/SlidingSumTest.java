package dev.fyp.flink.aggregates;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;
import java.util.stream.Stream;

import dev.fyp.flink.aggregates.Reference.Event;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class SlidingSumTest {

    private static final SlidingSum F = new SlidingSum();

    private static Event ev(double v, long t) {
        return Event.of(v, t);
    }

    private static SlidingSum.Acc run(List<Event> events, long windowMs, int tiles) {
        SlidingSum.Acc acc = F.createAccumulator();
        for (Event e : events) {
            F.accumulate(acc, e.v(), e.t(), windowMs, tiles);
        }
        return acc;
    }

    /** window 60 s in 6 tiles of 10 s unless stated otherwise. */
    static Stream<Arguments> table() {
        return Stream.of(
                Arguments.of("empty", List.of(), 60_000L, 6, null),
                Arguments.of("one", List.of(ev(1, 0)), 60_000L, 6, 1.0),
                Arguments.of("same tile", List.of(ev(1, 0), ev(1, 1), ev(1, 2)), 60_000L, 6, 3.0),
                Arguments.of("last tile of window", List.of(ev(1, 0), ev(2, 59_999)), 60_000L, 6, 3.0),
                Arguments.of("first tile expires", List.of(ev(1, 0), ev(2, 60_000)), 60_000L, 6, 2.0),
                Arguments.of("tile granularity: 50.001 s ago is out",
                        List.of(ev(1, 9_999), ev(2, 60_000)), 60_000L, 6, 2.0),
                Arguments.of("tile granularity: 50 s ago is in",
                        List.of(ev(1, 10_000), ev(2, 60_000)), 60_000L, 6, 3.0),
                Arguments.of("tile granularity: 59.999 s ago is in",
                        List.of(ev(1, 10_000), ev(2, 69_999)), 60_000L, 6, 3.0),
                Arguments.of("late, too old: dropped", List.of(ev(2, 60_000), ev(1, 0)), 60_000L, 6, 2.0),
                Arguments.of("late, in window", List.of(ev(2, 60_000), ev(1, 15_000)), 60_000L, 6, 3.0),
                Arguments.of("big jump", List.of(ev(1, 0), ev(5, 1_000_000), ev(1, 999_999)), 60_000L, 6, 6.0),
                Arguments.of("slot reuse resets the old tile",
                        List.of(ev(1, 0), ev(2, 60_000), ev(4, 5_000), ev(8, 65_000)), 60_000L, 6, 10.0),
                Arguments.of("out of order into a reused slot",
                        List.of(ev(4, 65_000), ev(1, 0), ev(2, 60_000), ev(8, 5_000)), 60_000L, 6, 6.0),
                Arguments.of("negative times", List.of(ev(1, -1), ev(1, 0)), 60_000L, 6, 2.0),
                Arguments.of("negative times, floor division",
                        List.of(ev(1, -50_001), ev(1, 0)), 60_000L, 6, 1.0),
                Arguments.of("negative values", List.of(ev(-1, 0), ev(1, 10_000)), 60_000L, 6, 0.0),
                Arguments.of("nulls and NaN ignored",
                        List.of(new Event(null, 0L), new Event(1.0, null), new Event(Double.NaN, 1L),
                                new Event(Double.POSITIVE_INFINITY, 1L), ev(3, 0)), 60_000L, 6, 3.0),
                Arguments.of("only nulls", List.of(new Event(null, 0L), new Event(1.0, null)), 60_000L, 6, null),
                Arguments.of("one tile", List.of(ev(1, 0), ev(2, 999), ev(4, 1_000)), 1_000L, 1, 4.0),
                Arguments.of("one tile, late", List.of(ev(4, 1_000), ev(2, 999), ev(1, 1_001)), 1_000L, 1, 5.0),
                Arguments.of("tile of 1 ms", List.of(ev(1, 0), ev(2, 1), ev(4, 2), ev(8, 3)), 3L, 3, 14.0));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("table")
    void table(String name, List<Event> events, long windowMs, int tiles, Double expected) {
        Double actual = F.getValue(run(events, windowMs, tiles));
        assertEquals(expected, actual, name);
        assertEquals(Reference.slidingSum(events, windowMs, tiles), actual, name + " (brute force)");
        List<Event> reversed = new ArrayList<>(events);
        Collections.reverse(reversed);
        assertEquals(expected, F.getValue(run(reversed, windowMs, tiles)), name + " (reversed)");
    }

    static IntStream seeds() {
        return IntStream.range(0, 300);
    }

    @ParameterizedTest
    @MethodSource("seeds")
    void randomSplitMergeMatchesSingleAndBruteForce(int seed) {
        Random rnd = new Random(seed);
        int tiles = 1 + rnd.nextInt(12);
        long windowMs = (long) tiles * (1 + rnd.nextInt(20_000));
        List<Event> events = RandomEvents.generate(rnd, 1 + rnd.nextInt(400), windowMs);

        Double expected = Reference.slidingSum(events, windowMs, tiles);
        double scale = Reference.slidingScale(events, windowMs, tiles);
        Double single = F.getValue(run(events, windowMs, tiles));
        Reference.assertClose(expected, single, scale, "seed " + seed + " single");

        List<Event> shuffled = new ArrayList<>(events);
        Collections.shuffle(shuffled, rnd);
        Reference.assertClose(expected, F.getValue(run(shuffled, windowMs, tiles)), scale,
                "seed " + seed + " shuffled");

        // Two accumulators, merged both ways.
        List<Event> a = new ArrayList<>();
        List<Event> b = new ArrayList<>();
        for (Event e : events) {
            (rnd.nextBoolean() ? a : b).add(e);
        }
        SlidingSum.Acc ab = run(a, windowMs, tiles);
        F.merge(ab, List.of(run(b, windowMs, tiles)));
        Reference.assertClose(expected, F.getValue(ab), scale, "seed " + seed + " merge a<-b");
        SlidingSum.Acc ba = run(b, windowMs, tiles);
        F.merge(ba, List.of(run(a, windowMs, tiles)));
        Reference.assertClose(expected, F.getValue(ba), scale, "seed " + seed + " merge b<-a");

        // k accumulators (some empty) merged into a fresh one through one Iterable, as a global
        // aggregate does with the partial results of local ones; then merged again in a chain.
        int k = 1 + rnd.nextInt(6);
        List<List<Event>> parts = new ArrayList<>();
        for (int i = 0; i < k; i++) {
            parts.add(new ArrayList<>());
        }
        for (Event e : events) {
            parts.get(rnd.nextInt(k)).add(e);
        }
        List<SlidingSum.Acc> accs = new ArrayList<>();
        for (List<Event> p : parts) {
            accs.add(run(p, windowMs, tiles));
        }
        SlidingSum.Acc global = F.createAccumulator();
        F.merge(global, accs);
        Reference.assertClose(expected, F.getValue(global), scale, "seed " + seed + " merge k=" + k);
        SlidingSum.Acc chain = F.createAccumulator();
        for (SlidingSum.Acc acc : accs) {
            F.merge(chain, List.of(acc));
        }
        Reference.assertClose(expected, F.getValue(chain), scale, "seed " + seed + " chain k=" + k);

        // Keep accumulating after a merge (the global accumulator of a later bundle).
        List<Event> more = RandomEvents.generate(rnd, 50, windowMs);
        SlidingSum.Acc merged = run(a, windowMs, tiles);
        F.merge(merged, List.of(run(b, windowMs, tiles)));
        for (Event e : more) {
            F.accumulate(merged, e.v(), e.t(), windowMs, tiles);
        }
        List<Event> all = new ArrayList<>(events);
        all.addAll(more);
        Reference.assertClose(Reference.slidingSum(all, windowMs, tiles), F.getValue(merged),
                Reference.slidingScale(all, windowMs, tiles), "seed " + seed + " merge then accumulate");
    }

    @Test
    void mergeDoesNotAliasTheOtherAccumulator() {
        SlidingSum.Acc other = run(List.of(ev(1, 0)), 60_000L, 6);
        SlidingSum.Acc acc = F.createAccumulator();
        F.merge(acc, List.of(other));
        F.accumulate(acc, 5.0, 1L, 60_000L, 6);
        assertEquals(6.0, F.getValue(acc));
        assertEquals(1.0, F.getValue(other));
    }

    @Test
    void mergeWithEmptyAccumulators() {
        SlidingSum.Acc acc = F.createAccumulator();
        F.merge(acc, List.of(F.createAccumulator(), F.createAccumulator()));
        assertNull(F.getValue(acc));
        SlidingSum.Acc one = run(List.of(ev(2, 7)), 60_000L, 6);
        F.merge(one, List.of(F.createAccumulator()));
        assertEquals(2.0, F.getValue(one));
    }

    @Test
    void arraysAreAllocatedOnce() {
        SlidingSum.Acc acc = F.createAccumulator();
        F.accumulate(acc, 1.0, 0L, 60_000L, 6);
        double[] sums = acc.sums;
        long[] idx = acc.tileIndex;
        Random rnd = new Random(7);
        for (int i = 0; i < 10_000; i++) {
            F.accumulate(acc, 1.0, (long) rnd.nextInt(10_000_000), 60_000L, 6);
        }
        assertSame(sums, acc.sums);
        assertSame(idx, acc.tileIndex);
        assertEquals(6, acc.sums.length);
    }

    @Test
    void invalidParametersFail() {
        assertThrows(IllegalArgumentException.class,
                () -> F.accumulate(F.createAccumulator(), 1.0, 0L, 60_000L, 7)); // not a multiple
        assertThrows(IllegalArgumentException.class,
                () -> F.accumulate(F.createAccumulator(), 1.0, 0L, 60_000L, 0));
        assertThrows(IllegalArgumentException.class,
                () -> F.accumulate(F.createAccumulator(), 1.0, 0L, 0L, 1));
        assertThrows(IllegalArgumentException.class,
                () -> F.accumulate(F.createAccumulator(), 1.0, 0L, null, 6));
        SlidingSum.Acc acc = run(List.of(ev(1, 0)), 60_000L, 6);
        assertThrows(IllegalArgumentException.class, () -> F.accumulate(acc, 1.0, 0L, 60_000L, 3));
        assertThrows(IllegalArgumentException.class,
                () -> F.merge(acc, List.of(run(List.of(ev(1, 0)), 60_000L, 3))));
    }
}
