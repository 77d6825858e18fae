package dev.fyp.flink.redis;

import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.TableEnvironment;
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
import redis.clients.jedis.JedisCluster;
import redis.clients.jedis.Protocol;
import redis.clients.jedis.util.JedisClusterCRC16;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The writer on a real 6-node Redis Cluster: slot grouping, MOVED and ASK. Failover: RedisClusterFailoverTest. */
class RedisClusterSinkTest {

    static final RowType ROW = RowType.of(
            new LogicalType[] {new VarCharType(false, VarCharType.MAX_LENGTH), new BigIntType(false),
                    new DoubleType(), new BigIntType()},
            new String[] {"id", "et", "score", "n"});
    private static final RowType ZSET_ROW = RowType.of(
            new LogicalType[] {new VarCharType(false, VarCharType.MAX_LENGTH),
                    new VarCharType(false, VarCharType.MAX_LENGTH), new DoubleType()},
            new String[] {"user", "video", "s"});

    private static TestRedisCluster cluster;
    private static JedisCluster reader;

    @BeforeAll
    static void startCluster() throws Exception {
        cluster = TestRedisCluster.start(TestRedisCluster.BASE_PORT);
        reader = cluster.client();
    }

    @AfterAll
    static void stopCluster() throws Exception {
        if (reader != null) {
            reader.close();
        }
        if (cluster != null) {
            cluster.close();
        }
    }

    @BeforeEach
    void clean() {
        for (int port : cluster.ports()) {
            try (Jedis j = TestRedisCluster.node(port)) {
                if (j.role().get(0).equals("master")) {
                    j.flushAll();
                }
            }
        }
    }

    static RowData row(String id, long et, double score) {
        return GenericRowData.ofKind(RowKind.INSERT, StringData.fromString(id), et, score, 1L);
    }

    static long packedEventTime(JedisCluster r, String key) {
        byte[] v = r.get(key.getBytes(StandardCharsets.UTF_8));
        assertTrue(v != null, key + " is missing");
        return ByteBuffer.wrap(v).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
    }

    @Test
    void aFlushOfKeysOverAllSlotsLandsOnEveryPrimary() throws Exception {
        int keys = 3_000;
        Set<Integer> primaries = new HashSet<>();
        try (RedisSinkWriter packed = cluster.writer(ROW, new int[] {0}, Map.of("value.format", "packed",
                "event-time-column", "et", "sink.buffer-flush.max-rows", "100000"));
             RedisSinkWriter hash = cluster.writer(ROW, new int[] {0}, Map.of("value.format", "hash",
                     "event-time-column", "et", "key-prefix", "h:"));
             RedisSinkWriter zset = cluster.writer(ZSET_ROW, new int[] {0, 1}, Map.of("value.format", "zset",
                     "key-prefix", "z:", "zset.member-column", "video", "zset.score-column", "s",
                     "zset.max-size", "2"))) {
            for (int i = 0; i < keys; i++) {
                packed.write(row("k" + i, 1_000 + i, i), null);
                primaries.add(cluster.primaryOf(JedisClusterCRC16.getSlot("c:k" + i), -1));
            }
            packed.flush(false);   // one flush: 3,000 keys over ~2,700 slots on 3 primaries
            assertEquals(3, primaries.size(), "the keys span every primary");
            assertEquals(keys, packed.writes());
            for (int i = 0; i < 300; i++) {
                hash.write(row("k" + i, 5, i), null);
                for (int m = 0; m < 3; m++) {
                    zset.write(GenericRowData.ofKind(RowKind.INSERT, StringData.fromString("u" + i),
                            StringData.fromString("v" + m), (double) m), null);
                }
            }
            hash.flush(false);
            zset.flush(false);
        }
        for (int i = 0; i < keys; i++) {
            assertEquals(1_000 + i, packedEventTime(reader, "c:k" + i), "c:k" + i);
        }
        for (int i = 0; i < 300; i++) {
            assertEquals(Double.toString(i), reader.hget("h:k" + i, "score"), "h:k" + i);
            assertEquals(List.of("v1", "v2"), reader.zrange("z:u" + i, 0, -1), "z:u" + i + " trimmed to 2");
            long ttl = reader.pttl("z:u" + i);
            assertTrue(ttl > 590_000 && ttl <= 600_000, "ttl of z:u" + i + ": " + ttl);
        }
    }

    @Test
    void aSqlTableWithClusterNodesWritesToTheCluster() throws Exception {
        TableEnvironment tEnv = TableEnvironment.create(EnvironmentSettings.inStreamingMode());
        tEnv.getConfig().set("parallelism.default", "1");
        tEnv.executeSql("CREATE TEMPORARY TABLE t (id STRING, et BIGINT, x DOUBLE, PRIMARY KEY (id) NOT ENFORCED)"
                + " WITH ('connector' = 'fyp-redis', 'cluster.nodes' = '" + cluster.nodesOption()
                + "', 'password-env' = '" + TestRedis.PASSWORD_ENV + "', 'key-prefix' = 's:', "
                + "'value.format' = 'packed', 'event-time-column' = 'et')");
        String rows = java.util.stream.IntStream.rangeClosed(1, 200)
                .mapToObj(n -> "('k" + n + "', CAST(" + n + " AS BIGINT), CAST(" + n + " AS DOUBLE))")
                .collect(java.util.stream.Collectors.joining(", "));
        tEnv.executeSql("INSERT INTO t VALUES " + rows).await();
        for (int i = 1; i <= 200; i++) {
            assertEquals(i, packedEventTime(reader, "s:k" + i), "s:k" + i);
        }
    }

    /**
     * Moves a slot from its primary to another one while the writer's slot map still points at the old one: a
     * new key of the migrating slot is refused with ASK (written on the target behind ASKING), and once the slot
     * belongs to the target every key of it is refused with MOVED (slot map refreshed, rows re-sent).
     */
    @Test
    void aMigratingThenMovedSlotIsFollowed() throws Exception {
        String existing = "c:moved";
        int slot = JedisClusterCRC16.getSlot(existing);
        String fresh = keyInSlot(slot, "c:fresh-");
        int source = cluster.primaryOf(slot, -1);
        int target = cluster.ports().stream().filter(p -> p != source && isPrimary(p)).findFirst().orElseThrow();
        String sourceId = TestRedisCluster.nodeId(source);
        String targetId = TestRedisCluster.nodeId(target);
        try (RedisSinkWriter w = cluster.writer(ROW, new int[] {0}, Map.of("value.format", "packed",
                "event-time-column", "et"))) {
            w.write(row("moved", 1, 1.0), null);
            w.flush(false);   // the writer now has a slot map with slot -> source

            try (Jedis src = TestRedisCluster.node(source); Jedis dst = TestRedisCluster.node(target)) {
                dst.clusterSetSlotImporting(slot, sourceId);
                src.clusterSetSlotMigrating(slot, targetId);
                w.write(row(fresh.substring(2), 7, 7.0), null);
                w.flush(false);   // source: ASK (the key is not there) -> ASKING + EVALSHA on target
                assertEquals(List.of(existing), src.clusterGetKeysInSlot(slot, 10), "only the old key is on the source");
                dst.sendCommand(Protocol.Command.ASKING);
                assertTrue(dst.exists(fresh), "the new key went to the importing target");

                src.migrate("127.0.0.1", target, 0, 5_000,
                        new redis.clients.jedis.params.MigrateParams().auth(TestRedis.PASSWORD), existing);
                for (int port : cluster.ports()) {
                    if (isPrimary(port)) {
                        try (Jedis j = TestRedisCluster.node(port)) {
                            j.clusterSetSlotNode(slot, targetId);
                        }
                    }
                }
            }
            w.write(row("moved", 2, 2.0), null);
            w.flush(false);   // source: MOVED -> refresh the slot map -> target
            assertEquals(3, w.writes());
        }
        assertEquals(target, cluster.primaryOf(slot, -1));
        assertEquals(2, packedEventTime(reader, existing));
        assertEquals(7, packedEventTime(reader, fresh));
    }

    private static boolean isPrimary(int port) {
        try (Jedis j = TestRedisCluster.node(port)) {
            return j.role().get(0).equals("master");
        }
    }

    /** A key with the given prefix that hashes to {@code slot}. */
    static String keyInSlot(int slot, String prefix) {
        for (int i = 0; ; i++) {
            if (JedisClusterCRC16.getSlot(prefix + i) == slot) {
                return prefix + i;
            }
        }
    }
}
