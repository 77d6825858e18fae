package dev.fyp.flink.redis;

import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.table.api.TableResult;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import redis.clients.jedis.Jedis;
import redis.clients.jedis.resps.Tuple;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** SQL jobs on a MiniCluster writing through 'connector' = 'fyp-redis' into a throwaway redis-server. */
class RedisSinkITCase {

    private static TestRedis redis;
    private static Jedis jedis;
    private static TableEnvironment tEnv;

    @BeforeAll
    static void setUp() throws Exception {
        redis = TestRedis.start();
        jedis = redis.client();
        tEnv = TableEnvironment.create(EnvironmentSettings.inStreamingMode());
        tEnv.getConfig().set("parallelism.default", "1");
        tEnv.getConfig().set("table.local-time-zone", "UTC");
    }

    @AfterAll
    static void tearDown() throws Exception {
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

    private static String with(String... options) {
        StringBuilder sb = new StringBuilder("'connector' = 'fyp-redis', 'port' = '" + TestRedis.PORT
                + "', 'password-env' = '" + TestRedis.PASSWORD_ENV + "'");
        for (int i = 0; i < options.length; i += 2) {
            sb.append(", '").append(options[i]).append("' = '").append(options[i + 1]).append("'");
        }
        return " WITH (" + sb + ")";
    }

    private static void run(String sql) throws Exception {
        tEnv.executeSql(sql).await();
    }

    @Test
    void hashFieldsTtlAndNullColumns() throws Exception {
        jedis.hset("t:v:7:SG", Map.of("label", "left-over", "_et", "0"));
        tEnv.executeSql("CREATE TEMPORARY TABLE video_features (video_id BIGINT, region STRING, plays BIGINT, "
                + "weight DOUBLE, last_ts BIGINT, label STRING, seen_at TIMESTAMP_LTZ(3), "
                + "PRIMARY KEY (video_id, region) NOT ENFORCED)"
                + with("key-prefix", "t:v:", "event-time-column", "last_ts", "ttl", "1 h"));
        run("INSERT INTO video_features SELECT CAST(v AS BIGINT), r, COUNT(*), SUM(CAST(w AS DOUBLE)), "
                + "CAST(MAX(ts) AS BIGINT), CAST(NULL AS STRING), TO_TIMESTAMP_LTZ(MAX(ts), 3) FROM (VALUES "
                + "(7, 'SG', 1000, 0.5), (7, 'SG', 3000, 1.5), (7, 'SG', 2000, 2.0), (8, 'US', 1500, 1.0)"
                + ") AS t(v, r, ts, w) GROUP BY v, r");

        Map<String, String> h = jedis.hgetAll("t:v:7:SG");
        assertTrue(h.containsKey("_ut"), h.toString());
        h.remove("_ut");
        assertEquals(Map.of("plays", "3", "weight", "4.0", "last_ts", "3000", "seen_at", "3000", "_et", "3000"),
                h, "null column 'label' removed (HDEL), key columns not stored");
        assertEquals("1", jedis.hget("t:v:8:US", "plays"));
        long ttl = jedis.pttl("t:v:7:SG");
        assertTrue(ttl > 3_500_000 && ttl <= 3_600_000, "ttl " + ttl);
    }

    @Test
    void packedBytes() throws Exception {
        tEnv.executeSql("CREATE TEMPORARY TABLE user_vec (user_id STRING, et TIMESTAMP_LTZ(3), a FLOAT, "
                + "b DOUBLE, c BIGINT, d INT, PRIMARY KEY (user_id) NOT ENFORCED)"
                + with("key-prefix", "t:u:", "value.format", "packed", "event-time-column", "et"));
        long before = System.currentTimeMillis();
        run("INSERT INTO user_vec SELECT u, TO_TIMESTAMP_LTZ(MAX(ts), 3), CAST(SUM(x) AS FLOAT), "
                + "AVG(CAST(x AS DOUBLE)), COUNT(*), CAST(NULL AS INT) FROM (VALUES "
                + "('alice', 1700000000123, 1.5), ('alice', 1700000000456, 2.5), ('bob', 1700000000001, -1.0)"
                + ") AS t(u, ts, x) GROUP BY u");

        byte[] v = jedis.get("t:u:alice".getBytes(StandardCharsets.UTF_8));
        assertEquals(16 + 4 * 4, v.length);
        ByteBuffer b = ByteBuffer.wrap(v).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(1_700_000_000_456L, b.getLong(0), "event time");
        assertTrue(b.getLong(8) >= before, "update time");
        assertEquals(4.0f, b.getFloat(16));
        assertEquals(2.0f, b.getFloat(20));
        assertEquals(2.0f, b.getFloat(24));
        assertTrue(Float.isNaN(b.getFloat(28)));
        byte[] bob = jedis.get("t:u:bob".getBytes(StandardCharsets.UTF_8));
        assertEquals(-1.0f, ByteBuffer.wrap(bob).order(ByteOrder.LITTLE_ENDIAN).getFloat(16));
    }

    @Test
    void staleWritesDoNotReplaceNewerValues() throws Exception {
        jedis.hset("t:s:9", Map.of("plays", "99", "_et", "5000"));    // newer than the job's rows
        jedis.hset("t:s:10", Map.of("plays", "1", "_et", "2000"));    // same event time as the job's row
        byte[] newer = ByteBuffer.allocate(20).order(ByteOrder.LITTLE_ENDIAN)
                .putLong(9_000_000_000_000L).putLong(0).putFloat(42f).array();
        jedis.set("t:p:carol".getBytes(StandardCharsets.UTF_8), newer);

        tEnv.executeSql("CREATE TEMPORARY TABLE s_hash (video_id INT, plays BIGINT, et BIGINT, "
                + "PRIMARY KEY (video_id) NOT ENFORCED)" + with("key-prefix", "t:s:", "event-time-column", "et"));
        tEnv.executeSql("CREATE TEMPORARY TABLE s_packed (u STRING, et BIGINT, x FLOAT, "
                + "PRIMARY KEY (u) NOT ENFORCED)"
                + with("key-prefix", "t:p:", "value.format", "packed", "event-time-column", "et"));
        var set = tEnv.createStatementSet();
        set.addInsertSql("INSERT INTO s_hash VALUES (9, CAST(1 AS BIGINT), CAST(4000 AS BIGINT)), "
                + "(10, CAST(7 AS BIGINT), CAST(2000 AS BIGINT))");
        set.addInsertSql("INSERT INTO s_packed VALUES ('carol', CAST(1 AS BIGINT), CAST(1 AS FLOAT)), "
                + "('dave', CAST(1 AS BIGINT), CAST(2 AS FLOAT))");
        set.execute().await();

        assertEquals("99", jedis.hget("t:s:9", "plays"), "older event time skipped");
        assertEquals("5000", jedis.hget("t:s:9", "_et"));
        assertEquals("7", jedis.hget("t:s:10", "plays"), "equal event time overwrites");
        byte[] carol = jedis.get("t:p:carol".getBytes(StandardCharsets.UTF_8));
        assertEquals(42f, ByteBuffer.wrap(carol).order(ByteOrder.LITTLE_ENDIAN).getFloat(16));
        assertTrue(jedis.exists("t:p:dave"));
    }

    @Test
    void deletesRemoveHashKeys() throws Exception {
        jedis.hset("t:d:11", Map.of("n", "5", "_et", "1"));
        tEnv.executeSql("CREATE TEMPORARY TABLE once (video_id INT, n BIGINT, et BIGINT, "
                + "PRIMARY KEY (video_id) NOT ENFORCED)"
                + with("key-prefix", "t:d:", "event-time-column", "et", "sink.buffer-flush.max-rows", "1"));
        // A filter on an aggregate: the planner keeps UPDATE_BEFORE for it, and 11's second row leaves the
        // result as an UPDATE_BEFORE alone, which the sink must apply as a delete.
        run("INSERT INTO once SELECT v, CAST(COUNT(*) AS BIGINT), CAST(MAX(ts) AS BIGINT) FROM (VALUES "
                + "(11, 1), (12, 1), (11, 2)) AS t(v, ts) GROUP BY v HAVING COUNT(*) < 2");
        assertFalse(jedis.exists("t:d:11"), "11 was seen twice: its row is deleted");
        assertEquals("1", jedis.hget("t:d:12", "n"));
    }

    @Test
    void zsetTrimmingAndDeletes() throws Exception {
        tEnv.executeSql("CREATE TEMPORARY TABLE recent_seen (user_id STRING, video_id BIGINT, seen_at BIGINT, "
                + "PRIMARY KEY (user_id, video_id) NOT ENFORCED)"
                + with("key-prefix", "t:seen:", "value.format", "zset", "zset.member-column", "video_id",
                "zset.score-column", "seen_at", "zset.max-size", "3", "ttl", "1 h"));
        tEnv.executeSql("CREATE TEMPORARY TABLE trending (region STRING, video_id BIGINT, score DOUBLE, "
                + "PRIMARY KEY (region, video_id) NOT ENFORCED)"
                + with("key-prefix", "t:top:", "value.format", "zset", "zset.member-column", "video_id",
                "zset.score-column", "score", "sink.buffer-flush.max-rows", "1"));
        jedis.zadd("t:top:SG", 100, "3");   // 3 must be removed by the job's DELETE

        var set = tEnv.createStatementSet();
        set.addInsertSql("INSERT INTO recent_seen SELECT u, CAST(v AS BIGINT), CAST(MAX(ts) AS BIGINT) FROM (VALUES "
                + "('alice', 1, 10), ('alice', 2, 20), ('alice', 3, 30), ('alice', 4, 40), ('alice', 5, 5), "
                + "('alice', 1, 50), ('bob', 9, 1)) AS t(u, v, ts) GROUP BY u, v");
        set.addInsertSql("INSERT INTO trending SELECT region, video_id, score FROM ("
                + "SELECT region, video_id, score, ROW_NUMBER() OVER (PARTITION BY region ORDER BY score DESC) "
                + "AS rn FROM (SELECT r AS region, CAST(v AS BIGINT) AS video_id, SUM(CAST(w AS DOUBLE)) AS score "
                + "FROM (VALUES ('SG', 1, 1.0), ('SG', 2, 2.0), ('SG', 3, 3.0), ('SG', 1, 5.0), ('SG', 2, 1.5)"
                + ", ('US', 7, 1.0)) AS t(r, v, w) GROUP BY r, v)) WHERE rn <= 2");
        set.execute().await();

        assertEquals(List.of("3:30.0", "4:40.0", "1:50.0"), members("t:seen:alice"),
                "top 3 by score (most recent); 5 (ts 5) and 2 (ts 20) trimmed");
        assertEquals(List.of("9:1.0"), members("t:seen:bob"));
        long ttl = jedis.pttl("t:seen:alice");
        assertTrue(ttl > 3_500_000 && ttl <= 3_600_000, "ttl " + ttl);
        assertEquals(List.of("2:3.5", "1:6.0"), members("t:top:SG"), "3 left the top 2: ZREM");
        assertEquals(List.of("7:1.0"), members("t:top:US"));
        long topTtl = jedis.pttl("t:top:US");
        assertTrue(topTtl > 172_700_000L && topTtl <= 172_800_000L, "default ttl 2 d: " + topTtl);
    }

    @Test
    void zsetGreaterKeepsEachMembersGreatestScoreFromPerEventRows() throws Exception {
        // Insert-only rows, one per event, out of order and repeated (a replay): no GROUP BY, no state.
        tEnv.executeSql("CREATE TEMPORARY TABLE seen_gt (user_id STRING, video_id STRING, seen_at DOUBLE, "
                + "PRIMARY KEY (user_id, video_id) NOT ENFORCED)"
                + with("key-prefix", "t:gt:", "value.format", "zset", "zset.member-column", "video_id",
                "zset.score-column", "seen_at", "zset.max-size", "3", "zset.score-update", "greater"));
        jedis.zadd("t:gt:alice", 100, "v9");   // stored by an earlier run, newer than this run's rows of v9
        String rows = "('alice', 'v1', 10.0), ('alice', 'v1', 50.0), ('alice', 'v1', 20.0), ('alice', 'v2', 30.0), "
                + "('alice', 'v9', 60.0), ('alice', 'v3', 5.0), ('alice', 'v2', 30.0), ('bob', 'v1', 1.0)";
        run("INSERT INTO seen_gt SELECT u, v, ts FROM (VALUES " + rows + ") AS t(u, v, ts)");
        run("INSERT INTO seen_gt SELECT u, v, ts FROM (VALUES " + rows + ") AS t(u, v, ts)");   // replayed

        assertEquals(List.of("v2:30.0", "v1:50.0", "v9:100.0"), members("t:gt:alice"),
                "v1 keeps 50 (not the later 20), v9 keeps its stored 100, v3 (5) is trimmed");
        assertEquals(List.of("v1:1.0"), members("t:gt:bob"));
    }

    private static List<String> members(String key) {
        return jedis.zrangeWithScores(key, 0, -1).stream()
                .map((Tuple t) -> t.getElement() + ":" + t.getScore()).collect(Collectors.toList());
    }

    @Test
    void intervalFlushDeliversRowsOfAnUnboundedSource() throws Exception {
        tEnv.executeSql("CREATE TEMPORARY TABLE ticks (id BIGINT, et BIGINT) WITH ('connector' = 'datagen', "
                + "'rows-per-second' = '1', 'fields.id.kind' = 'sequence', 'fields.id.start' = '1', "
                + "'fields.id.end' = '1000000', 'fields.et.kind' = 'sequence', 'fields.et.start' = '1', "
                + "'fields.et.end' = '1000000')");
        tEnv.executeSql("CREATE TEMPORARY TABLE tick_sink (id BIGINT, et BIGINT, PRIMARY KEY (id) NOT ENFORCED)"
                + with("key-prefix", "t:tick:", "event-time-column", "et", "sink.buffer-flush.interval", "100 ms"));
        // No checkpoints and max-rows 500 at one row per second: only the interval timer can flush.
        TableResult result = tEnv.executeSql("INSERT INTO tick_sink SELECT id, et FROM ticks");
        try {
            long deadline = System.currentTimeMillis() + 30_000;
            while (!jedis.exists("t:tick:1") && System.currentTimeMillis() < deadline) {
                Thread.sleep(50);
            }
            assertTrue(jedis.exists("t:tick:1"), "the first row reached Redis without more input");
        } finally {
            result.getJobClient().orElseThrow().cancel().get();
        }
    }

    @Test
    void invalidTablesAreRefusedWithClearMessages() {
        tEnv.executeSql("CREATE TEMPORARY TABLE no_pk (id BIGINT, et BIGINT)"
                + with("key-prefix", "t:x:", "event-time-column", "et"));
        assertRefused("INSERT INTO no_pk VALUES (CAST(1 AS BIGINT), CAST(1 AS BIGINT))", "PRIMARY KEY");

        tEnv.executeSql("CREATE TEMPORARY TABLE packed_str (id BIGINT, et BIGINT, name STRING, "
                + "PRIMARY KEY (id) NOT ENFORCED)"
                + with("key-prefix", "t:x:", "value.format", "packed", "event-time-column", "et"));
        assertRefused("INSERT INTO packed_str VALUES (CAST(1 AS BIGINT), CAST(1 AS BIGINT), 'x')",
                "value.format 'packed' stores only numeric columns");

        tEnv.executeSql("CREATE TEMPORARY TABLE no_et (id BIGINT, n BIGINT, PRIMARY KEY (id) NOT ENFORCED)"
                + with("key-prefix", "t:x:"));
        assertRefused("INSERT INTO no_et VALUES (CAST(1 AS BIGINT), CAST(1 AS BIGINT))", "event-time-column");

        tEnv.executeSql("CREATE TEMPORARY TABLE bad_zset (k STRING, m STRING, s DOUBLE, "
                + "PRIMARY KEY (k) NOT ENFORCED)" + with("key-prefix", "t:x:", "value.format", "zset",
                "zset.member-column", "m", "zset.score-column", "s"));
        assertRefused("INSERT INTO bad_zset VALUES ('a', 'b', 1.0)", "must be part of the PRIMARY KEY");

        tEnv.executeSql("CREATE TEMPORARY TABLE no_prefix (id BIGINT, et BIGINT, PRIMARY KEY (id) NOT ENFORCED)"
                + " WITH ('connector' = 'fyp-redis', 'event-time-column' = 'et')");
        assertRefused("INSERT INTO no_prefix VALUES (CAST(1 AS BIGINT), CAST(1 AS BIGINT))", "key-prefix");

        tEnv.executeSql("CREATE TEMPORARY TABLE bad_nodes (id BIGINT, et BIGINT, PRIMARY KEY (id) NOT ENFORCED)"
                + with("key-prefix", "t:x:", "event-time-column", "et", "cluster.nodes", "127.0.0.1:7000,nohost"));
        assertRefused("INSERT INTO bad_nodes VALUES (CAST(1 AS BIGINT), CAST(1 AS BIGINT))",
                "'cluster.nodes' must be host:port");
        tEnv.executeSql("CREATE TEMPORARY TABLE cluster_db (id BIGINT, et BIGINT, PRIMARY KEY (id) NOT ENFORCED)"
                + with("key-prefix", "t:x:", "event-time-column", "et", "cluster.nodes", "127.0.0.1:7000",
                "database", "1"));
        assertRefused("INSERT INTO cluster_db VALUES (CAST(1 AS BIGINT), CAST(1 AS BIGINT))",
                "Redis Cluster has only db 0");
    }

    private static void assertRefused(String insert, String expected) {
        Throwable e = assertThrows(Throwable.class, () -> tEnv.executeSql(insert));
        StringBuilder messages = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause()) {
            messages.append(t.getMessage()).append('\n');
        }
        assertTrue(messages.toString().contains(expected), messages.toString());
    }
}
