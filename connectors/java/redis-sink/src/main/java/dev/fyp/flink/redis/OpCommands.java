package dev.fyp.flink.redis;

import redis.clients.jedis.Pipeline;
import redis.clients.jedis.Protocol;
import redis.clients.jedis.Response;
import redis.clients.jedis.exceptions.JedisDataException;
import redis.clients.jedis.params.ZAddParams;
import redis.clients.jedis.util.JedisClusterCRC16;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * How buffered ops become Redis commands, shared by the single-Redis and the cluster path of
 * {@link RedisSinkWriter}: each op (or group of up to {@link #PACKED_KEYS_PER_CALL} packed keys) is one
 * {@link Call} appended to a pipeline, whose replies are read back with {@link Call#error()} and counted by the
 * writer.
 */
final class OpCommands {

    /** Packed keys per script call: past ~100 the saving per key stops growing (docs/PERFORMANCE.md). */
    static final int PACKED_KEYS_PER_CALL = 100;
    static final byte[] HASH_SRC = RowEncoder.utf8(LuaScripts.HASH);
    static final byte[] PACKED_SRC = RowEncoder.utf8(LuaScripts.PACKED_MANY);
    private static final byte[] ET = RowEncoder.utf8(RowEncoder.ET_FIELD);
    private static final byte[] UT = RowEncoder.utf8(RowEncoder.UT_FIELD);
    private static final ZAddParams GREATER = ZAddParams.zAddParams().gt();

    private final RowEncoder encoder;
    private final long ttlMs;
    private final byte[] ttlArg;

    OpCommands(RowEncoder encoder, long ttlMs) {
        this.encoder = encoder;
        this.ttlMs = ttlMs;
        this.ttlArg = RowEncoder.utf8(Long.toString(ttlMs));
    }

    /** The script this sink's format runs, or null (zset needs none). */
    byte[] scriptSource() {
        switch (encoder.format) {
            case HASH:
                return HASH_SRC;
            case PACKED:
                return PACKED_SRC;
            default:
                return null;
        }
    }

    /** The ops of one command (several for a packed script call) and its replies. */
    static final class Call {
        final List<RedisOp> ops;
        final Response<?> reply;
        /** Replies of the commands that follow a ZADD on the same key (trim, PEXPIRE). */
        final List<Response<?>> followUps;

        Call(List<RedisOp> ops, Response<?> reply, List<Response<?>> followUps) {
            this.ops = ops;
            this.reply = reply;
            this.followUps = followUps;
        }

        /** The first error reply of this call's commands, or null when all succeeded (after sync). */
        JedisDataException error() {
            try {
                reply.get();
                for (Response<?> r : followUps) {
                    r.get();
                }
                return null;
            } catch (JedisDataException e) {
                return e;
            }
        }
    }

    /**
     * Appends {@code ops} to {@code p}: script ops as EVALSHA of {@code sha} (EVAL when {@code sha} is null), packed
     * keys {@link #PACKED_KEYS_PER_CALL} to a call. With {@code oneSlotPerCall} a packed call only groups keys of
     * one cluster slot, because Redis Cluster refuses a script whose keys span slots (CROSSSLOT).
     */
    List<Call> append(Pipeline p, List<RedisOp> ops, long updateTime, byte[] sha, boolean oneSlotPerCall) {
        return append(p, ops, updateTime, sha, oneSlotPerCall, false);
    }

    /**
     * {@code asking}: every command is preceded by ASKING, as Redis Cluster wants for a key of a slot that is being
     * imported by the node the command goes to (after an ASK redirect).
     */
    List<Call> append(Pipeline p, List<RedisOp> ops, long updateTime, byte[] sha, boolean oneSlotPerCall,
                      boolean asking) {
        byte[] ut = RowEncoder.utf8(Long.toString(updateTime));
        List<Call> calls = new ArrayList<>(ops.size());
        Map<Integer, List<RedisOp>> packedBySlot = new LinkedHashMap<>();
        for (RedisOp op : ops) {
            if (op.kind == RedisOp.Kind.PACKED_SET) {
                int group = oneSlotPerCall ? JedisClusterCRC16.getSlot(op.key) : 0;
                packedBySlot.computeIfAbsent(group, g -> new ArrayList<>()).add(op);
                continue;
            }
            List<Response<?>> followUps = List.of();
            Response<?> reply;
            asking(p, asking);
            switch (op.kind) {
                case HASH_SET:
                    reply = script(p, sha, HASH_SRC, List.of(op.key), hashArgs(op, ut));
                    break;
                case DEL:
                    reply = p.del(op.key);
                    break;
                case ZSET_ADD:
                    reply = encoder.zsetGreaterOnly ? p.zadd(op.key, op.score, op.member, GREATER)
                            : p.zadd(op.key, op.score, op.member);
                    followUps = new ArrayList<>(2);
                    if (encoder.zsetMaxSize > 0) {
                        asking(p, asking);
                        followUps.add(p.zremrangeByRank(op.key, 0, -(encoder.zsetMaxSize + 1L)));
                    }
                    if (ttlMs > 0) {
                        asking(p, asking);
                        followUps.add(p.pexpire(op.key, ttlMs));
                    }
                    break;
                case ZSET_REM:
                    reply = p.zrem(op.key, op.member);
                    break;
                default:
                    throw new IllegalStateException(op.kind.name());
            }
            calls.add(new Call(List.of(op), reply, followUps));
        }
        for (List<RedisOp> packed : packedBySlot.values()) {
            for (int from = 0; from < packed.size(); from += PACKED_KEYS_PER_CALL) {
                List<RedisOp> call = packed.subList(from, Math.min(from + PACKED_KEYS_PER_CALL, packed.size()));
                asking(p, asking);
                calls.add(new Call(call, script(p, sha, PACKED_SRC, packedKeys(call), packedArgs(call, updateTime)),
                        List.of()));
            }
        }
        return calls;
    }

    private static void asking(Pipeline p, boolean asking) {
        if (asking) {
            p.sendCommand(Protocol.Command.ASKING, new byte[0][]);
        }
    }

    private static Response<Object> script(Pipeline p, byte[] sha, byte[] source, List<byte[]> keys,
                                           List<byte[]> args) {
        return sha != null ? p.evalsha(sha, keys, args) : p.eval(source, keys, args);
    }

    /** Calls {@code counter} with each op of a successful call and its own reply (1/0 for scripts). */
    static void forEachReply(Call call, ReplyConsumer counter) {
        Object reply = call.reply.get();
        if (call.ops.size() == 1 && call.ops.get(0).kind != RedisOp.Kind.PACKED_SET) {
            counter.accept(call.ops.get(0), reply);
            return;
        }
        List<?> written = (List<?>) reply;
        for (int i = 0; i < call.ops.size(); i++) {
            counter.accept(call.ops.get(i), written.get(i));
        }
    }

    /** Receives one op and its reply. */
    interface ReplyConsumer {
        void accept(RedisOp op, Object reply);
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

    /** Server errors worth a retry (loading, busy script, OOM under noeviction, cluster failing over). */
    static boolean isTransient(JedisDataException e) {
        String m = String.valueOf(e.getMessage());
        for (String transientPrefix : new String[] {"LOADING", "BUSY", "TRYAGAIN", "OOM", "MASTERDOWN",
                "CLUSTERDOWN"}) {
            if (m.startsWith(transientPrefix)) {
                return true;
            }
        }
        return false;
    }

    /** The error as the writer throws it: {@link RetriableException} when a later attempt may succeed. */
    static RuntimeException classify(JedisDataException e) {
        return isTransient(e) ? new RetriableException(e.getMessage(), e) : e;
    }

    /** A server error that a later attempt may not get. */
    static final class RetriableException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        RetriableException(String message, Throwable cause) {
            super(message, cause);
        }
    }
}
