package dev.fyp.flink.redis;

/** One buffered write, already encoded (the writer keeps no reference to the input RowData). */
final class RedisOp {

    enum Kind {
        /** Conditional HSET (+HDEL of null columns) through the hash script. */
        HASH_SET,
        /** Conditional SET through the packed script. */
        PACKED_SET,
        /** DEL of a hash or packed key. */
        DEL,
        /** ZADD (+ trim, + PEXPIRE). */
        ZSET_ADD,
        /** ZREM. */
        ZSET_REM
    }

    final Kind kind;
    final byte[] key;
    /** Event time ms (HASH_SET; a PACKED_SET value carries its own in its first 8 bytes). */
    final long eventTime;
    /** HASH_SET: field/value pairs of the non-null columns (without _et/_ut). */
    final byte[][] fieldValues;
    /** HASH_SET: fields of the null columns, removed. */
    final byte[][] nullFields;
    /** PACKED_SET: the full value; bytes 8..15 (update time) are filled in at flush. */
    final byte[] packed;
    /** ZSET_ADD / ZSET_REM. */
    final byte[] member;
    final double score;

    private RedisOp(Kind kind, byte[] key, long eventTime, byte[][] fieldValues, byte[][] nullFields,
                    byte[] packed, byte[] member, double score) {
        this.kind = kind;
        this.key = key;
        this.eventTime = eventTime;
        this.fieldValues = fieldValues;
        this.nullFields = nullFields;
        this.packed = packed;
        this.member = member;
        this.score = score;
    }

    static RedisOp hashSet(byte[] key, long eventTime, byte[][] fieldValues, byte[][] nullFields) {
        return new RedisOp(Kind.HASH_SET, key, eventTime, fieldValues, nullFields, null, null, 0);
    }

    static RedisOp packedSet(byte[] key, byte[] packed) {
        return new RedisOp(Kind.PACKED_SET, key, 0, null, null, packed, null, 0);
    }

    static RedisOp del(byte[] key) {
        return new RedisOp(Kind.DEL, key, 0, null, null, null, null, 0);
    }

    static RedisOp zadd(byte[] key, byte[] member, double score) {
        return new RedisOp(Kind.ZSET_ADD, key, 0, null, null, null, member, score);
    }

    static RedisOp zrem(byte[] key, byte[] member) {
        return new RedisOp(Kind.ZSET_REM, key, 0, null, null, null, member, 0);
    }
}
