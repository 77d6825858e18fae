package dev.fyp.flink.redis;

/** The server-side scripts that enforce "never replace a newer event time" atomically. */
final class LuaScripts {

    private LuaScripts() {}

    /**
     * KEYS[1] hash key; ARGV[1] event time ms; ARGV[2] ttl ms (0 = persist); ARGV[3] n;
     * ARGV[4 .. 3+2n] field/value pairs to HSET (including _et and _ut); ARGV[4+2n ..] fields to HDEL.
     * Returns 1 if written, 0 if skipped because the stored _et is newer.
     */
    static final String HASH =
            "local cur = redis.call('HGET', KEYS[1], '_et')\n"
            + "if cur then\n"
            + "  local c = tonumber(cur)\n"
            + "  if c and c > tonumber(ARGV[1]) then return 0 end\n"
            + "end\n"
            + "local n = tonumber(ARGV[3])\n"
            + "local kv = {}\n"
            + "for i = 4, 3 + 2 * n do kv[#kv + 1] = ARGV[i] end\n"
            + "redis.call('HSET', KEYS[1], unpack(kv))\n"
            + "local del = {}\n"
            + "for i = 4 + 2 * n, #ARGV do del[#del + 1] = ARGV[i] end\n"
            + "if #del > 0 then redis.call('HDEL', KEYS[1], unpack(del)) end\n"
            + "local ttl = tonumber(ARGV[2])\n"
            + "if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) else redis.call('PERSIST', KEYS[1]) end\n"
            + "return 1\n";

    /**
     * KEYS[1] key; ARGV[1] packed value (int64 LE event time first); ARGV[2] its event time ms;
     * ARGV[3] ttl ms (0 = none). Returns 1 if written, 0 if the stored value has a newer event time.
     */
    static final String PACKED =
            "local cur = redis.call('GET', KEYS[1])\n"
            + "if cur and #cur >= 8 and struct.unpack('<i8', cur) > tonumber(ARGV[2]) then return 0 end\n"
            + "local ttl = tonumber(ARGV[3])\n"
            + "if ttl > 0 then redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)\n"
            + "else redis.call('SET', KEYS[1], ARGV[1]) end\n"
            + "return 1\n";
}
