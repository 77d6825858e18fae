package dev.fyp.flink.redis;

import java.util.List;

/**
 * Where a flush goes: one Redis ({@link SingleRedisTarget}) or a Redis Cluster ({@link ClusterRedisTarget}).
 * {@link RedisSinkWriter} owns buffering and the retry budget; a target owns connections and commands.
 */
interface RedisTarget extends AutoCloseable {

    /**
     * Writes {@code pending} and removes from it every op the server acknowledged; what is left was not written
     * for sure and is sent again by the next call. Throws {@code JedisConnectionException} or
     * {@link OpCommands.RetriableException} when a later attempt may succeed, another {@code JedisException}
     * when it will not.
     */
    void write(List<RedisOp> pending, long updateTime);

    /** Drops connections; the next {@link #write} reconnects. Never throws. */
    @Override
    void close();
}
