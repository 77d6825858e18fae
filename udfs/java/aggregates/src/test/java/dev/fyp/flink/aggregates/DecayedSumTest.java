package dev.fyp.flink.aggregates;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
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

class DecayedSumTest {

    private static final DecayedSum F = new DecayedSum();

    private static Event ev(double v, long t) {
        return Event.of(v, t);
    }

    private static DecayedSum.Acc run(List<Event> events, long halfLifeMs) {
        DecayedSum.Acc acc = F.createAccumulator();
        for (Event e : events) {
            F.accumulate(acc, e.v(), e.t(), halfLifeMs);
        }
        return acc;
    }

    /** Half-life 1 s unless stated otherwise. */
    static Stream<Arguments> table() {
        return Stream.of(
                Arguments.of("empty", List.of(), 1_000L, null),
                Arguments.of("one", List.of(ev(1, 0)), 1_000L, 1.0),
                Arguments.of("one half-life", List.of(ev(1, 0), ev(1, 1_000)), 1_000L, 1.5),
                Arguments.of("late by one half-life", List.of(ev(1, 1_000), ev(1, 0)), 1_000L, 1.5),
                Arguments.of("out of order", List.of(ev(2, 0), ev(4, 2_000), ev(8, 1_000)), 1_000L, 8.5),
                Arguments.of("same time", List.of(ev(1, 5), ev(2, 5)), 1_000L, 3.0),
                Arguments.of("negative values", List.of(ev(-1, 0), ev(1, 1_000)), 1_000L, 0.5),
                Arguments.of("negative times", List.of(ev(4, -2_000), ev(1, 0)), 1_000L, 2.0),
                Arguments.of("underflow after a long gap", List.of(ev(1, 0), ev(1, 10_000_000)), 1_000L, 1.0),
                Arguments.of("very late event underflows", List.of(ev(1, 10_000_000), ev(1, 0)), 1_000L, 1.0),
                Arguments.of("half-life of a day",
                        List.of(ev(3, 0), ev(1, 86_400_000L)), 86_400_000L, 2.5),
                Arguments.of("nulls and NaN ignored, ref unchanged",
                        List.of(new Event(null, 5_000L), new Event(7.0, null), new Event(Double.NaN, 9_000L),
                                new Event(Double.NEGATIVE_INFINITY, 9_000L), ev(1, 0)), 1_000L, 1.0),
                Arguments.of("only nulls", List.of(new Event(null, 0L), new Event(1.0, null)), 1_000L, null));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("table")
    void table(String name, List<Event> events, long halfLifeMs, Double expected) {
        DecayedSum.Acc acc = run(events, halfLifeMs);
        Double actual = F.getValue(acc);
        double scale = Reference.decayedScale(events, halfLifeMs);
        Reference.assertClose(expected, actual, scale, name);
        Reference.assertClose(Reference.decayedSum(events, halfLifeMs), actual, scale, name + " (brute force)");
        if (expected != null) {
            assertEquals(Reference.maxTime(events), acc.ref, name + " (ref = max accepted event time)");
        }
        List<Event> reversed = new ArrayList<>(events);
        Collections.reverse(reversed);
        Reference.assertClose(expected, F.getValue(run(reversed, halfLifeMs)), scale, name + " (reversed)");
    }

    static IntStream seeds() {
        return IntStream.range(0, 300);
    }

    @ParameterizedTest
    @MethodSource("seeds")
    void randomSplitMergeMatchesSingleAndBruteForce(int seed) {
        Random rnd = new Random(seed);
        long halfLifeMs = 1 + rnd.nextInt(100_000);
        long spread = halfLifeMs * (1 + rnd.nextInt(4)); // how far events jump and arrive late
        List<Event> events = RandomEvents.generate(rnd, 1 + rnd.nextInt(400), spread);

        Double expected = Reference.decayedSum(events, halfLifeMs);
        double scale = Reference.decayedScale(events, halfLifeMs);
        Double single = F.getValue(run(events, halfLifeMs));
        Reference.assertClose(expected, single, scale, "seed " + seed + " single");

        List<Event> shuffled = new ArrayList<>(events);
        Collections.shuffle(shuffled, rnd);
        Reference.assertClose(expected, F.getValue(run(shuffled, halfLifeMs)), scale,
                "seed " + seed + " shuffled");

        List<Event> a = new ArrayList<>();
        List<Event> b = new ArrayList<>();
        for (Event e : events) {
            (rnd.nextBoolean() ? a : b).add(e);
        }
        DecayedSum.Acc ab = run(a, halfLifeMs);
        F.merge(ab, List.of(run(b, halfLifeMs)));
        Reference.assertClose(expected, F.getValue(ab), scale, "seed " + seed + " merge a<-b");
        DecayedSum.Acc ba = run(b, halfLifeMs);
        F.merge(ba, List.of(run(a, halfLifeMs)));
        Reference.assertClose(expected, F.getValue(ba), scale, "seed " + seed + " merge b<-a");
        if (expected != null) {
            assertEquals(Reference.maxTime(events), ab.ref, "seed " + seed + " merged ref");
        }

        int k = 1 + rnd.nextInt(6);
        List<List<Event>> parts = new ArrayList<>();
        for (int i = 0; i < k; i++) {
            parts.add(new ArrayList<>());
        }
        for (Event e : events) {
            parts.get(rnd.nextInt(k)).add(e);
        }
        List<DecayedSum.Acc> accs = new ArrayList<>();
        for (List<Event> p : parts) {
            accs.add(run(p, halfLifeMs));
        }
        DecayedSum.Acc global = F.createAccumulator();
        F.merge(global, accs);
        Reference.assertClose(expected, F.getValue(global), scale, "seed " + seed + " merge k=" + k);

        List<Event> more = RandomEvents.generate(rnd, 50, spread);
        for (Event e : more) {
            F.accumulate(ab, e.v(), e.t(), halfLifeMs);
        }
        List<Event> all = new ArrayList<>(events);
        all.addAll(more);
        Reference.assertClose(Reference.decayedSum(all, halfLifeMs), F.getValue(ab),
                Reference.decayedScale(all, halfLifeMs), "seed " + seed + " merge then accumulate");
    }

    @Test
    void readTimeDecayOfTheResult() {
        // The reader's formula: value · 2^(-(now - ref) / h) equals the sum decayed to `now`.
        long h = 60_000L;
        List<Event> events = List.of(ev(1, 0), ev(2, 30_000), ev(4, 10_000));
        DecayedSum.Acc acc = run(events, h);
        long now = 150_000L;
        double atNow = F.getValue(acc) * Math.pow(2.0, -((double) (now - acc.ref)) / h);
        double direct = 1 * Math.pow(2.0, -150_000.0 / h) + 2 * Math.pow(2.0, -120_000.0 / h)
                + 4 * Math.pow(2.0, -140_000.0 / h);
        Reference.assertClose(direct, atNow, direct, "read-time decay");
    }

    @Test
    void mergeWithEmptyAccumulators() {
        DecayedSum.Acc acc = F.createAccumulator();
        F.merge(acc, List.of(F.createAccumulator()));
        assertNull(F.getValue(acc));
        F.merge(acc, List.of(run(List.of(ev(2, 7)), 1_000L), F.createAccumulator()));
        assertEquals(2.0, F.getValue(acc));
        assertEquals(7L, acc.ref);
    }

    @Test
    void invalidParametersFail() {
        assertThrows(IllegalArgumentException.class, () -> F.accumulate(F.createAccumulator(), 1.0, 0L, 0L));
        assertThrows(IllegalArgumentException.class, () -> F.accumulate(F.createAccumulator(), 1.0, 0L, -5L));
        assertThrows(IllegalArgumentException.class, () -> F.accumulate(F.createAccumulator(), 1.0, 0L, null));
        DecayedSum.Acc acc = run(List.of(ev(1, 0)), 1_000L);
        assertThrows(IllegalArgumentException.class, () -> F.accumulate(acc, 1.0, 0L, 2_000L));
        assertThrows(IllegalArgumentException.class,
                () -> F.merge(acc, List.of(run(List.of(ev(1, 0)), 2_000L))));
    }
}
