package dev.fyp.flink.aggregates;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import dev.fyp.flink.aggregates.Reference.Event;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.Table;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.table.api.config.ExecutionConfigOptions;
import org.apache.flink.table.api.config.OptimizerConfigOptions;
import org.apache.flink.types.Row;
import org.apache.flink.types.RowKind;
import org.apache.flink.util.CloseableIterator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The functions inside Flink SQL as the jobs use them: a non-windowed {@code GROUP BY} over
 * append-only input, mini-batch on, two-phase (local/global) aggregation forced. Exercises the type
 * inference, the accumulator's state serialisation and {@code merge}.
 */
class AggregatesSqlTest {

    private static final long WINDOW_MS = 60_000L;
    private static final int TILES = 6;
    private static final long HALF_LIFE_MS = 30_000L;
    /** 4 keys x 150 rows: planning a larger VALUES is the slow part of this test. */
    private static final int PER_KEY = 150;

    private static final String QUERY =
            "SELECT k,"
                    + " SLIDING_SUM(v, ts, 60000, 6) AS s,"
                    + " SLIDING_SUM(CASE WHEN v > 0 THEN 1.0 ELSE 0.0 END, ts, 60000, 6) AS c,"
                    + " DECAYED_SUM(v, ts, 30000) AS d,"
                    + " FEATURE_VECTOR(ARRAY[v, CASE WHEN v > 0 THEN 1.0 ELSE 0.0 END], ts, '60000/6;30000') AS fv,"
                    + " MAX(ts) AS max_ts,"
                    + " MAX(CASE WHEN v IS NOT NULL THEN ts END) AS ref_ts"
                    + " FROM t GROUP BY k";

    /** FEATURE_VECTOR's call site again, with the function that has no merge. */
    private static final String ONE_PHASE_QUERY =
            "SELECT k, FEATURE_VECTOR_ONE_PHASE(ARRAY[v, CASE WHEN v > 0 THEN 1.0 ELSE 0.0 END], ts,"
                    + " '60000/6;30000') AS fv FROM t GROUP BY k";

    /**
     * miniBatchSize 1000 is the jobs' setting (functions registered through the Table API); 7
     * forces many bundles, i.e. many merges per key (functions registered through SQL DDL).
     */
    @ParameterizedTest(name = "mini-batch size {0}")
    @ValueSource(ints = {1000, 7})
    void groupByWithMiniBatchAndTwoPhase(int miniBatchSize) throws Exception {
        TableEnvironment tEnv = TableEnvironment.create(EnvironmentSettings.inStreamingMode());
        var conf = tEnv.getConfig();
        conf.set("table.exec.mini-batch.enabled", "true");
        conf.set("table.exec.mini-batch.allow-latency", "100 ms");
        conf.set("table.exec.mini-batch.size", Integer.toString(miniBatchSize));
        conf.set("table.optimizer.agg-phase-strategy", "TWO_PHASE");
        conf.set("parallelism.default", "2");
        // The string keys above are the ones the jobs set; check that they took effect.
        assertEquals("TWO_PHASE", conf.get(OptimizerConfigOptions.TABLE_OPTIMIZER_AGG_PHASE_STRATEGY).name());
        assertTrue(conf.get(ExecutionConfigOptions.TABLE_EXEC_MINIBATCH_ENABLED));

        if (miniBatchSize == 1000) {
            tEnv.createTemporarySystemFunction("SLIDING_SUM", SlidingSum.class);
            tEnv.createTemporarySystemFunction("DECAYED_SUM", DecayedSum.class);
            tEnv.createTemporarySystemFunction("FEATURE_VECTOR", FeatureVector.class);
            tEnv.createTemporarySystemFunction("FEATURE_VECTOR_ONE_PHASE", FeatureVectorOnePhase.class);
        } else {
            // The DDL a PyFlink job runs (docs/AGGREGATES.md).
            tEnv.executeSql("CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS SLIDING_SUM"
                    + " AS 'dev.fyp.flink.aggregates.SlidingSum' LANGUAGE JAVA");
            tEnv.executeSql("CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS DECAYED_SUM"
                    + " AS 'dev.fyp.flink.aggregates.DecayedSum' LANGUAGE JAVA");
            tEnv.executeSql("CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS FEATURE_VECTOR"
                    + " AS 'dev.fyp.flink.aggregates.FeatureVector' LANGUAGE JAVA");
            tEnv.executeSql("CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS FEATURE_VECTOR_ONE_PHASE"
                    + " AS 'dev.fyp.flink.aggregates.FeatureVectorOnePhase' LANGUAGE JAVA");
        }

        Random rnd = new Random(42);
        String[] keys = {"a", "b", "c", "d"};
        Map<String, List<Event>> byKey = new HashMap<>();
        List<Row> rows = new ArrayList<>();
        for (String key : keys) {
            byKey.put(key, new ArrayList<>());
        }
        // Interleave the keys' sequences so that each bundle holds several keys.
        Map<String, List<Event>> generated = new HashMap<>();
        for (String key : keys) {
            generated.put(key, RandomEvents.generate(rnd, PER_KEY, WINDOW_MS));
        }
        int[] pos = new int[keys.length];
        int left = keys.length * PER_KEY;
        while (left > 0) {
            int k = rnd.nextInt(keys.length);
            if (pos[k] == PER_KEY) {
                continue;
            }
            Event e = generated.get(keys[k]).get(pos[k]++);
            left--;
            if (e.v() != null && e.v().isNaN()) {
                e = new Event(null, e.t()); // fromValues cannot carry a NaN literal
            }
            byKey.get(keys[k]).add(e);
            // All-literal, non-null rows of one type keep the plan a single Values node (a null
            // or a CAST turns fromValues into a UNION of one projection per row, slow to plan);
            // nulls travel as flags and are restored by the view below.
            rows.add(Row.of(keys[k], e.v() == null ? 0.0 : e.v(), e.t() == null ? 0L : e.t(),
                    e.v() == null, e.t() == null));
        }
        Table raw = tEnv.fromValues(rows).as("k", "v", "ts", "v_null", "ts_null");
        tEnv.createTemporaryView("src_rows", raw);
        tEnv.executeSql("CREATE TEMPORARY VIEW t AS SELECT k,"
                + " CASE WHEN v_null THEN CAST(NULL AS DOUBLE) ELSE v END AS v,"
                + " CASE WHEN ts_null THEN CAST(NULL AS BIGINT) ELSE ts END AS ts FROM src_rows");

        long t0 = System.nanoTime();
        if (miniBatchSize == 1000) { // planning is the slow part: check the plan once
            String plan = tEnv.explainSql(QUERY);
            assertTrue(plan.contains("LocalGroupAggregate") && plan.contains("GlobalGroupAggregate"),
                    "expected a two-phase aggregation plan:\n" + plan);
            String onePhase = tEnv.explainSql(ONE_PHASE_QUERY);
            assertTrue(onePhase.contains("GroupAggregate") && !onePhase.contains("LocalGroupAggregate"),
                    "expected a one-phase aggregation plan in a TWO_PHASE job:\n" + onePhase);
        }
        long t1 = System.nanoTime();

        Map<String, Row> latest = new HashMap<>();
        try (CloseableIterator<Row> it = tEnv.executeSql(QUERY).collect()) {
            while (it.hasNext()) {
                Row r = it.next();
                String k = (String) r.getField("k");
                if (r.getKind() == RowKind.INSERT || r.getKind() == RowKind.UPDATE_AFTER) {
                    latest.put(k, r);
                } else {
                    latest.remove(k);
                }
            }
        }

        Map<String, Double[]> onePhaseLatest = new HashMap<>();
        try (CloseableIterator<Row> it = tEnv.executeSql(ONE_PHASE_QUERY).collect()) {
            while (it.hasNext()) {
                Row r = it.next();
                if (r.getKind() == RowKind.INSERT || r.getKind() == RowKind.UPDATE_AFTER) {
                    onePhaseLatest.put((String) r.getField("k"), (Double[]) r.getField("fv"));
                }
            }
        }

        long t2 = System.nanoTime();
        System.out.printf("mini-batch size %d: explain %.1f s, run %.1f s%n",
                miniBatchSize, (t1 - t0) / 1e9, (t2 - t1) / 1e9);
        assertEquals(keys.length, latest.size(), "one final row per key: " + latest);
        for (String key : keys) {
            List<Event> events = byKey.get(key);
            Row r = latest.get(key);
            Reference.assertClose(Reference.slidingSum(events, WINDOW_MS, TILES), (Double) r.getField("s"),
                    Reference.slidingScale(events, WINDOW_MS, TILES), key + " SLIDING_SUM");
            List<Event> counted = new ArrayList<>();
            for (Event e : events) {
                // the CASE turns null values into 0.0 rows: still accepted when the time is not null
                counted.add(new Event(e.v() != null && e.v() > 0 ? 1.0 : 0.0, e.t()));
            }
            assertEquals(Reference.slidingSum(counted, WINDOW_MS, TILES), (Double) r.getField("c"),
                    key + " SLIDING_SUM count");
            Reference.assertClose(Reference.decayedSum(events, HALF_LIFE_MS), (Double) r.getField("d"),
                    Reference.decayedScale(events, HALF_LIFE_MS), key + " DECAYED_SUM");
            // DECAYED_SUM's reference time is the max time of the rows it accepted: MAX(ts) over
            // the rows with a non-null value (docs/AGGREGATES.md); plain MAX(ts) may be later.
            assertEquals(Reference.maxTime(events), r.getField("ref_ts"), key + " reference time");
            Long maxAll = null;
            for (Event e : events) {
                if (e.t() != null && (maxAll == null || e.t() > maxAll)) {
                    maxAll = e.t();
                }
            }
            assertEquals(maxAll, r.getField("max_ts"), key + " MAX(ts)");
            // FEATURE_VECTOR: a null element counts as 0.0 (the row still advances the reference time).
            List<Event> zeroed = new ArrayList<>();
            for (Event e : events) {
                zeroed.add(new Event(e.v() == null ? 0.0 : e.v(), e.t()));
            }
            Double[] fv = (Double[]) r.getField("fv");
            assertEquals(4, fv.length, key + " FEATURE_VECTOR width");
            Reference.assertClose(Reference.slidingSum(zeroed, WINDOW_MS, TILES), fv[0],
                    Reference.slidingScale(zeroed, WINDOW_MS, TILES), key + " FEATURE_VECTOR sliding v");
            Reference.assertClose(Reference.slidingSum(counted, WINDOW_MS, TILES), fv[1],
                    Reference.slidingScale(counted, WINDOW_MS, TILES), key + " FEATURE_VECTOR sliding count");
            Reference.assertClose(Reference.decayedSum(zeroed, HALF_LIFE_MS), fv[2],
                    Reference.decayedScale(zeroed, HALF_LIFE_MS), key + " FEATURE_VECTOR decayed v");
            Reference.assertClose(Reference.decayedSum(counted, HALF_LIFE_MS), fv[3],
                    Reference.decayedScale(counted, HALF_LIFE_MS), key + " FEATURE_VECTOR decayed count");
            Double[] one = onePhaseLatest.get(key);
            for (int i = 0; i < fv.length; i++) {
                assertEquals(fv[i], one[i], 1e-9 * Math.max(1.0, Math.abs(fv[i])), key + " one phase, cell " + i);
            }
        }
    }

    /** Retracting a row accumulated earlier restores the value without it. */
    @Test
    void retractWithdrawsAnAccumulatedRow() {
        SlidingSum sliding = new SlidingSum();
        SlidingSum.Acc slidingAcc = sliding.createAccumulator();
        sliding.accumulate(slidingAcc, 2.0, 1_000L, 60_000L, 6);
        sliding.accumulate(slidingAcc, 5.0, 2_000L, 60_000L, 6);
        sliding.retract(slidingAcc, 5.0, 2_000L, 60_000L, 6);
        assertEquals(2.0, sliding.getValue(slidingAcc), 1e-12);

        DecayedSum decayed = new DecayedSum();
        DecayedSum.Acc decayedAcc = decayed.createAccumulator();
        decayed.accumulate(decayedAcc, 4.0, 0L, 1_000L);
        decayed.accumulate(decayedAcc, 3.0, 1_000L, 1_000L);
        decayed.retract(decayedAcc, 3.0, 1_000L, 1_000L);
        assertEquals(2.0, decayed.getValue(decayedAcc), 1e-12); // 4 halved over one half-life
    }
}
