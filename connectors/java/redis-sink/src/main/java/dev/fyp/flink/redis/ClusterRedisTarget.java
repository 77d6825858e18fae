package dev.fyp.flink.redis;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import redis.clients.jedis.Connection;
import redis.clients.jedis.HostAndPort;
import redis.clients.jedis.Pipeline;
import redis.clients.jedis.Protocol;
import redis.clients.jedis.Response;
import redis.clients.jedis.exceptions.JedisAskDataException;
import redis.clients.jedis.exceptions.JedisClusterOperationException;
import redis.clients.jedis.exceptions.JedisConnectionException;
import redis.clients.jedis.exceptions.JedisDataException;
import redis.clients.jedis.exceptions.JedisMovedDataException;
import redis.clients.jedis.exceptions.JedisNoScriptException;
import redis.clients.jedis.providers.ClusterConnectionProvider;
import redis.clients.jedis.util.JedisClusterCRC16;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A Redis Cluster, slot-aware: a flush is grouped by the primary that serves each key's slot (Jedis's slot map,
 * {@link ClusterConnectionProvider}), each primary gets one pipeline, and a packed script call only carries keys
 * of one slot. Why our own grouping over Jedis's {@code ClusterPipeline}: that pipeline neither follows MOVED/ASK
 * nor says which commands of a failed pipeline were applied, while a flush must resend exactly what was refused
 * and wait for replicas before it counts as acknowledged.
 *
 * <p>Per round and primary: SCRIPT LOAD (so a promoted replica or restarted node never answers NOSCRIPT for
 * long), the commands, ROLE; then WAIT for the replicas that ROLE listed, so an acknowledged write is on every
 * connected replica and survives that primary's failover. MOVED → refresh the slot map and resend in the next
 * round; ASK → resend to the named node behind ASKING; connection errors, TRYAGAIN, CLUSTERDOWN → leave the ops
 * pending and let {@link RedisSinkWriter} back off within {@code sink.max-outage}.
 */
final class ClusterRedisTarget implements RedisTarget {

    private static final Logger LOG = LoggerFactory.getLogger(ClusterRedisTarget.class);
    /** Redirect rounds within one attempt: a slot moves at most once or twice while one flush is in flight. */
    private static final int MAX_REDIRECT_ROUNDS = 5;
    private static final byte[] LOAD = "LOAD".getBytes(StandardCharsets.US_ASCII);

    private final RedisSinkConfig config;
    private final OpCommands commands;
    private final OpCommands.ReplyConsumer counter;
    private final byte[] script;
    private final byte[] sha;
    private ClusterConnectionProvider provider;

    ClusterRedisTarget(RedisSinkConfig config, OpCommands commands, OpCommands.ReplyConsumer counter) {
        this.config = config;
        this.commands = commands;
        this.counter = counter;
        this.script = commands.scriptSource();
        this.sha = script == null ? null : sha1Hex(script);
    }

    private void connect() {
        if (provider != null) {
            return;
        }
        try {
            provider = new ClusterConnectionProvider(config.clusterNodes(), SingleRedisTarget.clientConfig(config));
        } catch (JedisClusterOperationException e) {
            // Jedis says this when no startup node answered: an outage like any other, retried by the writer.
            throw new JedisConnectionException("no node of " + config.address() + " answered", e);
        }
    }

    @Override
    public void close() {
        if (provider != null) {
            try {
                provider.close();
            } catch (RuntimeException e) {
                LOG.debug("fyp-redis: closing the cluster connections failed", e);
            }
            provider = null;
        }
    }

    /** What one round learnt: ops to send with ASKING, whether the slot map is stale, an error worth a retry. */
    private static final class Round {
        final Map<RedisOp, HostAndPort> askTargets = new IdentityHashMap<>();
        final Set<RedisOp> acked = Collections.newSetFromMap(new IdentityHashMap<>());
        boolean refresh;
        RuntimeException retry;
    }

    @Override
    public void write(List<RedisOp> pending, long updateTime) {
        connect();
        Map<RedisOp, HostAndPort> askTargets = new IdentityHashMap<>();
        for (int round = 1; !pending.isEmpty(); round++) {
            Round r = new Round();
            for (Map.Entry<Destination, List<RedisOp>> e : route(pending, askTargets, r).entrySet()) {
                writeNode(e.getKey(), e.getValue(), updateTime, r);
            }
            pending.removeIf(r.acked::contains);
            askTargets = r.askTargets;
            if (r.refresh) {
                renewSlotMap();
            }
            if (r.retry != null) {
                throw r.retry;
            }
            if (!pending.isEmpty() && round >= MAX_REDIRECT_ROUNDS) {
                throw new OpCommands.RetriableException("still redirected after " + round + " rounds", null);
            }
        }
    }

    /** A node, and whether its commands need ASKING. */
    private record Destination(HostAndPort node, boolean asking) {}

    private Map<Destination, List<RedisOp>> route(List<RedisOp> pending, Map<RedisOp, HostAndPort> askTargets,
                                                  Round r) {
        Map<Destination, List<RedisOp>> byNode = new LinkedHashMap<>();
        for (RedisOp op : pending) {
            HostAndPort ask = askTargets.get(op);
            HostAndPort node = ask != null ? ask : provider.getNode(JedisClusterCRC16.getSlot(op.key));
            if (node == null) {   // a slot no primary serves (yet): the map is stale or the cluster is failing
                r.refresh = true;
                r.retry = new OpCommands.RetriableException("slot " + JedisClusterCRC16.getSlot(op.key)
                        + " has no primary in the slot map", null);
                continue;
            }
            byNode.computeIfAbsent(new Destination(node, ask != null), d -> new ArrayList<>()).add(op);
        }
        return byNode;
    }

    private void writeNode(Destination to, List<RedisOp> ops, long updateTime, Round r) {
        try (Connection c = provider.getConnection(to.node())) {
            Pipeline p = new Pipeline(c);
            if (script != null) {
                p.sendCommand(Protocol.Command.SCRIPT, LOAD, script);
            }
            List<OpCommands.Call> calls = commands.append(p, ops, updateTime, sha, true, to.asking());
            Response<Object> role = p.sendCommand(Protocol.Command.ROLE, new byte[0][]);
            p.sync();
            List<OpCommands.Call> done = new ArrayList<>(calls.size());
            for (OpCommands.Call call : calls) {
                JedisDataException e = call.error();
                if (e == null) {
                    done.add(call);
                } else if (e instanceof JedisMovedDataException) {
                    r.refresh = true;
                } else if (e instanceof JedisAskDataException) {
                    for (RedisOp op : call.ops) {
                        r.askTargets.put(op, ((JedisAskDataException) e).getTargetNode());
                    }
                } else if (e instanceof JedisNoScriptException || OpCommands.isTransient(e)) {
                    // NOSCRIPT (the node lost its scripts between our SCRIPT LOAD and the call): the next
                    // attempt loads them again; TRYAGAIN, CLUSTERDOWN, ...: the cluster is still settling.
                    r.retry = new OpCommands.RetriableException(e.getMessage(), e);
                } else {
                    throw e;
                }
            }
            if (!done.isEmpty() && !replicated(p, to.node(), role.get())) {
                r.retry = new OpCommands.RetriableException("replicas of " + to.node()
                        + " did not acknowledge the writes in time", null);
                return;   // not acknowledged: the ops stay pending and are written again (idempotent)
            }
            for (OpCommands.Call call : done) {
                OpCommands.forEachReply(call, counter);
                r.acked.addAll(call.ops);
            }
        } catch (JedisConnectionException e) {
            LOG.warn("fyp-redis: cluster node {} failed ({}); refreshing the slot map", to.node(), e.getMessage());
            r.refresh = true;
            r.retry = e;
        }
    }

    /**
     * WAIT for as many replicas as the primary has connected (ROLE), so a write acknowledged here is on each of
     * them. A primary without a connected replica (e.g. just promoted, its old primary dead) cannot do better
     * than its own copy; the write counts as acknowledged then.
     */
    private boolean replicated(Pipeline p, HostAndPort node, Object role) {
        List<?> parts = (List<?>) role;
        if (!"master".equals(new String((byte[]) parts.get(0), StandardCharsets.UTF_8))) {
            return true;   // not a primary any more: its writes were refused with MOVED and are pending anyway
        }
        int replicas = ((List<?>) parts.get(2)).size();
        if (replicas == 0) {
            return true;
        }
        Response<Long> acked = p.waitReplicas(replicas, Math.max(1, config.timeoutMs / 2));
        p.sync();
        if (acked.get() < replicas) {
            LOG.warn("fyp-redis: {} of {} replicas of {} acknowledged the flush", acked.get(), replicas, node);
            return false;
        }
        return true;
    }

    private void renewSlotMap() {
        try {
            provider.renewSlotCache();
        } catch (JedisClusterOperationException e) {
            throw new JedisConnectionException("no node of " + config.address() + " answered CLUSTER SLOTS", e);
        }
    }

    private static byte[] sha1Hex(byte[] script) {
        try {
            byte[] digest = MessageDigest.getInstance("SHA-1").digest(script);
            return HexFormat.of().formatHex(digest).getBytes(StandardCharsets.US_ASCII);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
