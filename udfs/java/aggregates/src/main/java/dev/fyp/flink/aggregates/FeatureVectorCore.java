// One file (~780 lines): accumulate, retract and the three merges all read and write the accumulator's sparse and
// dense layouts directly, which is what keeps the per-event path free of allocation; split, they would share those
// invariants across files. FeatureVectorTest covers each path.
package dev.fyp.flink.aggregates;

import java.util.Arrays;

import org.apache.flink.core.memory.MemorySegment;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.data.ArrayData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.data.binary.BinaryArrayData;
import org.apache.flink.table.functions.AggregateFunction;

/**
 * {@code FEATURE_VECTOR(vals ARRAY<DOUBLE>, event_time_ms BIGINT, spec STRING) -> ARRAY<DOUBLE>}: every
 * {@link SlidingSum} and {@link DecayedSum} of a feature set in one accumulator.
 *
 * <p>{@code vals} holds one value per aggregation (the same length on every row of a call site). {@code
 * spec} is a constant of the call site listing the sliding windows as {@code window_ms/tiles} and, after
 * a {@code ;}, the half-lives in ms, e.g. {@code "60000/12,3600000/12;1800000,86400000"} (either list may
 * be empty: {@code ";1800000"}, {@code "60000/12;"}). With {@code A} aggregations, {@code W} windows and
 * {@code H} half-lives the result has {@code A·W + A·H} elements, in this order:
 *
 * <pre>
 *   for each aggregation a: for each window w:    SLIDING_SUM(vals[a], event_time_ms, w)
 *   for each aggregation a: for each half-life h: DECAYED_SUM(vals[a], event_time_ms, h)
 * </pre>
 *
 * <p>i.e. the order of {@code FeatureSet.columns()} (featurespec/declaration.py). Each element equals what the
 * single function would return for that column when every row's value is non-null (the feature
 * compiler's {@code CASE WHEN ... THEN x ELSE 0.0 END}): the same tiles, the same late-drop rule, the
 * same decay formula and the same merge rules, up to floating-point rounding. All cells share one
 * reference time, the maximum accepted event time, and one ring of tile indexes per window; only the
 * sums are per aggregation. So an event costs O(A·(W + H)) additions and W + H (not A·H) {@code pow}
 * calls, and allocates nothing after the first event of a key.
 *
 * <p>Rows whose {@code vals} or event time is null are ignored (they do not advance the reference time).
 * A null, NaN or infinite element counts as 0.0 (the row still advances the reference time of every
 * cell); the single functions would skip the row for that column only, which a shared reference time
 * cannot express. A {@code spec} that is not constant per call site, malformed, or a {@code vals} whose
 * length changes fails the job with an {@link IllegalArgumentException}.
 *
 * <p>{@code retract} subtracts like the single functions do (the planner demands it when the input may
 * be updating). Two SQL functions share this code: {@link FeatureVector} has {@code merge}, which makes
 * two-phase (local/global) aggregation possible; {@link FeatureVectorOnePhase} has not, so the planner
 * aggregates its call site once, after the shuffle, whatever the job's phase strategy. See
 * docs/AGGREGATES.md.
 */
@FunctionHint(output = @DataTypeHint(value = "ARRAY<DOUBLE>", bridgedTo = ArrayData.class))
public abstract class FeatureVectorCore extends AggregateFunction<ArrayData, FeatureVectorCore.Acc> {

    private static final long serialVersionUID = 1L;

    /**
     * Accumulator. Public fields so that Flink maps it to a structured type for state. The arrays are null
     * until the first accepted row; then sized once and updated in place.
     *
     * <p>An accumulator starts <em>sparse</em>: a short list of (tile set, sums) entries instead of the
     * dense ring of every tile, and turns dense once it holds more than {@link Spec#sparseLimit} entries.
     * Most keys of a high-cardinality entity (user × hashtag, a long-tail video) see a few events a day, and
     * most local (mini-batch) accumulators see one: the video set's dense accumulator is ~5.6 KB, one entry
     * ~110 bytes, and every accumulator is serialized once per key and bundle (to the global aggregate, to
     * RocksDB). Both forms give the same values (the entries are summed per window at read time).
     *
     * <p>The arrays are Flink's binary arrays ({@link BinaryArrayData}) rather than {@code long[]} / {@code
     * double[]}: an accumulator is serialized once per key and bundle (local to global aggregation over the
     * network, and to RocksDB), and Flink serializes a primitive Java array element by element, boxing each
     * one, while a binary array is copied as one block. Reads and writes go straight to its memory.
     */
    public static class Acc {
        /** The call site's spec string; null while empty. */
        public String spec;
        /** Number of aggregations (length of {@code vals}). */
        public int aggs;
        /** Maximum accepted event time (ms), shared by every cell. */
        public long refMs;
        /**
         * Sparse form (while {@link #tileIndex} is null): one entry per distinct set of tiles, the event time
         * of its first row (any time in the same tile of every window reads the same), pruned once it has
         * left every window.
         */
        @DataTypeHint(value = "ARRAY<BIGINT NOT NULL>", bridgedTo = ArrayData.class)
        public ArrayData entryTimes;
        /** Sparse form: per entry, one sum per aggregation: {@code entryVals[entry * aggs + a]}. */
        @DataTypeHint(value = "ARRAY<DOUBLE NOT NULL>", bridgedTo = ArrayData.class)
        public ArrayData entryVals;
        /**
         * Dense form: tile index held by each slot, windows one after the other: slot {@code s} of window
         * {@code w} at {@code tileOffset[w] + s}. {@link Long#MIN_VALUE} marks a never-used slot. Null while
         * the accumulator is sparse.
         */
        @DataTypeHint(value = "ARRAY<BIGINT NOT NULL>", bridgedTo = ArrayData.class)
        public ArrayData tileIndex;
        /** Per slot, one sum per aggregation: {@code sums[(tileOffset[w] + s) * aggs + a]}. */
        @DataTypeHint(value = "ARRAY<DOUBLE NOT NULL>", bridgedTo = ArrayData.class)
        public ArrayData sums;
        /** Decayed sums as of {@link #refMs}: {@code decayed[a * halfLives + h]}. */
        @DataTypeHint(value = "ARRAY<DOUBLE NOT NULL>", bridgedTo = ArrayData.class)
        public ArrayData decayed;

        public Acc() {}
    }

    /** A parsed spec. */
    static final class Spec {
        final String text;
        final long[] tileMs;
        final int[] tiles;
        /** Start of each window's slots in {@code Acc.tileIndex}; length windows + 1. */
        final int[] tileOffset;
        final long[] halfLifeMs;

        Spec(String text, long[] tileMs, int[] tiles, long[] halfLifeMs) {
            this.text = text;
            this.tileMs = tileMs;
            this.tiles = tiles;
            this.halfLifeMs = halfLifeMs;
            this.tileOffset = new int[tiles.length + 1];
            for (int w = 0; w < tiles.length; w++) {
                tileOffset[w + 1] = tileOffset[w] + tiles[w];
            }
        }

        int windows() {
            return tiles.length;
        }

        int halfLives() {
            return halfLifeMs.length;
        }

        int totalTiles() {
            return tileOffset[tiles.length];
        }

        /**
         * Entries a sparse accumulator may hold before it turns dense: half the tiles, where the two forms'
         * sizes are still 2:1 apart and reading the entries costs no more than reading the tiles.
         */
        int sparseLimit() {
            return totalTiles() / 2;
        }

        /** Whether event times {@code e1} and {@code e2} fall in the same tile of every window. */
        boolean sameTiles(long e1, long e2) {
            for (int w = 0; w < tiles.length; w++) {
                if (Math.floorDiv(e1, tileMs[w]) != Math.floorDiv(e2, tileMs[w])) {
                    return false;
                }
            }
            return true;
        }

        /** Whether an event at {@code e} has left every window as of reference time {@code ref}. */
        boolean expired(long e, long ref) {
            for (int w = 0; w < tiles.length; w++) {
                if (Math.floorDiv(e, tileMs[w]) > Math.floorDiv(ref, tileMs[w]) - tiles[w]) {
                    return false;
                }
            }
            return true;
        }

        /** Parses {@code "w/t,w/t;h,h"}. */
        static Spec parse(String text) {
            if (text == null) {
                throw new IllegalArgumentException("FEATURE_VECTOR: spec must be a constant string, got NULL");
            }
            int semi = text.indexOf(';');
            String windowsPart = semi < 0 ? text : text.substring(0, semi);
            String halfLivesPart = semi < 0 ? "" : text.substring(semi + 1);
            try {
                String[] ws = split(windowsPart);
                long[] tileMs = new long[ws.length];
                int[] tiles = new int[ws.length];
                for (int i = 0; i < ws.length; i++) {
                    int slash = ws[i].indexOf('/');
                    if (slash < 0) {
                        throw new IllegalArgumentException("window '" + ws[i] + "' is not window_ms/tiles");
                    }
                    long windowMs = Long.parseLong(ws[i].substring(0, slash).trim());
                    int n = Integer.parseInt(ws[i].substring(slash + 1).trim());
                    if (windowMs <= 0 || n <= 0 || windowMs % n != 0) {
                        throw new IllegalArgumentException("window " + windowMs + "/" + n
                                + ": window_ms and tiles must be positive with window_ms a multiple of tiles");
                    }
                    tileMs[i] = windowMs / n;
                    tiles[i] = n;
                }
                String[] hs = split(halfLivesPart);
                long[] halfLives = new long[hs.length];
                for (int i = 0; i < hs.length; i++) {
                    halfLives[i] = Long.parseLong(hs[i].trim());
                    if (halfLives[i] <= 0) {
                        throw new IllegalArgumentException("half-life " + halfLives[i] + " must be positive");
                    }
                }
                if (tiles.length == 0 && halfLives.length == 0) {
                    throw new IllegalArgumentException("no windows and no half-lives");
                }
                return new Spec(text, tileMs, tiles, halfLives);
            } catch (NumberFormatException ex) {
                throw new IllegalArgumentException("FEATURE_VECTOR: malformed spec '" + text + "'", ex);
            } catch (IllegalArgumentException ex) {
                throw new IllegalArgumentException("FEATURE_VECTOR: spec '" + text + "': " + ex.getMessage(), ex);
            }
        }

        private static String[] split(String list) {
            String trimmed = list.trim();
            return trimmed.isEmpty() ? new String[0] : trimmed.split(",");
        }
    }

    /** The last spec seen by this instance (one call site per instance, so one spec). */
    private transient Spec cached;
    /** The StringData of {@link #cached}, to recognise the call site's constant without decoding it. */
    private transient StringData cachedData;
    /** Per-row cleaned values, reused. */
    private transient double[] scratch;
    /** Per-entry values while a sparse accumulator turns dense (the row being added is in scratch). */
    private transient double[] replay;
    /** Per-half-life decay factors of the current row, reused. */
    private transient double[] factors;

    @Override
    public Acc createAccumulator() {
        return new Acc();
    }

    private Spec spec(StringData data) {
        if (data == null) {
            throw new IllegalArgumentException("FEATURE_VECTOR: spec must be a constant string, got NULL");
        }
        if (data != cachedData) {
            if (cachedData == null || !cachedData.equals(data)) {
                String text = data.toString();
                if (cached == null || !cached.text.equals(text)) {
                    cached = Spec.parse(text);
                }
            }
            cachedData = data;
        }
        return cached;
    }

    private Spec spec(String text) {
        if (cached == null || !(cached.text == text || cached.text.equals(text))) {
            cached = Spec.parse(text);
            cachedData = null;
        }
        return cached;
    }

    /** Checks that {@code acc} was built for {@code s}; makes later checks a reference comparison. */
    private static void checkSameSpec(Acc acc, Spec s) {
        if (acc.spec != s.text) {
            if (!acc.spec.equals(s.text)) {
                throw new IllegalArgumentException("FEATURE_VECTOR: spec must be constant per call site, got '"
                        + s.text + "' after '" + acc.spec + "'");
            }
            acc.spec = s.text;
        }
    }

    /** A new accumulator holding one row: sparse with one entry, or dense if the spec allows no entries. */
    private static void init(Acc acc, Spec s, double[] v, int aggs, long e) {
        acc.spec = s.text;
        acc.aggs = aggs;
        acc.refMs = e;
        acc.decayed = BinaryArrayData.fromPrimitiveArray(new double[aggs * s.halfLives()]);
        if (s.sparseLimit() >= 1) {
            acc.entryTimes = BinaryArrayData.fromPrimitiveArray(new long[] {e});
            acc.entryVals = BinaryArrayData.fromPrimitiveArray(Arrays.copyOf(v, aggs));
        } else {
            initTiles(acc, s);
            addToTiles(acc, s, v, e, e, true);
        }
    }

    private static void initTiles(Acc acc, Spec s) {
        long[] tiles = new long[s.totalTiles()];
        Arrays.fill(tiles, Long.MIN_VALUE);
        acc.tileIndex = BinaryArrayData.fromPrimitiveArray(tiles);
        acc.sums = BinaryArrayData.fromPrimitiveArray(new double[s.totalTiles() * acc.aggs]);
    }

    private static boolean sparse(Acc acc) {
        return acc.tileIndex == null;
    }

    /** Turns a sparse accumulator dense: its entries go into the ring as rows would, as of its {@code refMs}. */
    private void densify(Acc acc, Spec s) {
        final ArrayData times = acc.entryTimes;
        final ArrayData vals = acc.entryVals;
        final int aggs = acc.aggs;
        initTiles(acc, s);
        acc.entryTimes = null;
        acc.entryVals = null;
        double[] v = replay;
        if (v == null || v.length < aggs) {
            v = replay = new double[aggs];
        }
        for (int k = 0; k < times.size(); k++) {
            for (int a = 0; a < aggs; a++) {
                v[a] = vals.getDouble(k * aggs + a);
            }
            addToTiles(acc, s, v, times.getLong(k), acc.refMs, false);
        }
    }

    /**
     * Adds one row's values to the tiles of a dense accumulator, skipping the windows it is too old for as
     * of {@code ref} (an upper bound of every tile the ring holds: the accumulator's reference time, or the
     * larger one of a merge).
     */
    private static void addToTiles(Acc acc, Spec s, double[] v, long e, long ref, boolean first) {
        final int aggs = acc.aggs;
        final MemorySegment tiles = segment(acc.tileIndex);
        final int tiles0 = at(acc.tileIndex);
        final MemorySegment sums = segment(acc.sums);
        final int sums0 = at(acc.sums);
        for (int w = 0; w < s.windows(); w++) {
            final int n = s.tiles[w];
            final long tw = s.tileMs[w];
            final long i = Math.floorDiv(e, tw);
            if (!first && i <= Math.floorDiv(ref, tw) - n) {
                continue; // older than the oldest tile of this window: cannot affect its value
            }
            final int slot = s.tileOffset[w] + (int) Math.floorMod(i, (long) n);
            final int base = sums0 + 8 * slot * aggs;
            if (tiles.getLong(tiles0 + 8 * slot) == i) {
                for (int a = 0; a < aggs; a++) {
                    sums.putDouble(base + 8 * a, sums.getDouble(base + 8 * a) + v[a]);
                }
            } else {
                // a stale tile or a never-used slot (a newer one cannot be there, see SlidingSum)
                tiles.putLong(tiles0 + 8 * slot, i);
                for (int a = 0; a < aggs; a++) {
                    sums.putDouble(base + 8 * a, v[a]);
                }
            }
        }
    }

    /**
     * Adds one row's values to a sparse accumulator as of reference time {@code ref} (at least every entry's
     * time): into the entry of the same tiles if there is one, else as a new entry, dropping the entries
     * that have left every window; past {@link Spec#sparseLimit} entries the accumulator turns dense.
     */
    private void addEntry(Acc acc, Spec s, double[] v, long e, long ref) {
        final int aggs = acc.aggs;
        final ArrayData times = acc.entryTimes;
        final int n = times.size();
        for (int k = 0; k < n; k++) {
            if (s.sameTiles(times.getLong(k), e)) {
                final MemorySegment vals = segment(acc.entryVals);
                final int base = at(acc.entryVals) + 8 * k * aggs;
                for (int a = 0; a < aggs; a++) {
                    vals.putDouble(base + 8 * a, vals.getDouble(base + 8 * a) + v[a]);
                }
                return;
            }
        }
        if (s.expired(e, ref)) {
            return; // out of every window already (its decayed contribution is kept elsewhere)
        }
        int live = 0;
        for (int k = 0; k < n; k++) {
            if (!s.expired(times.getLong(k), ref)) {
                live++;
            }
        }
        if (live + 1 > s.sparseLimit()) {
            densify(acc, s);
            addToTiles(acc, s, v, e, ref, false);
            return;
        }
        final long[] newTimes = new long[live + 1];
        final double[] newVals = new double[(live + 1) * aggs];
        final ArrayData vals = acc.entryVals;
        int j = 0;
        for (int k = 0; k < n; k++) {
            final long t = times.getLong(k);
            if (s.expired(t, ref)) {
                continue;
            }
            newTimes[j] = t;
            for (int a = 0; a < aggs; a++) {
                newVals[j * aggs + a] = vals.getDouble(k * aggs + a);
            }
            j++;
        }
        newTimes[live] = e;
        System.arraycopy(v, 0, newVals, live * aggs, aggs);
        acc.entryTimes = BinaryArrayData.fromPrimitiveArray(newTimes);
        acc.entryVals = BinaryArrayData.fromPrimitiveArray(newVals);
    }

    /**
     * Makes the accumulator's arrays binary arrays in one memory segment, so that element {@code k} is at
     * {@link #at}{@code (array, k)} of {@link #segment}{@code (array)}. They already are, except when an
     * accumulator arrives in some other form (a caller-built one, or a row spanning segments): then they
     * are copied once.
     */
    private static void binary(Acc acc) {
        if (acc.tileIndex != null && !singleSegment(acc.tileIndex)) {
            acc.tileIndex = copyLongs(acc.tileIndex);
        }
        if (acc.sums != null && !singleSegment(acc.sums)) {
            acc.sums = copyDoubles(acc.sums);
        }
        if (acc.entryTimes != null && !singleSegment(acc.entryTimes)) {
            acc.entryTimes = copyLongs(acc.entryTimes);
        }
        if (acc.entryVals != null && !singleSegment(acc.entryVals)) {
            acc.entryVals = copyDoubles(acc.entryVals);
        }
        if (!singleSegment(acc.decayed)) {
            acc.decayed = copyDoubles(acc.decayed);
        }
    }

    private static boolean singleSegment(ArrayData a) {
        return a instanceof BinaryArrayData && ((BinaryArrayData) a).getSegments().length == 1;
    }

    private static MemorySegment segment(ArrayData a) {
        return ((BinaryArrayData) a).getSegments()[0];
    }

    /** Byte offset of element 0 of a binary array of 8-byte elements (element k: + 8k). */
    private static int at(ArrayData a) {
        return ((BinaryArrayData) a).getOffset() + BinaryArrayData.calculateHeaderInBytes(a.size());
    }

    private double[] scratchOf(int n) {
        double[] v = scratch;
        if (v == null || v.length < n) {
            v = scratch = new double[n];
        }
        return v;
    }

    /** Copies {@code vals} into {@link #scratch}, nulls and non-finite values as 0.0. */
    private double[] values(ArrayData vals, int n) {
        double[] v = scratchOf(n);
        for (int a = 0; a < n; a++) {
            if (vals.isNullAt(a)) {
                v[a] = 0.0;
            } else {
                double x = vals.getDouble(a);
                v[a] = Double.isFinite(x) ? x : 0.0;
            }
        }
        return v;
    }

    private double[] factors(int n) {
        double[] f = factors;
        if (f == null || f.length < n) {
            f = factors = new double[n];
        }
        return f;
    }

    /** Adds a row at {@code e} to the decayed sums, which are as of {@code ref}; the caller moves ref. */
    private void addToDecayed(Acc acc, Spec s, double[] v, long e, long ref) {
        final int nh = s.halfLives();
        if (nh == 0) {
            return;
        }
        final int aggs = acc.aggs;
        final MemorySegment d = segment(acc.decayed);
        final int d0 = at(acc.decayed);
        final double[] f = factors(nh);
        if (e > ref) {
            for (int h = 0; h < nh; h++) {
                f[h] = DecayedSum.decay(e - ref, s.halfLifeMs[h]);
            }
            for (int a = 0; a < aggs; a++) {
                for (int h = 0; h < nh; h++) {
                    final int k = d0 + 8 * (a * nh + h);
                    d.putDouble(k, d.getDouble(k) * f[h] + v[a]);
                }
            }
        } else {
            for (int h = 0; h < nh; h++) {
                f[h] = DecayedSum.decay(ref - e, s.halfLifeMs[h]);
            }
            for (int a = 0; a < aggs; a++) {
                for (int h = 0; h < nh; h++) {
                    final int k = d0 + 8 * (a * nh + h);
                    d.putDouble(k, d.getDouble(k) + v[a] * f[h]);
                }
            }
        }
    }

    public void accumulate(
            Acc acc,
            @DataTypeHint(value = "ARRAY<DOUBLE>", bridgedTo = ArrayData.class) ArrayData vals,
            Long eventTimeMs,
            @DataTypeHint(value = "STRING", bridgedTo = StringData.class) StringData specText) {
        if (vals == null || eventTimeMs == null) {
            return;
        }
        final Spec s = spec(specText);
        final int aggs = vals.size();
        final long e = eventTimeMs;
        final double[] v = values(vals, aggs);
        if (acc.spec == null) {
            init(acc, s, v, aggs, e);
            // the decayed sums of a single row are its values
            final int nh = s.halfLives();
            final MemorySegment d = segment(acc.decayed);
            final int d0 = at(acc.decayed);
            for (int a = 0; a < aggs; a++) {
                for (int h = 0; h < nh; h++) {
                    d.putDouble(d0 + 8 * (a * nh + h), v[a]);
                }
            }
            return;
        }
        checkSameSpec(acc, s);
        if (acc.aggs != aggs) {
            throw new IllegalArgumentException("FEATURE_VECTOR: vals must have a constant length per call"
                    + " site, got " + aggs + " after " + acc.aggs);
        }
        binary(acc);
        final long ref = acc.refMs;
        if (sparse(acc)) {
            addEntry(acc, s, v, e, Math.max(ref, e));
        } else {
            addToTiles(acc, s, v, e, ref, false);
        }
        addToDecayed(acc, s, v, e, ref);
        if (e > ref) {
            acc.refMs = e;
        }
    }

    /**
     * Withdraws a row accumulated earlier, cell by cell as {@link SlidingSum#retract} and {@link
     * DecayedSum#retract} do (the reference time is not moved back; a sparse accumulator turns dense first).
     * Needed only because the planner marks a proc-time keep-first deduplication under mini-batch as possibly
     * updating; such a deduplication only ever inserts, so in practice this is not called.
     */
    public void retract(
            Acc acc,
            @DataTypeHint(value = "ARRAY<DOUBLE>", bridgedTo = ArrayData.class) ArrayData vals,
            Long eventTimeMs,
            @DataTypeHint(value = "STRING", bridgedTo = StringData.class) StringData specText) {
        if (acc.spec == null || vals == null || eventTimeMs == null) {
            return;
        }
        final Spec s = spec(specText);
        checkSameSpec(acc, s);
        final int aggs = acc.aggs;
        if (vals.size() != aggs) {
            throw new IllegalArgumentException("FEATURE_VECTOR: vals must have a constant length per call"
                    + " site, got " + vals.size() + " after " + aggs);
        }
        binary(acc);
        if (sparse(acc)) {
            densify(acc, s);
        }
        final BinaryArrayData tileIndex = (BinaryArrayData) acc.tileIndex;
        final BinaryArrayData sums = (BinaryArrayData) acc.sums;
        final BinaryArrayData d = (BinaryArrayData) acc.decayed;
        final double[] v = values(vals, aggs);
        final long e = eventTimeMs;
        for (int w = 0; w < s.windows(); w++) {
            final long i = Math.floorDiv(e, s.tileMs[w]);
            final int slot = s.tileOffset[w] + (int) Math.floorMod(i, (long) s.tiles[w]);
            if (tileIndex.getLong(slot) == i) {
                final int base = slot * aggs;
                for (int a = 0; a < aggs; a++) {
                    sums.setDouble(base + a, sums.getDouble(base + a) - v[a]);
                }
            }
        }
        final int nh = s.halfLives();
        for (int h = 0; h < nh; h++) {
            final double f = Math.pow(0.5, (double) (acc.refMs - e) / (double) s.halfLifeMs[h]);
            for (int a = 0; a < aggs; a++) {
                final int k = a * nh + h;
                d.setDouble(k, d.getDouble(k) - v[a] * f);
            }
        }
    }

    /** {@code merge} of {@link FeatureVector} (two-phase aggregation). */
    protected void mergeAll(Acc acc, Iterable<Acc> others) {
        for (Acc o : others) {
            if (o == null || o.spec == null) {
                continue;
            }
            if (acc.spec == null) {
                acc.spec = o.spec;
                acc.aggs = o.aggs;
                acc.refMs = o.refMs;
                acc.tileIndex = o.tileIndex == null ? null : copyLongs(o.tileIndex);
                acc.sums = o.sums == null ? null : copyDoubles(o.sums);
                acc.entryTimes = o.entryTimes == null ? null : copyLongs(o.entryTimes);
                acc.entryVals = o.entryVals == null ? null : copyDoubles(o.entryVals);
                acc.decayed = copyDoubles(o.decayed);
                continue;
            }
            if (!acc.spec.equals(o.spec) || acc.aggs != o.aggs) {
                throw new IllegalArgumentException("FEATURE_VECTOR: cannot merge accumulators of different call"
                        + " sites ('" + acc.spec + "' with " + acc.aggs + " values and '" + o.spec + "' with "
                        + o.aggs + ")");
            }
            binary(acc);
            final Spec s = spec(acc.spec);
            final long ref = Math.max(acc.refMs, o.refMs);
            if (sparse(o)) {
                mergeEntries(acc, s, o, ref);
            } else {
                if (sparse(acc)) {
                    densify(acc, s);
                }
                mergeTiles(acc, s, o, ref);
            }
            mergeDecayed(acc, s, o);
            acc.refMs = ref;
        }
    }

    /** Adds a sparse accumulator's entries to {@code acc} (either form) as of the merged reference time. */
    private void mergeEntries(Acc acc, Spec s, Acc o, long ref) {
        final int aggs = acc.aggs;
        final ArrayData times = o.entryTimes;
        final ArrayData vals = o.entryVals;
        final double[] v = scratchOf(aggs);
        for (int k = 0; k < times.size(); k++) {
            for (int a = 0; a < aggs; a++) {
                v[a] = vals.getDouble(k * aggs + a);
            }
            final long e = times.getLong(k);
            if (sparse(acc)) {
                addEntry(acc, s, v, e, ref);
            } else {
                addToTiles(acc, s, v, e, ref, false);
            }
        }
    }

    /** Merges a dense accumulator's tiles into a dense {@code acc}, slot by slot. */
    private static void mergeTiles(Acc acc, Spec s, Acc o, long ref) {
        final int aggs = acc.aggs;
        final BinaryArrayData tileIndex = (BinaryArrayData) acc.tileIndex;
        final BinaryArrayData sums = (BinaryArrayData) acc.sums;
        final ArrayData oTileIndex = o.tileIndex;
        final ArrayData oSums = o.sums;
        for (int w = 0; w < s.windows(); w++) {
            final int n = s.tiles[w];
            final long oldest = Math.floorDiv(ref, s.tileMs[w]) - n; // exclusive
            for (int slot = s.tileOffset[w]; slot < s.tileOffset[w + 1]; slot++) {
                final long oi = oTileIndex.getLong(slot);
                if (oi <= oldest) {
                    continue; // empty or out of the merged window
                }
                final long ai = tileIndex.getLong(slot);
                final int base = slot * aggs;
                if (ai == oi) {
                    for (int a = 0; a < aggs; a++) {
                        sums.setDouble(base + a, sums.getDouble(base + a) + oSums.getDouble(base + a));
                    }
                } else if (ai < oi) {
                    tileIndex.setLong(slot, oi);
                    for (int a = 0; a < aggs; a++) {
                        sums.setDouble(base + a, oSums.getDouble(base + a));
                    }
                }
                // ai > oi: acc holds a newer tile in that slot, so o's tile is out of the window.
            }
        }
    }

    /** Merges the decayed sums, bringing both to the later reference time (before acc.refMs moves). */
    private static void mergeDecayed(Acc acc, Spec s, Acc o) {
        final int aggs = acc.aggs;
        final int nh = s.halfLives();
        final BinaryArrayData d = (BinaryArrayData) acc.decayed;
        final ArrayData oDecayed = o.decayed;
        for (int h = 0; h < nh; h++) {
            final long hl = s.halfLifeMs[h];
            if (o.refMs > acc.refMs) {
                final double f = DecayedSum.decay(o.refMs - acc.refMs, hl);
                for (int a = 0; a < aggs; a++) {
                    final int k = a * nh + h;
                    d.setDouble(k, d.getDouble(k) * f + oDecayed.getDouble(k));
                }
            } else {
                final double f = DecayedSum.decay(acc.refMs - o.refMs, hl);
                for (int a = 0; a < aggs; a++) {
                    final int k = a * nh + h;
                    d.setDouble(k, d.getDouble(k) + oDecayed.getDouble(k) * f);
                }
            }
        }
    }

    /** A private copy in one segment (merge must not alias the other accumulator's memory). */
    private static BinaryArrayData copyLongs(ArrayData a) {
        return a instanceof BinaryArrayData
                ? ((BinaryArrayData) a).copy() : BinaryArrayData.fromPrimitiveArray(a.toLongArray());
    }

    private static BinaryArrayData copyDoubles(ArrayData a) {
        return a instanceof BinaryArrayData
                ? ((BinaryArrayData) a).copy() : BinaryArrayData.fromPrimitiveArray(a.toDoubleArray());
    }

    public void resetAccumulator(Acc acc) {
        acc.spec = null;
        acc.aggs = 0;
        acc.refMs = 0L;
        acc.entryTimes = null;
        acc.entryVals = null;
        acc.tileIndex = null;
        acc.sums = null;
        acc.decayed = null;
    }

    @Override
    /**
     * The vector as a binary array of primitive doubles: no boxing, and Flink copies, compares (the
     * aggregate's "did the value change" check, once per key and bundle) and serializes it as one block.
     * A {@code Double[]} result cost ~70 boxed values per call, twice per key and bundle.
     */
    public ArrayData getValue(Acc acc) {
        if (acc.spec == null) {
            return null;
        }
        final Spec s = spec(acc.spec);
        final int aggs = acc.aggs;
        final int nw = s.windows();
        final int nh = s.halfLives();
        final double[] out = new double[aggs * (nw + nh)];
        if (sparse(acc)) {
            final ArrayData times = acc.entryTimes;
            final ArrayData vals = acc.entryVals;
            for (int k = 0; k < times.size(); k++) {
                final long e = times.getLong(k);
                for (int w = 0; w < nw; w++) {
                    final long tw = s.tileMs[w];
                    if (Math.floorDiv(e, tw) > Math.floorDiv(acc.refMs, tw) - s.tiles[w]) {
                        for (int a = 0; a < aggs; a++) {
                            out[a * nw + w] += vals.getDouble(k * aggs + a);
                        }
                    }
                }
            }
        } else {
            binary(acc);
            final MemorySegment tiles = segment(acc.tileIndex);
            final int tiles0 = at(acc.tileIndex);
            final MemorySegment sums = segment(acc.sums);
            final int sums0 = at(acc.sums);
            for (int w = 0; w < nw; w++) {
                final long oldest = Math.floorDiv(acc.refMs, s.tileMs[w]) - s.tiles[w]; // exclusive
                for (int slot = s.tileOffset[w]; slot < s.tileOffset[w + 1]; slot++) {
                    if (tiles.getLong(tiles0 + 8 * slot) > oldest) {
                        final int base = sums0 + 8 * slot * aggs;
                        for (int a = 0; a < aggs; a++) {
                            out[a * nw + w] += sums.getDouble(base + 8 * a);
                        }
                    }
                }
            }
        }
        final int off = aggs * nw;
        for (int k = 0; k < aggs * nh; k++) {
            out[off + k] = acc.decayed.getDouble(k);
        }
        return BinaryArrayData.fromPrimitiveArray(out);
    }
}
