package dev.fyp.flink.redis;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import redis.clients.jedis.DefaultJedisClientConfig;
import redis.clients.jedis.HostAndPort;
import redis.clients.jedis.Jedis;
import redis.clients.jedis.JedisClientConfig;
import redis.clients.jedis.Pipeline;
import redis.clients.jedis.exceptions.JedisDataException;
import redis.clients.jedis.exceptions.JedisNoScriptException;

import java.util.ArrayList;
import java.util.List;

/** One Redis server over one connection: the whole flush is one pipeline. */
final class SingleRedisTarget implements RedisTarget {

    private static final Logger LOG = LoggerFactory.getLogger(SingleRedisTarget.class);

    private final RedisSinkConfig config;
    private final OpCommands commands;
    private final OpCommands.ReplyConsumer counter;
    private Jedis jedis;
    private byte[] sha;

    SingleRedisTarget(RedisSinkConfig config, OpCommands commands, OpCommands.ReplyConsumer counter) {
        this.config = config;
        this.commands = commands;
        this.counter = counter;
    }

    /** The client settings both targets share (the cluster adds no database: Redis Cluster has only 0). */
    static JedisClientConfig clientConfig(RedisSinkConfig config) {
        return DefaultJedisClientConfig.builder()
                .connectionTimeoutMillis(config.timeoutMs)
                .socketTimeoutMillis(config.timeoutMs)
                .password(config.resolvePassword())
                .database(config.database)
                .clientName("fyp-flink-redis-sink")
                .build();
    }

    private void connect() {
        if (jedis != null) {
            return;
        }
        Jedis j = new Jedis(new HostAndPort(config.host, config.port), clientConfig(config));
        try {
            loadScript(j);
        } catch (RuntimeException e) {
            j.close();
            throw e;
        }
        jedis = j;
    }

    private void loadScript(Jedis j) {
        byte[] source = commands.scriptSource();
        if (source != null) {
            sha = j.scriptLoad(source);
        } else {
            j.ping();
        }
    }

    @Override
    public void close() {
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
     * One pipeline for all ops; ops whose script the server lost (NOSCRIPT) are re-sent with EVAL. Keys of one
     * packed call may hash to different cluster slots, which is fine for a single server. A connection error
     * leaves all ops pending: a re-sent op is harmless (scripts skip older event times, ZADD/DEL repeat).
     */
    @Override
    public void write(List<RedisOp> pending, long updateTime) {
        connect();
        Pipeline p = jedis.pipelined();
        List<OpCommands.Call> calls = commands.append(p, pending, updateTime, sha, false);
        p.sync();
        List<RedisOp> noScript = settle(calls, true);
        if (!noScript.isEmpty()) {
            LOG.info("fyp-redis: {} lost the sink's script (NOSCRIPT); re-sending {} rows with EVAL",
                    config.address(), noScript.size());
            Pipeline q = jedis.pipelined();
            List<OpCommands.Call> again = commands.append(q, noScript, updateTime, null, false);
            q.sync();
            settle(again, false);
            loadScript(jedis);   // EVAL cached it; SCRIPT LOAD keeps the SHA valid for the next flush
        }
        pending.clear();
    }

    /** Counts the written ops and returns those refused with NOSCRIPT; throws on any other error reply. */
    private List<RedisOp> settle(List<OpCommands.Call> calls, boolean noScriptAllowed) {
        List<RedisOp> noScript = new ArrayList<>();
        for (OpCommands.Call call : calls) {
            JedisDataException e = call.error();
            if (e instanceof JedisNoScriptException && noScriptAllowed) {
                noScript.addAll(call.ops);
            } else if (e != null) {
                throw OpCommands.classify(e);
            } else {
                OpCommands.forEachReply(call, counter);
            }
        }
        return noScript;
    }
}
