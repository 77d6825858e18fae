package dev.fyp.flink.redis;

import org.junit.jupiter.api.Test;

import redis.clients.jedis.Jedis;
import redis.clients.jedis.JedisCluster;
import redis.clients.jedis.util.JedisClusterCRC16;

import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A primary SIGKILLed while the writer flushes: the writer rides out the failover within 'sink.max-outage', and
 * every write that a completed flush acknowledged is on the promoted replica. Its own cluster (base port + 10),
 * because the test leaves one node dead.
 */
class RedisClusterFailoverTest {

    private static final int KEYS = 300;

    @Test
    void aKilledPrimaryLosesNoAcknowledgedWrite() throws Exception {
        try (TestRedisCluster cluster = TestRedisCluster.start(TestRedisCluster.BASE_PORT + 10);
             RedisSinkWriter w = cluster.writer(RedisClusterSinkTest.ROW, new int[] {0}, Map.of(
                     "value.format", "packed", "event-time-column", "et", "sink.buffer-flush.max-rows", "100000"))) {
            int victim = cluster.primaryOf(JedisClusterCRC16.getSlot("c:0:0"), -1);
            CompletableFuture<Void> kill = CompletableFuture.runAsync(() -> {
                try {
                    Thread.sleep(500);
                    cluster.kill(victim);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            // Flush n writes KEYS new keys "n:i" (over all slots) with event time n; a flush that returned is
            // acknowledged, so every key of flushes 1..acknowledged must survive.
            long acknowledged = 0;
            long longestFlushMs = 0;
            long afterKill = 0;
            long deadline = System.currentTimeMillis() + 25_000;
            while (afterKill < 5 && System.currentTimeMillis() < deadline) {
                long n = acknowledged + 1;
                for (int i = 0; i < KEYS; i++) {
                    w.write(RedisClusterSinkTest.row(n + ":" + i, n, n), null);
                }
                long start = System.nanoTime();
                w.flush(false);
                longestFlushMs = Math.max(longestFlushMs, (System.nanoTime() - start) / 1_000_000L);
                acknowledged = n;
                if (kill.isDone()) {
                    afterKill++;
                }
            }
            assertEquals(5, afterKill, "flushes kept succeeding after the primary died");
            assertTrue(longestFlushMs >= 500, "one flush waited out the failover (" + longestFlushMs + " ms)");

            int promoted = cluster.primaryOf(JedisClusterCRC16.getSlot("c:0:0"), victim);
            assertTrue(promoted != victim, "a replica took over the slot");
            try (JedisCluster reader = cluster.client()) {
                for (long n = 1; n <= acknowledged; n++) {
                    for (int i = 0; i < KEYS; i++) {
                        String key = "c:" + n + ":" + i;
                        assertEquals(n, RedisClusterSinkTest.packedEventTime(reader, key), key);
                    }
                }
            }
            try (Jedis j = TestRedisCluster.node(promoted)) {
                assertEquals("master", j.role().get(0));
            }
            kill.get(1, TimeUnit.SECONDS);
        }
    }
}
