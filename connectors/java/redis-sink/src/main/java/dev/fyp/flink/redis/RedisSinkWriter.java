// One file (~430 lines): the flush buffer, the outage backoff and the checkpoint flush are one state machine over
// one connection; RedisSinkWriterTest drives it against a real redis-server.
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

import redis.clients.jedis.DefaultJedisClientConfig;
import redis.clients.jedis.HostAndPort;
import redis.clients.jedis.Jedis;
import redis.clients.jedis.Pipeline;
import redis.clients.jedis.Response;
import redis.clients.jedis.exceptions.JedisAccessControlException;
import redis.clients.jedis.exceptions.JedisConnectionException;
import redis.clients.jedis.exceptions.JedisDataException;
import redis.clients.jedis.exceptions.JedisException;
import redis.clients.jedis.exceptions.JedisNoScriptException;
import redis.clients.jedis.params.ZAddParams;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.concurrent.ScheduledFuture;

/**
 * Buffers upserts per key (last row wins) and writes each buffer as one Redis pipeline: when
 * {@code sink.buffer-flush.max-rows} keys are buffered, {@code sink.buffer-flush.interval} after the first
 * buffered row (processing-time timer), and in {@link #flush(boolean)} before every checkpoint. Every call runs
 * on the task's mailbox thread, so nothing here is synchronized.
 */
public final class RedisSinkWriter implements SinkWriter<RowData> {

    private static final Logger LOG = LoggerFactory.getLogger(RedisSinkWriter.class);
    /** Short enough that writes resume within ~2 s of Redis coming back. */
    private static final long MAX_BACKOFF_MS = 2_000L;
    private static final byte[] ET = RowEncoder.utf8(RowEncoder.ET_FIELD);
    private static final byte[] UT = RowEncoder.utf8(RowEncoder.UT_FIELD);
    private static final ZAddParams GREATER = ZAddParams.zAddParams().gt();
    /** Packed keys per script call: past ~100 the saving per key stops growing (docs/PERFORMANCE.md). */
    static final int PACKED_KEYS_PER_CALL = 100;

    private final RedisSinkConfig config;
    private final RowEncoder encoder;
    private final ProcessingTimeService timeService;
    private final LinkedHashMap<ByteBuffer, RedisOp> buffer = new LinkedHashMap<>();
    private final byte[] ttlArg;

    private final Counter writes;
    private final Counter staleSkipped;
    private final Counter flushes;
    private final Counter flushRetries;
    private final Histogram flushLatencyMs;
    private final Counter recordsSend;

    private Jedis jedis;
    private byte[] hashSha;
    private byte[] packedSha;
    private ScheduledFuture<?> timer;
    private boolean timerPending;
    private volatile long lastFlushLatencyMs;

    public RedisSinkWriter(RedisSinkConfig config, RowEncoder encoder, ProcessingTimeService timeService,
                           MetricGroup metrics) {
        this.config = config;
        this.encoder = encoder;
        this.timeService = timeService;
        this.ttlArg = RowEncoder.utf8(Long.toString(config.ttlMs));
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
        ByteBuffer k = encoder.bufferKey(op);
        RedisOp buffered = buffer.remove(k);   // re-insert: the buffer keeps the order of each key's last row
        if (encoder.zsetGreaterOnly && buffered != null && buffered.kind == RedisOp.Kind.ZSET_ADD
                && op.kind == RedisOp.Kind.ZSET_ADD && buffered.score > op.score) {
            op = buffered;   // what ZADD GT would keep
        }
        buffer.put(k, op);
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
        disconnect();
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
     * restart replays them. Past that the task fails and the job restarts from its checkpoint.
     */
    void flushBuffer() throws IOException, InterruptedException {
        if (buffer.isEmpty()) {
            return;
        }
        List<RedisOp> ops = new ArrayList<>(buffer.values());
        buffer.clear();
        long start = System.nanoTime();
        long backoff = config.initialBackoffMs;
        for (int attempt = 1; ; attempt++) {
            try {
                connect();
                execute(ops, System.currentTimeMillis());
                if (attempt > 1) {
                    LOG.info("fyp-redis: flush to {} succeeded after {} attempts ({} ms)", config.address(), attempt,
                            (System.nanoTime() - start) / 1_000_000L);
                }
                break;
            } catch (JedisConnectionException | RetriableException e) {
                disconnect();
                long outageMs = (System.nanoTime() - start) / 1_000_000L;
                if (outageMs + backoff > config.maxOutageMs) {
                    throw new IOException("fyp-redis: writing " + ops.size() + " rows to " + config.address()
                            + " failed for " + outageMs + " ms (" + attempt + " attempts; sink.max-outage "
                            + config.maxOutageMs + " ms)", e);
                }
                flushRetries.inc();
                LOG.warn("fyp-redis: flush to {} failed ({}); attempt {}, retrying in {} ms", config.address(),
                        e.getMessage(), attempt, backoff);
                Thread.sleep(backoff);
                backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
            } catch (JedisException e) {
                disconnect();
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

    private void connect() {
        if (jedis != null) {
            return;
        }
        DefaultJedisClientConfig client = DefaultJedisClientConfig.builder()
                .connectionTimeoutMillis(config.timeoutMs)
                .socketTimeoutMillis(config.timeoutMs)
                .password(config.resolvePassword())
                .database(config.database)
                .clientName("fyp-flink-redis-sink")
                .build();
        Jedis j = new Jedis(new HostAndPort(config.host, config.port), client);
        try {
            loadScripts(j);
        } catch (RuntimeException e) {
            j.close();
            throw e;
        }
        jedis = j;
    }

    private void loadScripts(Jedis j) {
        switch (encoder.format) {
            case HASH:
                hashSha = j.scriptLoad(RowEncoder.utf8(LuaScripts.HASH));
                break;
            case PACKED:
                packedSha = j.scriptLoad(RowEncoder.utf8(LuaScripts.PACKED_MANY));
                break;
            default:
                j.ping();
        }
    }

    private void disconnect() {
        if (jedis != null) {
            try {
                jedis.close();
            } catch (RuntimeException e) {
                LOG.debug("fyp-redis: closing the connection failed", e);
            }
            jedis = null;
        }
    }

    /**
     * One pipeline for all ops, packed keys {@link #PACKED_KEYS_PER_CALL} to a script call; ops whose script the
     * server lost (NOSCRIPT) are re-sent with EVAL. Keys of one call may hash to different cluster slots, which
     * is fine for the single server this writer talks to.
     */
    private void execute(List<RedisOp> ops, long updateTime) {
        byte[] ut = RowEncoder.utf8(Long.toString(updateTime));
        Pipeline p = jedis.pipelined();
        List<RedisOp> single = new ArrayList<>(ops.size());
        List<RedisOp> packed = new ArrayList<>(ops.size());
        List<Response<?>> primary = new ArrayList<>(ops.size());
        List<Response<?>> secondary = new ArrayList<>();
        for (RedisOp op : ops) {
            if (op.kind == RedisOp.Kind.PACKED_SET) {
                packed.add(op);
                continue;
            }
            single.add(op);
            switch (op.kind) {
                case HASH_SET:
                    primary.add(p.evalsha(hashSha, List.of(op.key), hashArgs(op, ut)));
                    break;
                case DEL:
                    primary.add(p.del(op.key));
                    break;
                case ZSET_ADD:
                    primary.add(encoder.zsetGreaterOnly ? p.zadd(op.key, op.score, op.member, GREATER)
                            : p.zadd(op.key, op.score, op.member));
                    if (encoder.zsetMaxSize > 0) {
                        secondary.add(p.zremrangeByRank(op.key, 0, -(encoder.zsetMaxSize + 1L)));
                    }
                    if (config.ttlMs > 0) {
                        secondary.add(p.pexpire(op.key, config.ttlMs));
                    }
                    break;
                case ZSET_REM:
                    primary.add(p.zrem(op.key, op.member));
                    break;
                default:
                    throw new IllegalStateException(op.kind.name());
            }
        }
        List<List<RedisOp>> packedCalls = new ArrayList<>();
        List<Response<Object>> packedReplies = new ArrayList<>();
        for (int from = 0; from < packed.size(); from += PACKED_KEYS_PER_CALL) {
            List<RedisOp> call = packed.subList(from, Math.min(from + PACKED_KEYS_PER_CALL, packed.size()));
            packedCalls.add(call);
            packedReplies.add(p.evalsha(packedSha, packedKeys(call), packedArgs(call, updateTime)));
        }
        p.sync();

        List<RedisOp> noScript = new ArrayList<>();
        for (int i = 0; i < single.size(); i++) {
            RedisOp op = single.get(i);
            Object r;
            try {
                r = primary.get(i).get();
            } catch (JedisNoScriptException e) {
                noScript.add(op);
                continue;
            } catch (JedisDataException e) {
                throw classify(e);
            }
            count(op, r);
        }
        List<List<RedisOp>> noScriptCalls = new ArrayList<>();
        for (int i = 0; i < packedCalls.size(); i++) {
            try {
                countPacked(packedCalls.get(i), packedReplies.get(i).get());
            } catch (JedisNoScriptException e) {
                noScriptCalls.add(packedCalls.get(i));
            } catch (JedisDataException e) {
                throw classify(e);
            }
        }
        for (Response<?> r : secondary) {
            try {
                r.get();
            } catch (JedisDataException e) {
                throw classify(e);
            }
        }
        if (!noScript.isEmpty() || !noScriptCalls.isEmpty()) {
            resendWithEval(noScript, noScriptCalls, ut, updateTime);
        }
    }

    private void resendWithEval(List<RedisOp> hashOps, List<List<RedisOp>> packedCalls, byte[] ut, long updateTime) {
        LOG.info("fyp-redis: {} lost the sink's script (NOSCRIPT); re-sending {} hash rows and {} packed calls "
                + "with EVAL", config.address(), hashOps.size(), packedCalls.size());
        byte[] hashSrc = RowEncoder.utf8(LuaScripts.HASH);
        byte[] packedSrc = RowEncoder.utf8(LuaScripts.PACKED_MANY);
        Pipeline q = jedis.pipelined();
        List<Response<Object>> hashAgain = new ArrayList<>(hashOps.size());
        for (RedisOp op : hashOps) {
            hashAgain.add(q.eval(hashSrc, List.of(op.key), hashArgs(op, ut)));
        }
        List<Response<Object>> packedAgain = new ArrayList<>(packedCalls.size());
        for (List<RedisOp> call : packedCalls) {
            packedAgain.add(q.eval(packedSrc, packedKeys(call), packedArgs(call, updateTime)));
        }
        q.sync();
        try {
            for (int i = 0; i < hashOps.size(); i++) {
                count(hashOps.get(i), hashAgain.get(i).get());
            }
            for (int i = 0; i < packedCalls.size(); i++) {
                countPacked(packedCalls.get(i), packedAgain.get(i).get());
            }
        } catch (JedisDataException e) {
            throw classify(e);
        }
        loadScripts(jedis);   // EVAL cached them; SCRIPT LOAD keeps the SHA valid for the next flush
    }

    private void countPacked(List<RedisOp> call, Object reply) {
        List<?> written = (List<?>) reply;
        for (int i = 0; i < call.size(); i++) {
            count(call.get(i), written.get(i));
        }
    }

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

    private List<byte[]> hashArgs(RedisOp op, byte[] ut) {
        int pairs = op.fieldValues.length / 2 + 2;
        List<byte[]> args = new ArrayList<>(3 + 2 * pairs + op.nullFields.length);
        byte[] et = RowEncoder.utf8(Long.toString(op.eventTime));
        args.add(et);
        args.add(ttlArg);
        args.add(RowEncoder.utf8(Integer.toString(pairs)));
        args.addAll(Arrays.asList(op.fieldValues));
        args.add(ET);
        args.add(et);
        args.add(UT);
        args.add(ut);
        args.addAll(Arrays.asList(op.nullFields));
        return args;
    }

    private static List<byte[]> packedKeys(List<RedisOp> call) {
        List<byte[]> keys = new ArrayList<>(call.size());
        for (RedisOp op : call) {
            keys.add(op.key);
        }
        return keys;
    }

    private List<byte[]> packedArgs(List<RedisOp> call, long updateTime) {
        List<byte[]> args = new ArrayList<>(call.size() + 1);
        args.add(ttlArg);
        for (RedisOp op : call) {
            ByteBuffer.wrap(op.packed).order(ByteOrder.LITTLE_ENDIAN).putLong(8, updateTime);
            args.add(op.packed);
        }
        return args;
    }

    /** Server errors worth a retry (loading, busy script, OOM under noeviction) versus the rest. */
    private RuntimeException classify(JedisDataException e) {
        String m = String.valueOf(e.getMessage());
        for (String transientPrefix : new String[] {"LOADING", "BUSY", "TRYAGAIN", "OOM", "MASTERDOWN",
                "CLUSTERDOWN"}) {
            if (m.startsWith(transientPrefix)) {
                return new RetriableException(m, e);
            }
        }
        return e;
    }

    /** A server error that a later attempt may not get. */
    private static final class RetriableException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        RetriableException(String message, Throwable cause) {
            super(message, cause);
        }
    }
}
