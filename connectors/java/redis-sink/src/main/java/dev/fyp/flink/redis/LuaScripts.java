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
     * Many packed keys per call. KEYS[1..n] keys; ARGV[1] ttl ms (0 = none); ARGV[1+i] the packed value of
     * KEYS[i], whose first 8 bytes are its event time (int64 LE). Returns one integer per key: 1 if written, 0 if
     * the stored value has a newer event time. One call per ~100 keys costs Redis ~35 % less CPU per key than a
     * call per key (docs/PERFORMANCE.md), because each call pays for the script's set-up once.
     */
    static final String PACKED_MANY =
            "local ttl = tonumber(ARGV[1])\n"
            + "local written = {}\n"
            + "for i = 1, #KEYS do\n"
            + "  local v = ARGV[i + 1]\n"
            + "  local cur = redis.call('GET', KEYS[i])\n"
            + "  if cur and #cur >= 8 and struct.unpack('<i8', cur) > struct.unpack('<i8', v) then\n"
            + "    written[i] = 0\n"
            + "  else\n"
            + "    if ttl > 0 then redis.call('SET', KEYS[i], v, 'PX', ttl) else redis.call('SET', KEYS[i], v) end\n"
            + "    written[i] = 1\n"
            + "  end\n"
            + "end\n"
            + "return written\n";
}
