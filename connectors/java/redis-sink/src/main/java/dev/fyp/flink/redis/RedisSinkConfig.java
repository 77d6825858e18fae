package dev.fyp.flink.redis;

import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.table.api.ValidationException;

import redis.clients.jedis.HostAndPort;

import java.io.Serializable;
import java.util.LinkedHashSet;
import java.util.Set;

import static dev.fyp.flink.redis.RedisSinkOptions.BUFFER_FLUSH_INTERVAL;
import static dev.fyp.flink.redis.RedisSinkOptions.BUFFER_FLUSH_MAX_ROWS;
import static dev.fyp.flink.redis.RedisSinkOptions.CLUSTER_NODES;
import static dev.fyp.flink.redis.RedisSinkOptions.DATABASE;
import static dev.fyp.flink.redis.RedisSinkOptions.HOST;
import static dev.fyp.flink.redis.RedisSinkOptions.MAX_OUTAGE;
import static dev.fyp.flink.redis.RedisSinkOptions.PASSWORD;
import static dev.fyp.flink.redis.RedisSinkOptions.PASSWORD_ENV;
import static dev.fyp.flink.redis.RedisSinkOptions.PORT;
import static dev.fyp.flink.redis.RedisSinkOptions.TIMEOUT;
import static dev.fyp.flink.redis.RedisSinkOptions.TTL;

/** Connection, TTL and buffering settings of one sink (serialized into the job graph). */
public final class RedisSinkConfig implements Serializable {

    private static final long serialVersionUID = 1L;

    final String host;
    final int port;
    /** 'cluster.nodes' as given ("host:port,host:port"), or null for a single Redis at host:port. */
    final String clusterNodes;
    /** Literal password, or null. */
    private final String password;
    /** Environment variable of the TaskManager with the password, or null. */
    final String passwordEnv;
    final int database;
    final int timeoutMs;
    /** TTL in ms set on every write; 0 = no expiry. */
    final long ttlMs;
    final int maxRows;
    /** 0 = no timer. */
    final long flushIntervalMs;
    /** How long a flush retries connection errors before the task fails. */
    final long maxOutageMs;
    /** First back-off of a retried flush; doubled per retry, capped at 2 s. */
    final long initialBackoffMs;

    RedisSinkConfig(String host, int port, String clusterNodes, String password, String passwordEnv, int database, int timeoutMs,
                    long ttlMs, int maxRows, long flushIntervalMs, long maxOutageMs, long initialBackoffMs) {
        this.host = host;
        this.port = port;
        this.clusterNodes = clusterNodes;
        this.password = password;
        this.passwordEnv = passwordEnv;
        this.database = database;
        this.timeoutMs = timeoutMs;
        this.ttlMs = ttlMs;
        this.maxRows = maxRows;
        this.flushIntervalMs = flushIntervalMs;
        this.maxOutageMs = maxOutageMs;
        this.initialBackoffMs = initialBackoffMs;
    }

    public static RedisSinkConfig fromOptions(ReadableConfig o) {
        long ttlMs = o.get(TTL).toMillis();
        long intervalMs = o.get(BUFFER_FLUSH_INTERVAL).toMillis();
        long timeoutMs = o.get(TIMEOUT).toMillis();
        check(o.get(PORT) > 0 && o.get(PORT) < 65536, "'port' must be in 1..65535, got " + o.get(PORT));
        check(o.get(DATABASE) >= 0, "'database' must be >= 0");
        check(ttlMs >= 0, "'ttl' must not be negative");
        check(o.get(BUFFER_FLUSH_MAX_ROWS) >= 1, "'sink.buffer-flush.max-rows' must be >= 1");
        check(intervalMs >= 0, "'sink.buffer-flush.interval' must not be negative");
        check(!o.get(MAX_OUTAGE).isNegative(), "'sink.max-outage' must not be negative");
        check(timeoutMs > 0 && timeoutMs <= Integer.MAX_VALUE, "'timeout' must be positive");
        String password = o.getOptional(PASSWORD).filter(s -> !s.isEmpty()).orElse(null);
        String passwordEnv = o.getOptional(PASSWORD_ENV).filter(s -> !s.isEmpty()).orElse(null);
        String clusterNodes = o.getOptional(CLUSTER_NODES).map(String::trim).filter(s -> !s.isEmpty()).orElse(null);
        if (clusterNodes != null) {
            parseNodes(clusterNodes);
            check(o.get(DATABASE) == 0, "'database' must be 0 with 'cluster.nodes': Redis Cluster has only db 0");
        }
        return new RedisSinkConfig(o.get(HOST), o.get(PORT), clusterNodes, password, passwordEnv, o.get(DATABASE),
                (int) timeoutMs, ttlMs, o.get(BUFFER_FLUSH_MAX_ROWS), intervalMs, o.get(MAX_OUTAGE).toMillis(), 200L);
    }

    /** The same settings with another first back-off (tests). */
    RedisSinkConfig withInitialBackoffMs(long ms) {
        return new RedisSinkConfig(host, port, clusterNodes, password, passwordEnv, database, timeoutMs, ttlMs, maxRows,
                flushIntervalMs, maxOutageMs, ms);
    }

    /** Resolved on the TaskManager: 'password', else the variable named by 'password-env', else null. */
    String resolvePassword() {
        if (password != null) {
            return password;
        }
        if (passwordEnv != null) {
            String v = System.getenv(passwordEnv);
            return v == null || v.isEmpty() ? null : v;
        }
        return null;
    }

    boolean isCluster() {
        return clusterNodes != null;
    }

    /** The startup nodes of 'cluster.nodes'. */
    Set<HostAndPort> clusterNodes() {
        return parseNodes(clusterNodes);
    }

    private static Set<HostAndPort> parseNodes(String nodes) {
        Set<HostAndPort> parsed = new LinkedHashSet<>();
        for (String node : nodes.split(",")) {
            String n = node.trim();
            int colon = n.lastIndexOf(':');
            int port = -1;
            try {
                port = colon > 0 ? Integer.parseInt(n.substring(colon + 1)) : -1;
            } catch (NumberFormatException e) {
                port = -1;
            }
            check(port > 0 && port < 65536, "'cluster.nodes' must be host:port[,host:port...], got '" + nodes + "'");
            parsed.add(new HostAndPort(n.substring(0, colon), port));
        }
        return parsed;
    }

    String address() {
        return isCluster() ? "Redis Cluster " + clusterNodes : host + ":" + port + "/" + database;
    }

    static void check(boolean ok, String message) {
        if (!ok) {
            throw new ValidationException("fyp-redis: " + message);
        }
    }
}
