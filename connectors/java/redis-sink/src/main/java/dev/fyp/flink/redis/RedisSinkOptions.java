package dev.fyp.flink.redis;

import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;

import java.time.Duration;

/** Options of the {@code fyp-redis} connector. The layout they produce is docs/REDIS_LAYOUT.md. */
public final class RedisSinkOptions {

    private RedisSinkOptions() {}

    /** How a row is stored under its key. */
    public enum ValueFormat {
        /** A Redis hash: one field per non-key column, plus {@code _et} and {@code _ut}. */
        HASH,
        /** One binary string: int64 event time, int64 update time, then float32 per column (all LE). */
        PACKED,
        /** A sorted set: member and score columns of the row; the key is the other key columns. */
        ZSET
    }

    /** How a zset row's score meets the member's stored score. */
    public enum ScoreUpdate {
        /** The row's score replaces the stored one (ZADD): for scores computed from the group's state. */
        REPLACE,
        /** Only a greater score is kept (ZADD GT): for rows that each carry one event's score, e.g. its time. */
        GREATER
    }

    public static final ConfigOption<String> HOST =
            ConfigOptions.key("host").stringType().defaultValue("127.0.0.1")
                    .withDescription("Redis host.");

    public static final ConfigOption<Integer> PORT =
            ConfigOptions.key("port").intType().defaultValue(6379)
                    .withDescription("Redis port.");

    public static final ConfigOption<String> CLUSTER_NODES =
            ConfigOptions.key("cluster.nodes").stringType().noDefaultValue()
                    .withDescription("Startup nodes of a Redis Cluster, 'host:port,host:port'. When set the sink "
                            + "writes to that cluster (slot-aware, following MOVED/ASK and failovers) and ignores "
                            + "'host'/'port'; 'database' must be 0.");

    public static final ConfigOption<String> PASSWORD =
            ConfigOptions.key("password").stringType().noDefaultValue()
                    .withDescription("Redis password (AUTH). It ends up in the job graph and plans: "
                            + "prefer 'password-env'.");

    public static final ConfigOption<String> PASSWORD_ENV =
            ConfigOptions.key("password-env").stringType().noDefaultValue()
                    .withDescription("Name of an environment variable of the TaskManager holding the Redis "
                            + "password; used when 'password' is absent.");

    public static final ConfigOption<Integer> DATABASE =
            ConfigOptions.key("database").intType().defaultValue(0)
                    .withDescription("Redis logical database (SELECT).");

    public static final ConfigOption<Duration> TIMEOUT =
            ConfigOptions.key("timeout").durationType().defaultValue(Duration.ofSeconds(5))
                    .withDescription("Connect and socket timeout.");

    public static final ConfigOption<String> KEY_PREFIX =
            ConfigOptions.key("key-prefix").stringType().noDefaultValue()
                    .withDescription("Key = key-prefix + the primary-key column values joined with ':' "
                            + "(for zset, without the member column). E.g. 'fyp:v1:video:'.");

    public static final ConfigOption<Duration> TTL =
            ConfigOptions.key("ttl").durationType().defaultValue(Duration.ofDays(2))
                    .withDescription("TTL set on every write; 0 means no expiry (PERSIST for hash).");

    public static final ConfigOption<ValueFormat> VALUE_FORMAT =
            ConfigOptions.key("value.format").enumType(ValueFormat.class).defaultValue(ValueFormat.HASH)
                    .withDescription("hash | packed | zset.");

    public static final ConfigOption<String> EVENT_TIME_COLUMN =
            ConfigOptions.key("event-time-column").stringType().noDefaultValue()
                    .withDescription("BIGINT (epoch ms) or TIMESTAMP_LTZ column with the event time the row "
                            + "reflects. Required for hash and packed: a write never replaces a value with a "
                            + "newer stored event time.");

    public static final ConfigOption<String> ZSET_MEMBER_COLUMN =
            ConfigOptions.key("zset.member-column").stringType().noDefaultValue()
                    .withDescription("zset: the primary-key column whose value is the member.");

    public static final ConfigOption<String> ZSET_SCORE_COLUMN =
            ConfigOptions.key("zset.score-column").stringType().noDefaultValue()
                    .withDescription("zset: the numeric (or TIMESTAMP_LTZ, as epoch ms) column giving the score.");

    public static final ConfigOption<Integer> ZSET_MAX_SIZE =
            ConfigOptions.key("zset.max-size").intType().defaultValue(0)
                    .withDescription("zset: keep only the N highest scores (0 = no trimming).");

    public static final ConfigOption<ScoreUpdate> ZSET_SCORE_UPDATE =
            ConfigOptions.key("zset.score-update").enumType(ScoreUpdate.class).defaultValue(ScoreUpdate.REPLACE)
                    .withDescription("zset: replace (the row's score wins) | greater (a member's score only "
                            + "rises, so per-event rows need no Flink state and a replay changes nothing).");

    public static final ConfigOption<Integer> BUFFER_FLUSH_MAX_ROWS =
            ConfigOptions.key("sink.buffer-flush.max-rows").intType().defaultValue(500)
                    .withDescription("Flush when this many distinct keys are buffered (1 = no buffering).");

    public static final ConfigOption<Duration> BUFFER_FLUSH_INTERVAL =
            ConfigOptions.key("sink.buffer-flush.interval").durationType().defaultValue(Duration.ofMillis(50))
                    .withDescription("A buffered row is written at the latest this long after it arrived "
                            + "(0 disables the timer: flush on max-rows and checkpoints only).");

    public static final ConfigOption<Duration> MAX_OUTAGE =
            ConfigOptions.key("sink.max-outage").durationType().defaultValue(Duration.ofMinutes(5))
                    .withDescription("How long a flush keeps retrying connection errors (exponential back-off "
                            + "from 200 ms, capped at 2 s) before the task fails. Meanwhile the job "
                            + "back-pressures: Kafka keeps the events, nothing is dropped. Keep it below the "
                            + "checkpoint timeout, or a checkpoint waiting on the flush times out first.");
}
