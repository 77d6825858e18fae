package dev.fyp.flink.redis;

import org.apache.flink.api.common.operators.ProcessingTimeService;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.metrics.groups.UnregisteredMetricsGroup;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.types.logical.BigIntType;
import org.apache.flink.table.types.logical.DoubleType;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.RowType;
import org.apache.flink.table.types.logical.VarCharType;
import org.apache.flink.types.RowKind;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import redis.clients.jedis.Jedis;
import redis.clients.jedis.args.ClientType;
import redis.clients.jedis.params.ClientKillParams;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Delayed;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The writer alone: buffering, the flush timer, stale writes, NOSCRIPT and retries, on a real redis-server. */
class RedisSinkWriterTest {

    private static final RowType ROW = RowType.of(
            new LogicalType[] {new VarCharType(false, VarCharType.MAX_LENGTH), new BigIntType(false),
                    new DoubleType(), new BigIntType()},
            new String[] {"id", "et", "score", "n"});

    private static TestRedis redis;
    private static Jedis jedis;

    @BeforeAll
    static void startRedis() throws Exception {
        redis = TestRedis.start();
        jedis = redis.client();
    }

    @AfterAll
    static void stopRedis() throws Exception {
        if (jedis != null) {
            jedis.close();
        }
        if (redis != null) {
            redis.close();
        }
    }

    @BeforeEach
    void clean() {
        jedis.flushDB();
    }

    /** Timers fire only when the test says so. */
    static final class ManualTime implements ProcessingTimeService {
        long now = 1_000;
        final List<long[]> due = new ArrayList<>();
        final List<ProcessingTimeCallback> callbacks = new ArrayList<>();

        @Override
        public long getCurrentProcessingTime() {
            return now;
        }

        @Override
        public ScheduledFuture<?> registerTimer(long timestamp, ProcessingTimeCallback callback) {
            due.add(new long[] {timestamp});
            callbacks.add(callback);
            return new NoFuture();
        }

        void advanceTo(long t) throws Exception {
            now = t;
            for (int i = 0; i < due.size(); ) {
                if (due.get(i)[0] <= t) {
                    due.remove(i);
                    callbacks.remove(i).onProcessingTime(t);
                } else {
                    i++;
                }
            }
        }
    }

    static final class NoFuture implements ScheduledFuture<Object> {
        @Override public long getDelay(TimeUnit unit) { return 0; }
        @Override public int compareTo(Delayed o) { return 0; }
        @Override public boolean cancel(boolean b) { return true; }
        @Override public boolean isCancelled() { return false; }
        @Override public boolean isDone() { return false; }
        @Override public Object get() { return null; }
        @Override public Object get(long t, TimeUnit u) { return null; }
    }

    private static Configuration options(String format, Map<String, String> extra) {
        Configuration c = new Configuration();
        c.setString("port", Integer.toString(TestRedis.PORT));
        c.setString("password-env", TestRedis.PASSWORD_ENV);
        c.setString("key-prefix", "w:");
        c.setString("value.format", format);
        c.setString("event-time-column", "et");
        c.setString("ttl", "10 min");
        extra.forEach(c::setString);
        return c;
    }

    private static RedisSinkWriter writer(Configuration c, ProcessingTimeService time) {
        RowEncoder enc = RowEncoder.create(ROW, new int[] {0}, c);
        return new RedisSinkWriter(RedisSinkConfig.fromOptions(c).withInitialBackoffMs(10), enc, time,
                new UnregisteredMetricsGroup());
    }

    private static RowData row(String id, long et, Double score, Long n) {
        return GenericRowData.ofKind(RowKind.INSERT, StringData.fromString(id), et, score, n);
    }

    @Test
    void intervalTimerFlushesWithoutMoreInput() throws Exception {
        ManualTime time = new ManualTime();
        try (RedisSinkWriter w = writer(options("hash", Map.of("sink.buffer-flush.interval", "50 ms")), time)) {
            w.write(row("a", 10, 1.5, 3L), null);
            assertEquals(1, w.buffered());
            assertFalse(jedis.exists("w:a"), "not written before the interval");
            assertEquals(1, time.due.size());
            assertEquals(1_050, time.due.get(0)[0]);
            w.write(row("b", 10, 2.5, null), null);
            assertEquals(1, time.due.size(), "one timer per buffer");

            time.advanceTo(1_050);
            assertEquals(0, w.buffered());
            assertEquals(Map.of("score", "1.5", "n", "3", "et", "10", "_et", "10"),
                    withoutUt(jedis.hgetAll("w:a")));
            assertEquals(Map.of("score", "2.5", "et", "10", "_et", "10"), withoutUt(jedis.hgetAll("w:b")));
            long ut = Long.parseLong(jedis.hget("w:a", "_ut"));
            assertTrue(Math.abs(System.currentTimeMillis() - ut) < 60_000, "_ut is the writer's wall clock");
            long ttl = jedis.pttl("w:a");
            assertTrue(ttl > 590_000 && ttl <= 600_000, "ttl " + ttl);
            assertEquals(1, w.flushes());
            assertEquals(2, w.writes());

            // the next row arms a new timer
            w.write(row("c", 10, 0.0, 0L), null);
            assertEquals(1, time.due.size());
            time.advanceTo(1_100);
            assertTrue(jedis.exists("w:c"));
        }
    }

    @Test
    void maxRowsFlushesAndRepeatedKeysCollapse() throws Exception {
        ManualTime time = new ManualTime();
        try (RedisSinkWriter w = writer(options("hash", Map.of("sink.buffer-flush.max-rows", "3")), time)) {
            w.write(row("a", 1, 1.0, 1L), null);
            w.write(row("a", 2, 2.0, 2L), null);
            w.write(row("a", 3, 3.0, 3L), null);
            assertEquals(1, w.buffered(), "three rows of one key are one buffered write");
            w.write(row("b", 1, 1.0, 1L), null);
            assertFalse(jedis.exists("w:a"));
            w.write(row("c", 1, 1.0, 1L), null);   // third distinct key: flush
            assertEquals(0, w.buffered());
            assertEquals("3", jedis.hget("w:a", "n"));
            assertEquals(3, w.writes());
            // flush(false) as before a checkpoint
            w.write(row("d", 1, 1.0, 1L), null);
            w.flush(false);
            assertTrue(jedis.exists("w:d"));
        }
    }

    @Test
    void staleWritesAreSkippedAndEqualEventTimesOverwrite() throws Exception {
        for (String format : new String[] {"hash", "packed"}) {
            jedis.flushDB();
            try (RedisSinkWriter w = writer(options(format, Map.of()), new ManualTime())) {
                w.write(row("a", 5_000, 1.0, 1L), null);
                w.flush(false);
                w.write(row("a", 4_999, 2.0, 2L), null);
                w.flush(false);
                assertEquals(1, w.staleSkipped(), format);
                assertEquals(1.0, score(format), format);
                w.write(row("a", 5_000, 3.0, 3L), null);   // same event time, new aggregate
                w.flush(false);
                assertEquals(3.0, score(format), format);
                assertEquals(1, w.staleSkipped(), format);
                assertEquals(2, w.writes(), format);
            }
        }
    }

    private static double score(String format) {
        if (format.equals("hash")) {
            return Double.parseDouble(jedis.hget("w:a", "score"));
        }
        byte[] v = jedis.get("w:a".getBytes(StandardCharsets.UTF_8));
        return ByteBuffer.wrap(v).order(ByteOrder.LITTLE_ENDIAN).getFloat(16);
    }

    @Test
    void packedLayout() throws Exception {
        try (RedisSinkWriter w = writer(options("packed", Map.of()), new ManualTime())) {
            w.write(row("a", 1_700_000_000_123L, 0.25, null), null);
            long before = System.currentTimeMillis();
            w.flush(false);
            byte[] v = jedis.get("w:a".getBytes(StandardCharsets.UTF_8));
            assertEquals(16 + 2 * 4, v.length);
            ByteBuffer b = ByteBuffer.wrap(v).order(ByteOrder.LITTLE_ENDIAN);
            assertEquals(1_700_000_000_123L, b.getLong(0));
            assertTrue(b.getLong(8) >= before && b.getLong(8) <= System.currentTimeMillis());
            assertEquals(0.25f, b.getFloat(16));
            assertTrue(Float.isNaN(b.getFloat(20)), "null -> NaN");
            long ttl = jedis.pttl("w:a");
            assertTrue(ttl > 590_000 && ttl <= 600_000, "ttl " + ttl);
        }
    }

    @Test
    void deleteRemovesTheKeyEvenWithOnlyTheKeyFilled() throws Exception {
        try (RedisSinkWriter w = writer(options("hash", Map.of()), new ManualTime())) {
            w.write(row("a", 5, 1.0, 1L), null);
            w.flush(false);
            assertTrue(jedis.exists("w:a"));
            GenericRowData del = new GenericRowData(RowKind.DELETE, 4);
            del.setField(0, StringData.fromString("a"));   // key-only delete: the rest is null
            w.write(del, null);
            w.flush(false);
            assertFalse(jedis.exists("w:a"));

            // UPDATE_BEFORE alone deletes; followed by UPDATE_AFTER in the same buffer it is replaced
            w.write(row("b", 5, 1.0, 1L), null);
            w.flush(false);
            RowData ub = row("b", 5, 1.0, 1L);
            ub.setRowKind(RowKind.UPDATE_BEFORE);
            w.write(ub, null);
            w.flush(false);
            assertFalse(jedis.exists("w:b"));
            w.write(row("c", 5, 1.0, 1L), null);
            w.flush(false);
            RowData ub2 = row("c", 5, 1.0, 1L);
            ub2.setRowKind(RowKind.UPDATE_BEFORE);
            RowData ua2 = row("c", 6, 2.0, 2L);
            ua2.setRowKind(RowKind.UPDATE_AFTER);
            long before = w.writes();
            w.write(ub2, null);
            w.write(ua2, null);
            w.flush(false);
            assertEquals(before + 1, w.writes(), "UB+UA of one key is one write");
            assertEquals("2.0", jedis.hget("w:c", "score"));
        }
    }

    @Test
    void lostScriptsFallBackToEval() throws Exception {
        for (String format : new String[] {"hash", "packed"}) {
            jedis.flushDB();
            try (RedisSinkWriter w = writer(options(format, Map.of()), new ManualTime())) {
                w.write(row("a", 1, 1.0, 1L), null);
                w.flush(false);
                jedis.scriptFlush();
                w.write(row("a", 2, 2.0, 2L), null);
                w.flush(false);
                assertEquals(2.0, score(format), format);
                jedis.scriptFlush();
                w.write(row("a", 3, 3.0, 3L), null);
                w.flush(false);
                assertEquals(3.0, score(format), format);
                assertEquals(3, w.writes());
            }
        }
    }

    @Test
    void packedKeysAcrossSeveralScriptCallsAreEachWrittenOrSkipped() throws Exception {
        int keys = 2 * RedisSinkWriter.PACKED_KEYS_PER_CALL + 37;
        Map<String, String> big = Map.of("sink.buffer-flush.max-rows", Integer.toString(10 * keys));
        for (boolean lostScript : new boolean[] {false, true}) {
            jedis.flushDB();
            try (RedisSinkWriter w = writer(options("packed", big), new ManualTime())) {
                for (int i = 0; i < keys; i++) {
                    w.write(row("k" + i, 1_000, 1.0, 1L), null);
                }
                w.flush(false);
                if (lostScript) {
                    jedis.scriptFlush();
                }
                // even keys go back in event time (skipped), odd keys forward (written)
                for (int i = 0; i < keys; i++) {
                    w.write(row("k" + i, i % 2 == 0 ? 999 : 1_001, 2.0, 2L), null);
                }
                w.flush(false);
                assertEquals(keys / 2 + 1, w.staleSkipped(), "lost script: " + lostScript);
                assertEquals(keys + keys / 2, w.writes(), "lost script: " + lostScript);
                for (int i = 0; i < keys; i++) {
                    byte[] v = jedis.get(("w:k" + i).getBytes(StandardCharsets.UTF_8));
                    ByteBuffer b = ByteBuffer.wrap(v).order(ByteOrder.LITTLE_ENDIAN);
                    assertEquals(i % 2 == 0 ? 1_000 : 1_001, b.getLong(0), "event time of k" + i);
                    assertEquals(i % 2 == 0 ? 1.0 : 2.0, b.getFloat(16), "score of k" + i);
                    long ttl = jedis.pttl("w:k" + i);
                    assertTrue(ttl > 590_000 && ttl <= 600_000, "ttl of k" + i + ": " + ttl);
                }
            }
        }
    }

    @Test
    void connectionErrorsAreRetriedThenFailTheTask() throws Exception {
        Configuration c = options("hash", Map.of("port", "1", "sink.max-outage", "1 s", "timeout", "200 ms"));
        try (RedisSinkWriter w = writer(c, new ManualTime())) {
            w.write(row("a", 1, 1.0, 1L), null);
            IOException e = assertThrows(IOException.class, () -> w.flush(false));
            assertTrue(e.getMessage().contains("sink.max-outage 1000 ms"), e.getMessage());
        }
    }

    @Test
    void aFlushRidesOutAnOutageShorterThanMaxOutage() throws Exception {
        int port = TestRedis.PORT + 1; // nothing listens there yet: Redis is "down"
        Configuration c = options("hash", Map.of("port", Integer.toString(port), "sink.max-outage", "30 s",
                "timeout", "200 ms"));
        try (RedisSinkWriter w = writer(c, new ManualTime())) {
            w.write(row("a", 1, 1.0, 1L), null);
            java.util.concurrent.CompletableFuture<Void> flushed = java.util.concurrent.CompletableFuture.runAsync(
                    () -> {
                        try {
                            w.flush(false);
                        } catch (IOException | InterruptedException e) {
                            throw new java.util.concurrent.CompletionException(e);
                        }
                    });
            Thread.sleep(1_500);
            assertTrue(!flushed.isDone(), "the flush waits for Redis instead of failing");
            try (TestRedis late = TestRedis.start(port); Jedis j = late.client()) {
                flushed.get(20, java.util.concurrent.TimeUnit.SECONDS);
                assertTrue(j.exists("w:a"), "the buffered row was written once Redis came back");
            }
        }
    }

    @Test
    void wrongPasswordIsReportedClearly() throws Exception {
        Configuration c = options("hash", Map.of("password", "not-the-password", "sink.max-outage", "0 s"));
        try (RedisSinkWriter w = writer(c, new ManualTime())) {
            w.write(row("a", 1, 1.0, 1L), null);
            IOException e = assertThrows(IOException.class, () -> w.flush(false));
            assertTrue(e.getMessage().contains("refused authentication"), e.getMessage());
        }
        Configuration unset = options("hash", Map.of("password-env", "FYP_TEST_NO_SUCH_VARIABLE",
                "sink.max-outage", "0 s"));
        try (RedisSinkWriter w = writer(unset, new ManualTime())) {
            w.write(row("a", 1, 1.0, 1L), null);
            IOException e = assertThrows(IOException.class, () -> w.flush(false));
            assertTrue(e.getMessage().contains("refused authentication")
                    && e.getMessage().contains("FYP_TEST_NO_SUCH_VARIABLE is unset"), e.getMessage());
        }
    }

    @Test
    void reconnectsAfterTheServerDropsTheConnection() throws Exception {
        try (RedisSinkWriter w = writer(options("hash", Map.of()), new ManualTime())) {
            w.write(row("a", 1, 1.0, 1L), null);
            w.flush(false);
            jedis.clientKill(new ClientKillParams().type(ClientType.NORMAL).skipMe(ClientKillParams.SkipMe.YES));
            w.write(row("a", 2, 2.0, 2L), null);
            w.flush(false);
            assertEquals("2.0", jedis.hget("w:a", "score"));
        }
    }

    private static Map<String, String> withoutUt(Map<String, String> h) {
        assertTrue(h.containsKey("_ut"), "has _ut: " + h);
        h.remove("_ut");
        return h;
    }
}
