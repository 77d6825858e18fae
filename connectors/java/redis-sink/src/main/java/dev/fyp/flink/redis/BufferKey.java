package dev.fyp.flink.redis;

import java.util.Arrays;

/**
 * The writer's buffer key: a Redis key, or key + member for a sorted-set member, with its hash computed once.
 * A {@code ByteBuffer} key cost ~8 % of the features job's TaskManager samples (docs/PERFORMANCE.md, "The Redis
 * writers' buffer"): its {@code hashCode} reads byte by byte through bounds-checked gets and ran twice per row.
 */
final class BufferKey {

    private final byte[] bytes;
    private final int hash;

    BufferKey(byte[] bytes) {
        this.bytes = bytes;
        this.hash = Arrays.hashCode(bytes);
    }

    @Override
    public int hashCode() {
        return hash;
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof BufferKey && ((BufferKey) other).hash == hash
                && Arrays.equals(((BufferKey) other).bytes, bytes);
    }
}
