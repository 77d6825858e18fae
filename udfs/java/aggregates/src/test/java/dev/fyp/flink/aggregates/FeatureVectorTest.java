package dev.fyp.flink.aggregates;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;

import dev.fyp.flink.aggregates.Reference.Event;
import org.apache.flink.table.data.ArrayData;
import org.apache.flink.table.data.GenericArrayData;
import org.apache.flink.table.data.StringData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** FEATURE_VECTOR against the single-column functions it replaces, cell by cell. */
class FeatureVectorTest {

    private static final SlidingSum SLIDING = new SlidingSum();
    private static final DecayedSum DECAYED = new DecayedSum();

    /** One row: a value per aggregation (null: a null {@code vals}; a null element: a null cell). */
    record Row(Double[] vals, Long t) {}

    /** A random call site: windows (ms, tiles) and half-lives. */
    record Layout(long[] windowMs, int[] tiles, long[] halfLifeMs, int aggs) {
        String spec() {
            StringBuilder b = new StringBuilder();
            for (int w = 0; w < windowMs.length; w++) {
                b.append(w == 0 ? "" : ",").append(windowMs[w]).append('/').append(tiles[w]);
            }
            b.append(';');
            for (int h = 0; h < halfLifeMs.length; h++) {
                b.append(h == 0 ? "" : ",").append(halfLifeMs[h]);
            }
            return b.toString();
        }

        int width() {
            return aggs * (windowMs.length + halfLifeMs.length);
        }

        long longest() {
            long m = 1;
            for (long w : windowMs) {
                m = Math.max(m, w);
            }
            for (long h : halfLifeMs) {
                m = Math.max(m, h);
            }
            return m;
        }
    }

    private static ArrayData array(Double[] vals) {
        return vals == null ? null : new GenericArrayData(vals);
    }

    /** getValue's binary array, boxed (null stays null). */
    private static Double[] value(FeatureVector f, FeatureVector.Acc acc) {
        ArrayData out = f.getValue(acc);
        if (out == null) {
            return null;
        }
        Double[] boxed = new Double[out.size()];
        for (int i = 0; i < boxed.length; i++) {
            boxed[i] = out.isNullAt(i) ? null : out.getDouble(i);
        }
        return boxed;
    }

    private static FeatureVector.Acc run(FeatureVector f, List<Row> rows, String spec) {
        FeatureVector.Acc acc = f.createAccumulator();
        StringData s = StringData.fromString(spec);
        for (Row r : rows) {
            f.accumulate(acc, array(r.vals()), r.t(), s);
        }
        return acc;
    }

    /** Column {@code a} of the rows as the single functions see it under the compiler's ELSE 0.0. */
    private static List<Event> column(List<Row> rows, int a) {
        List<Event> out = new ArrayList<>();
        for (Row r : rows) {
            if (r.vals() == null) {
                continue; // the whole row is ignored
            }
            Double v = r.vals()[a];
            out.add(new Event(v == null || !Double.isFinite(v) ? 0.0 : v, r.t()));
        }
        return out;
    }

    /** What the single functions return, in FeatureSet.columns() order, with the rounding scale per cell. */
    private static double[][] expected(Layout l, List<Row> rows) {
        int nw = l.windowMs().length;
        int nh = l.halfLifeMs().length;
        double[] values = new double[l.width()];
        double[] scales = new double[l.width()];
        boolean empty = false;
        for (int a = 0; a < l.aggs(); a++) {
            List<Event> col = column(rows, a);
            for (int w = 0; w < nw; w++) {
                SlidingSum.Acc acc = SLIDING.createAccumulator();
                for (Event e : col) {
                    SLIDING.accumulate(acc, e.v(), e.t(), l.windowMs()[w], l.tiles()[w]);
                }
                Double v = SLIDING.getValue(acc);
                empty |= v == null;
                values[a * nw + w] = v == null ? Double.NaN : v;
                scales[a * nw + w] = Reference.slidingScale(col, l.windowMs()[w], l.tiles()[w]);
            }
            for (int h = 0; h < nh; h++) {
                DecayedSum.Acc acc = DECAYED.createAccumulator();
                for (Event e : col) {
                    DECAYED.accumulate(acc, e.v(), e.t(), l.halfLifeMs()[h]);
                }
                Double v = DECAYED.getValue(acc);
                empty |= v == null;
                int k = l.aggs() * nw + a * nh + h;
                values[k] = v == null ? Double.NaN : v;
                scales[k] = Reference.decayedScale(col, l.halfLifeMs()[h]);
            }
        }
        return empty ? null : new double[][] {values, scales};
    }

    private static void assertMatches(double[][] expected, Double[] actual, String what) {
        if (expected == null) {
            assertNull(actual, what + ": expected no value");
            return;
        }
        assertEquals(expected[0].length, actual.length, what + ": width");
        for (int k = 0; k < actual.length; k++) {
            Reference.assertClose(expected[0][k], actual[k], expected[1][k], what + " cell " + k);
        }
    }

    private static Layout randomLayout(Random rnd) {
        int nw = rnd.nextInt(4);
        int nh = nw == 0 ? 1 + rnd.nextInt(3) : rnd.nextInt(4);
        long[] windowMs = new long[nw];
        int[] tiles = new int[nw];
        for (int w = 0; w < nw; w++) {
            tiles[w] = 1 + rnd.nextInt(12);
            windowMs[w] = (long) tiles[w] * (1 + rnd.nextInt(20_000));
        }
        long[] halfLives = new long[nh];
        for (int h = 0; h < nh; h++) {
            halfLives[h] = 1 + rnd.nextInt(100_000);
        }
        return new Layout(windowMs, tiles, halfLives, 1 + rnd.nextInt(5));
    }

    private static List<Row> randomRows(Random rnd, Layout l, int n) {
        List<Row> rows = new ArrayList<>();
        for (Event e : RandomEvents.generate(rnd, n, l.longest())) {
            if (e.v() == null) {
                rows.add(new Row(null, e.t()));
                continue;
            }
            Double[] vals = new Double[l.aggs()];
            for (int a = 0; a < l.aggs(); a++) {
                double r = rnd.nextDouble();
                if (r < 0.4) {
                    vals[a] = 0.0; // the ELSE 0.0 of a filtered column
                } else if (r < 0.42) {
                    vals[a] = null;
                } else if (r < 0.43) {
                    vals[a] = Double.NaN;
                } else {
                    vals[a] = Math.round((rnd.nextDouble() * 15.0 - 5.0) * 1000.0) / 1000.0;
                }
            }
            rows.add(new Row(vals, e.t()));
        }
        return rows;
    }

    static IntStream seeds() {
        return IntStream.range(0, 200);
    }

    @ParameterizedTest
    @MethodSource("seeds")
    void randomMatchesTheSingleFunctionsSplitAndMerged(int seed) {
        Random rnd = new Random(seed);
        Layout l = randomLayout(rnd);
        String spec = l.spec();
        List<Row> rows = randomRows(rnd, l, 1 + rnd.nextInt(300));
        double[][] expected = expected(l, rows);
        FeatureVector f = new FeatureVector();

        assertMatches(expected, value(f, run(f, rows, spec)), "seed " + seed + " single");

        List<Row> shuffled = new ArrayList<>(rows);
        Collections.shuffle(shuffled, rnd);
        assertMatches(expected, value(f, run(f, shuffled, spec)), "seed " + seed + " shuffled");

        // k local accumulators (some empty), merged by a fresh instance as a global aggregate would.
        int k = 1 + rnd.nextInt(6);
        List<List<Row>> parts = new ArrayList<>();
        for (int i = 0; i < k; i++) {
            parts.add(new ArrayList<>());
        }
        for (Row r : rows) {
            parts.get(rnd.nextInt(k)).add(r);
        }
        List<FeatureVector.Acc> accs = new ArrayList<>();
        for (List<Row> p : parts) {
            accs.add(run(f, p, spec));
        }
        FeatureVector global = new FeatureVector();
        FeatureVector.Acc merged = global.createAccumulator();
        global.merge(merged, accs);
        assertMatches(expected, value(global, merged), "seed " + seed + " merge k=" + k);
        FeatureVector.Acc chain = global.createAccumulator();
        for (FeatureVector.Acc acc : accs) {
            global.merge(chain, List.of(acc));
        }
        assertMatches(expected, value(global, chain), "seed " + seed + " chain k=" + k);

        // Keep accumulating after a merge.
        List<Row> more = randomRows(rnd, l, 50);
        StringData s = StringData.fromString(spec);
        for (Row r : more) {
            f.accumulate(merged, array(r.vals()), r.t(), s);
        }
        List<Row> all = new ArrayList<>(rows);
        all.addAll(more);
        assertMatches(expected(l, all), value(f, merged), "seed " + seed + " merge then accumulate");
    }

    @ParameterizedTest
    @MethodSource("seeds")
    void retractMatchesTheSingleFunctionsAndRestores(int seed) {
        Random rnd = new Random(seed);
        Layout l = randomLayout(rnd);
        String spec = l.spec();
        StringData s = StringData.fromString(spec);
        List<Row> rows = randomRows(rnd, l, 1 + rnd.nextInt(100));
        FeatureVector f = new FeatureVector();
        FeatureVector.Acc acc = run(f, rows, spec);
        if (acc.spec == null) {
            return;
        }
        Double[] before = value(f, acc);
        // A row no later than the reference time (so it does not move it): retracting it restores.
        Double[] vals = randomRows(rnd, l, 1).get(0).vals();
        if (vals == null) {
            vals = new Double[l.aggs()];
            java.util.Arrays.fill(vals, 1.0);
        }
        long t = acc.refMs - rnd.nextInt((int) Math.min(Integer.MAX_VALUE, l.longest()));
        f.accumulate(acc, array(vals), t, s);
        f.retract(acc, array(vals), t, s);
        double[] scale = new double[before.length];
        double[][] exp = expected(l, rows);
        for (int k = 0; k < before.length; k++) {
            scale[k] = exp[1][k] + 20.0; // the added-and-removed row's magnitude
        }
        assertMatches(new double[][] {unbox(before), scale}, value(f, acc), "seed " + seed + " restored");

        // Any row up to the reference time, retracted cell by cell as the single functions retract it.
        Row r = randomRows(rnd, l, 1).get(0);
        if (r.vals() == null || r.t() == null) {
            return;
        }
        r = new Row(r.vals(), Math.min(r.t(), acc.refMs));
        f.retract(acc, array(r.vals()), r.t(), s);
        Double[] actual = value(f, acc);
        int nw = l.windowMs().length;
        int nh = l.halfLifeMs().length;
        for (int a = 0; a < l.aggs(); a++) {
            List<Event> col = column(rows, a);
            double v = r.vals()[a] == null || !Double.isFinite(r.vals()[a]) ? 0.0 : r.vals()[a];
            for (int w = 0; w < nw; w++) {
                SlidingSum.Acc single = SLIDING.createAccumulator();
                for (Event e : col) {
                    SLIDING.accumulate(single, e.v(), e.t(), l.windowMs()[w], l.tiles()[w]);
                }
                SLIDING.retract(single, v, r.t(), l.windowMs()[w], l.tiles()[w]);
                Reference.assertClose(SLIDING.getValue(single), actual[a * nw + w],
                        Reference.slidingScale(col, l.windowMs()[w], l.tiles()[w]) + 20.0,
                        "seed " + seed + " retract sliding " + a + "/" + w);
            }
            for (int h = 0; h < nh; h++) {
                DecayedSum.Acc single = DECAYED.createAccumulator();
                for (Event e : col) {
                    DECAYED.accumulate(single, e.v(), e.t(), l.halfLifeMs()[h]);
                }
                DECAYED.retract(single, v, r.t(), l.halfLifeMs()[h]);
                Reference.assertClose(DECAYED.getValue(single), actual[l.aggs() * nw + a * nh + h],
                        Reference.decayedScale(col, l.halfLifeMs()[h]) + 20.0, "seed " + seed + " retract decayed " + a + "/" + h);
            }
        }
    }

    private static double[] unbox(Double[] xs) {
        double[] out = new double[xs.length];
        for (int i = 0; i < xs.length; i++) {
            out[i] = xs[i];
        }
        return out;
    }

    @Test
    void outputOrderIsAggregationMajorWindowsThenDecays() {
        FeatureVector f = new FeatureVector();
        // two aggregations, windows 1 s and 10 s (1 tile each), half-lives 1 s and 2 s
        String spec = "1000/1,10000/1;1000,2000";
        List<Row> rows = List.of(new Row(new Double[] {1.0, 10.0}, 0L), new Row(new Double[] {2.0, 20.0}, 2_000L));
        Double[] out = value(f, run(f, rows, spec));
        assertArrayEquals(new Double[] {
            2.0, 3.0, 20.0, 30.0, // a0: 1s, 10s; a1: 1s, 10s
            2.25, 2.5, 22.5, 25.0, // a0: h1s, h2s; a1: h1s, h2s
        }, out);
    }

    @Test
    void specListsMayBeEmpty() {
        FeatureVector f = new FeatureVector();
        List<Row> rows = List.of(new Row(new Double[] {1.0}, 0L), new Row(new Double[] {1.0}, 1_000L));
        assertArrayEquals(new Double[] {2.0}, value(f, run(f, rows, "60000/12")));
        assertArrayEquals(new Double[] {2.0}, value(f, run(f, rows, "60000/12;")));
        assertArrayEquals(new Double[] {1.5}, value(f, run(f, rows, ";1000")));
        assertArrayEquals(new Double[] {1.5}, value(f, run(f, rows, " ; 1000 ")));
    }

    @Test
    void nullsAreIgnoredOrZero() {
        FeatureVector f = new FeatureVector();
        String spec = "60000/6;1000";
        assertNull(value(f, run(f, List.of(), spec)));
        assertNull(value(f, run(f, List.of(new Row(null, 0L), new Row(new Double[] {1.0}, null)), spec)));
        // A null vals does not advance the reference time; a null element counts as 0.0 and does.
        FeatureVector.Acc acc = run(f, List.of(new Row(new Double[] {1.0}, 0L), new Row(null, 5_000L)), spec);
        assertEquals(0L, acc.refMs);
        assertArrayEquals(new Double[] {1.0, 1.0}, value(f, acc));
        acc = run(f, List.of(new Row(new Double[] {1.0}, 0L), new Row(new Double[] {null}, 1_000L)), spec);
        assertEquals(1_000L, acc.refMs);
        assertArrayEquals(new Double[] {1.0, 0.5}, value(f, acc));
    }

    @Test
    void arraysAreAllocatedOnce() {
        FeatureVector f = new FeatureVector();
        StringData spec = StringData.fromString("60000/12,3600000/12;1800000");
        FeatureVector.Acc acc = f.createAccumulator();
        // 24 tiles: sparse up to 12 entries (rows in distinct 5 s tiles), dense from the 13th.
        for (long t = 0; t < 13; t++) {
            assertNull(acc.tileIndex, "sparse at " + t + " entries");
            f.accumulate(acc, array(new Double[] {1.0, 2.0, 3.0}), t * 5_000L, spec);
        }
        ArrayData idx = acc.tileIndex;
        ArrayData sums = acc.sums;
        ArrayData decayed = acc.decayed;
        assertEquals(24, idx.size());
        assertEquals(72, sums.size());
        assertEquals(3, decayed.size());
        Random rnd = new Random(7);
        for (int i = 0; i < 10_000; i++) {
            f.accumulate(acc, array(new Double[] {1.0, 2.0, 3.0}), (long) rnd.nextInt(100_000_000), spec);
        }
        assertSame(idx, acc.tileIndex);
        assertSame(sums, acc.sums);
        assertSame(decayed, acc.decayed);
    }

    /** Accumulators whose arrays are not binary (a caller-built one) are converted, not misread. */
    @Test
    void accumulatorsWithGenericArraysWork() {
        FeatureVector f = new FeatureVector();
        String spec = "60000/6,600000/6;1000,30000";
        Random rnd = new Random(3);
        Layout l = new Layout(new long[] {60_000L, 600_000L}, new int[] {6, 6}, new long[] {1_000L, 30_000L}, 3);
        List<Row> a = randomRows(rnd, l, 200);
        List<Row> b = randomRows(rnd, l, 200);
        List<Row> all = new ArrayList<>(a);
        all.addAll(b);
        FeatureVector.Acc generic = toGeneric(run(f, a, spec));
        FeatureVector.Acc other = toGeneric(run(f, b, spec));
        FeatureVector.Acc merged = f.createAccumulator();
        f.merge(merged, List.of(toGeneric(run(f, a, spec)), other));
        assertMatches(expected(l, all), value(f, merged), "merged generic");
        FeatureVector.Acc into = toGeneric(run(f, a, spec));
        f.merge(into, List.of(other));
        assertMatches(expected(l, all), value(f, into), "merged into generic");
        StringData s = StringData.fromString(spec);
        for (Row r : b) {
            f.accumulate(generic, array(r.vals()), r.t(), s);
        }
        assertMatches(expected(l, all), value(f, generic), "accumulated into generic");
    }

    private static FeatureVector.Acc toGeneric(FeatureVector.Acc acc) {
        if (acc.spec != null) {
            if (acc.tileIndex != null) {
                acc.tileIndex = new GenericArrayData(acc.tileIndex.toLongArray());
                acc.sums = new GenericArrayData(acc.sums.toDoubleArray());
            } else {
                acc.entryTimes = new GenericArrayData(acc.entryTimes.toLongArray());
                acc.entryVals = new GenericArrayData(acc.entryVals.toDoubleArray());
            }
            acc.decayed = new GenericArrayData(acc.decayed.toDoubleArray());
        }
        return acc;
    }

    /** Rows in the same tiles share an entry; entries that left every window are dropped; past half the
     * tiles the accumulator turns dense, and both forms read the same. */
    @Test
    void fewRowsStaySparseAndSmall() {
        FeatureVector f = new FeatureVector();
        String spec = "60000/12,3600000/12;1800000"; // tiles of 5 s and 5 min: 24 tiles, sparse up to 12
        Layout l = new Layout(new long[] {60_000L, 3_600_000L}, new int[] {12, 12}, new long[] {1_800_000L}, 2);
        List<Row> rows = new ArrayList<>();
        rows.add(new Row(new Double[] {1.0, 2.0}, 1_000L));
        rows.add(new Row(new Double[] {1.0, 0.0}, 4_000L)); // same 5 s tile: same entry
        rows.add(new Row(new Double[] {0.0, 1.0}, 30_000L));
        FeatureVector.Acc acc = run(f, rows, spec);
        assertNull(acc.tileIndex);
        assertEquals(2, acc.entryTimes.size());
        assertMatches(expected(l, rows), value(f, acc), "sparse");
        rows.add(new Row(new Double[] {5.0, 5.0}, 7_200_000L)); // 2 h later: the first entries leave both windows
        acc = run(f, rows, spec);
        assertEquals(1, acc.entryTimes.size());
        assertMatches(expected(l, rows), value(f, acc), "pruned");
        Random rnd = new Random(1);
        while (acc.tileIndex == null) {
            Row r = new Row(new Double[] {rnd.nextDouble(), 1.0}, 7_200_000L + rnd.nextInt(3_600_000));
            rows.add(r);
            f.accumulate(acc, array(r.vals()), r.t(), StringData.fromString(spec));
        }
        // the 4 rows above (one live entry), then 12 new entries at least: the 13th live one is past the limit
        assertTrue(rows.size() >= 16, "dense after " + rows.size() + " rows");
        assertMatches(expected(l, rows), value(f, acc), "dense");
    }

    @Test
    void mergeDoesNotAliasTheOtherAccumulator() {
        FeatureVector f = new FeatureVector();
        FeatureVector.Acc other = run(f, List.of(new Row(new Double[] {1.0}, 0L)), "60000/6;1000");
        FeatureVector.Acc acc = f.createAccumulator();
        f.merge(acc, List.of(other, f.createAccumulator()));
        f.accumulate(acc, array(new Double[] {5.0}), 0L, StringData.fromString("60000/6;1000"));
        assertArrayEquals(new Double[] {6.0, 6.0}, value(f, acc));
        assertArrayEquals(new Double[] {1.0, 1.0}, value(f, other));
    }

    @Test
    void invalidUsesFail() {
        FeatureVector f = new FeatureVector();
        ArrayData one = array(new Double[] {1.0});
        for (String bad : new String[] {"60000/7", "60000/0", "0/1", "60000", ";0", ";-5", ";", "", "x/1", "a;b"}) {
            assertThrows(IllegalArgumentException.class,
                    () -> f.accumulate(f.createAccumulator(), one, 0L, StringData.fromString(bad)), bad);
        }
        assertThrows(IllegalArgumentException.class, () -> f.accumulate(f.createAccumulator(), one, 0L, null));
        FeatureVector.Acc acc = run(f, List.of(new Row(new Double[] {1.0}, 0L)), "60000/6;1000");
        assertThrows(IllegalArgumentException.class,
                () -> f.accumulate(acc, one, 0L, StringData.fromString("60000/3;1000")));
        assertThrows(IllegalArgumentException.class,
                () -> f.accumulate(acc, array(new Double[] {1.0, 2.0}), 0L, StringData.fromString("60000/6;1000")));
        assertThrows(IllegalArgumentException.class,
                () -> f.merge(acc, List.of(run(f, List.of(new Row(new Double[] {1.0}, 0L)), "60000/3;1000"))));
    }
}
