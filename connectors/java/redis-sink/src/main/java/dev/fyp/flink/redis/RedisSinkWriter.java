package dev.fyp.flink.redis;

import org.apache.flink.api.common.operators.ProcessingTimeService;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Histogram;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.metrics.groups.SinkWriterMetricGroup;
import org.apache.flink.runtime.metrics.DescriptiveStatisticsHistogram;
import org.apache.flink.table.data.RowData;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import redis.clients.jedis.exceptions.JedisAccessControlException;
import redis.clients.jedis.exceptions.JedisConnectionException;
import redis.clients.jedis.exceptions.JedisException;

import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.concurrent.ScheduledFuture;

/**
 * Buffers upserts per key (last row wins; {@link BufferKey}) and writes each buffer as one Redis pipeline: when
 * {@code sink.buffer-flush.max-rows} keys are buffered, {@code sink.buffer-flush.interval} after the first
 * buffered row (processing-time timer), and in {@link #flush(boolean)} before every checkpoint. Every call runs
 * on the task's mailbox thread, so nothing here is synchronized. Where the pipeline goes is a {@link RedisTarget}:
 * one Redis, or a Redis Cluster when {@code cluster.nodes} is set.
 */
public final class RedisSinkWriter implements SinkWriter<RowData> {

    private static final Logger LOG = LoggerFactory.getLogger(RedisSinkWriter.class);
    /** Short enough that writes resume within ~2 s of Redis coming back. */
    private static final long MAX_BACKOFF_MS = 2_000L;
    static final int PACKED_KEYS_PER_CALL = OpCommands.PACKED_KEYS_PER_CALL;

    private final RedisSinkConfig config;
    private final RowEncoder encoder;
    private final ProcessingTimeService timeService;
    private final HashMap<BufferKey, RedisOp> buffer = new HashMap<>();
    private final RedisTarget target;

    private final Counter writes;
    private final Counter staleSkipped;
    private final Counter flushes;
    private final Counter flushRetries;
    private final Histogram flushLatencyMs;
    private final Counter recordsSend;

    private ScheduledFuture<?> timer;
    private boolean timerPending;
    private volatile long lastFlushLatencyMs;

    public RedisSinkWriter(RedisSinkConfig config, RowEncoder encoder, ProcessingTimeService timeService,
                           MetricGroup metrics) {
        this.config = config;
        this.encoder = encoder;
        this.timeService = timeService;
        OpCommands commands = new OpCommands(encoder, config.ttlMs);
        this.target = config.isCluster() ? new ClusterRedisTarget(config, commands, this::count)
                : new SingleRedisTarget(config, commands, this::count);
        this.writes = metrics.counter("redisWrites");
        this.staleSkipped = metrics.counter("redisStaleSkipped");
        this.flushes = metrics.counter("redisFlushes");
        this.flushRetries = metrics.counter("redisFlushRetries");
        this.flushLatencyMs = metrics.histogram("redisFlushLatencyMs", new DescriptiveStatisticsHistogram(1000));
        metrics.gauge("redisLastFlushLatencyMs", () -> lastFlushLatencyMs);
        metrics.gauge("redisBufferedRows", buffer::size);
        this.recordsSend = metrics instanceof SinkWriterMetricGroup
                ? ((SinkWriterMetricGroup) metrics).getNumRecordsSendCounter() : null;
    }

    @Override
    public void write(RowData row, Context context) throws IOException, InterruptedException {
        RedisOp op = encoder.encode(row);
        // Last row per key wins. The order between keys does not matter: each key's write is independent.
        RedisOp buffered = buffer.put(encoder.bufferKey(op), op);
        if (encoder.zsetGreaterOnly && buffered != null && buffered.kind == RedisOp.Kind.ZSET_ADD
                && op.kind == RedisOp.Kind.ZSET_ADD && buffered.score > op.score) {
            buffer.put(encoder.bufferKey(buffered), buffered);   // what ZADD GT would keep
        }
        if (buffer.size() >= config.maxRows) {
            flushBuffer();
        } else if (config.flushIntervalMs > 0 && !timerPending) {
            timerPending = true;
            timer = timeService.registerTimer(timeService.getCurrentProcessingTime() + config.flushIntervalMs,
                    time -> {
                        timerPending = false;
                        flushBuffer();
                    });
        }
    }

    @Override
    public void flush(boolean endOfInput) throws IOException, InterruptedException {
        flushBuffer();
    }

    @Override
    public void close() {
        if (timer != null) {
            timer.cancel(false);
        }
        target.close();
    }

    long writes() {
        return writes.getCount();
    }

    long staleSkipped() {
        return staleSkipped.getCount();
    }

    long flushes() {
        return flushes.getCount();
    }

    int buffered() {
        return buffer.size();
    }

    /**
     * Writes the buffer. Connection errors (Redis down, restarting, failing over) are retried with back-off for up
     * to {@code sink.max-outage}: the task blocks, so the job back-pressures and Kafka holds the events, and no
     * restart replays them. Past that the task fails and the job restarts from its checkpoint. A retry resends
     * only what the target has not acknowledged (a single Redis: the whole flush; a cluster: the refused nodes).
     */
    void flushBuffer() throws IOException, InterruptedException {
        if (buffer.isEmpty()) {
            return;
        }
        List<RedisOp> ops = new ArrayList<>(buffer.values());
        int rows = ops.size();
        buffer.clear();
        long start = System.nanoTime();
        long backoff = config.initialBackoffMs;
        for (int attempt = 1; ; attempt++) {
            try {
                target.write(ops, System.currentTimeMillis());
                if (attempt > 1) {
                    LOG.info("fyp-redis: flush to {} succeeded after {} attempts ({} ms)", config.address(), attempt,
                            (System.nanoTime() - start) / 1_000_000L);
                }
                break;
            } catch (JedisConnectionException | OpCommands.RetriableException e) {
                if (!config.isCluster()) {
                    target.close();   // the cluster's pools drop broken connections themselves
                }
                long outageMs = (System.nanoTime() - start) / 1_000_000L;
                if (outageMs + backoff > config.maxOutageMs) {
                    throw new IOException("fyp-redis: writing " + rows + " rows to " + config.address()
                            + " failed for " + outageMs + " ms (" + attempt + " attempts; sink.max-outage "
                            + config.maxOutageMs + " ms)", e);
                }
                flushRetries.inc();
                LOG.warn("fyp-redis: flush to {} failed ({}); attempt {}, retrying in {} ms", config.address(),
                        e.getMessage(), attempt, backoff);
                Thread.sleep(backoff);
                backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
            } catch (JedisException e) {
                target.close();
                String m = String.valueOf(e.getMessage());
                if (e instanceof JedisAccessControlException || m.startsWith("NOAUTH") || m.startsWith("WRONGPASS")) {
                    throw new IOException("fyp-redis: Redis at " + config.address() + " refused authentication ("
                            + m + "); check 'password' / 'password-env'" + (config.passwordEnv == null ? ""
                            : " (variable " + config.passwordEnv + " is "
                            + (config.resolvePassword() == null ? "unset or empty)" : "set)")), e);
                }
                throw new IOException("fyp-redis: Redis at " + config.address() + " rejected a write: " + m, e);
            }
        }
        long ms = (System.nanoTime() - start) / 1_000_000L;
        lastFlushLatencyMs = ms;
        flushLatencyMs.update(ms);
        flushes.inc();
    }

    /** Counts one acknowledged op: a script reply of 0 means the stored value had a newer event time. */
    private void count(RedisOp op, Object reply) {
        boolean scripted = op.kind == RedisOp.Kind.HASH_SET || op.kind == RedisOp.Kind.PACKED_SET;
        if (scripted && reply instanceof Long && (Long) reply == 0L) {
            staleSkipped.inc();
        } else {
            writes.inc();
            if (recordsSend != null) {
                recordsSend.inc();
            }
        }
    }
}
