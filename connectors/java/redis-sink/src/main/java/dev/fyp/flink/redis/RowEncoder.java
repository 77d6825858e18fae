// One file (~440 lines): each value kind (hash, packed float32, sorted set) is a few lines of the same row walk;
// the key, hash and number encoders share the column table built once in create().
package dev.fyp.flink.redis;

import dev.fyp.flink.redis.RedisSinkOptions.ValueFormat;

import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.table.data.ArrayData;
import org.apache.flink.table.data.DecimalData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.types.logical.ArrayType;
import org.apache.flink.table.types.logical.DecimalType;
import org.apache.flink.table.types.logical.LocalZonedTimestampType;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.LogicalTypeRoot;
import org.apache.flink.table.types.logical.RowType;
import org.apache.flink.table.types.logical.TimestampType;
import org.apache.flink.types.RowKind;

import java.io.Serializable;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

import static dev.fyp.flink.redis.RedisSinkConfig.check;
import static dev.fyp.flink.redis.RedisSinkOptions.EVENT_TIME_COLUMN;
import static dev.fyp.flink.redis.RedisSinkOptions.KEY_PREFIX;
import static dev.fyp.flink.redis.RedisSinkOptions.VALUE_FORMAT;
import static dev.fyp.flink.redis.RedisSinkOptions.ZSET_MAX_SIZE;
import static dev.fyp.flink.redis.RedisSinkOptions.ZSET_MEMBER_COLUMN;
import static dev.fyp.flink.redis.RedisSinkOptions.ZSET_SCORE_COLUMN;
import static dev.fyp.flink.redis.RedisSinkOptions.ZSET_SCORE_UPDATE;

/**
 * Turns a changelog row into a {@link RedisOp}, following docs/REDIS_LAYOUT.md. Built (and so validated) by the
 * factory on the client; serialized with the sink.
 */
public final class RowEncoder implements Serializable {

    private static final long serialVersionUID = 1L;

    /** Hash fields the sink adds to every hash value. */
    static final String ET_FIELD = "_et";
    static final String UT_FIELD = "_ut";
    /** Bytes of the packed header: int64 event time + int64 update time. */
    static final int PACKED_HEADER = 16;

    private static final Set<LogicalTypeRoot> KEY_TYPES = EnumSet.of(
            LogicalTypeRoot.CHAR, LogicalTypeRoot.VARCHAR, LogicalTypeRoot.BOOLEAN, LogicalTypeRoot.TINYINT,
            LogicalTypeRoot.SMALLINT, LogicalTypeRoot.INTEGER, LogicalTypeRoot.BIGINT, LogicalTypeRoot.DECIMAL,
            LogicalTypeRoot.DATE);
    private static final Set<LogicalTypeRoot> NUMERIC_TYPES = EnumSet.of(
            LogicalTypeRoot.BOOLEAN, LogicalTypeRoot.TINYINT, LogicalTypeRoot.SMALLINT, LogicalTypeRoot.INTEGER,
            LogicalTypeRoot.BIGINT, LogicalTypeRoot.FLOAT, LogicalTypeRoot.DOUBLE, LogicalTypeRoot.DECIMAL);
    private static final Set<LogicalTypeRoot> HASH_TYPES;

    static {
        Set<LogicalTypeRoot> s = EnumSet.copyOf(NUMERIC_TYPES);
        s.addAll(EnumSet.of(LogicalTypeRoot.CHAR, LogicalTypeRoot.VARCHAR, LogicalTypeRoot.BINARY,
                LogicalTypeRoot.VARBINARY, LogicalTypeRoot.DATE, LogicalTypeRoot.TIMESTAMP_WITHOUT_TIME_ZONE,
                LogicalTypeRoot.TIMESTAMP_WITH_LOCAL_TIME_ZONE, LogicalTypeRoot.ARRAY));
        HASH_TYPES = s;
    }

    final ValueFormat format;
    private final byte[] prefix;
    private final String[] names;
    private final LogicalType[] types;
    /** Columns that make the Redis key, in primary-key order (zset: without the member column). */
    private final int[] keyPos;
    /** hash: every non-key column; packed: every non-key, non-event-time column. */
    private final int[] valuePos;
    private final byte[][] valueFieldNames;
    private final int eventTimePos;
    private final int memberPos;
    private final int scorePos;
    final int zsetMaxSize;
    /** zset: ZADD GT, and the buffer keeps a member's greatest score. */
    final boolean zsetGreaterOnly;

    private RowEncoder(ValueFormat format, byte[] prefix, String[] names, LogicalType[] types, int[] keyPos,
                       int[] valuePos, int eventTimePos, int memberPos, int scorePos, int zsetMaxSize,
                       boolean zsetGreaterOnly) {
        this.format = format;
        this.prefix = prefix;
        this.names = names;
        this.types = types;
        this.keyPos = keyPos;
        this.valuePos = valuePos;
        this.eventTimePos = eventTimePos;
        this.memberPos = memberPos;
        this.scorePos = scorePos;
        this.zsetMaxSize = zsetMaxSize;
        this.zsetGreaterOnly = zsetGreaterOnly;
        this.valueFieldNames = new byte[valuePos.length][];
        for (int i = 0; i < valuePos.length; i++) {
            valueFieldNames[i] = names[valuePos[i]].getBytes(StandardCharsets.UTF_8);
        }
    }

    /**
     * Validates the table against the options and builds the encoder.
     *
     * @param rowType physical row type of the sink table
     * @param primaryKey indexes of the primary-key columns in {@code rowType}, in key order (empty if none)
     */
    public static RowEncoder create(RowType rowType, int[] primaryKey, ReadableConfig o) {
        ValueFormat format = o.get(VALUE_FORMAT);
        String prefix = o.getOptional(KEY_PREFIX).orElse(null);
        check(prefix != null && !prefix.isEmpty(), "option 'key-prefix' is required (e.g. 'fyp:v1:video:')");
        String[] names = rowType.getFieldNames().toArray(new String[0]);
        LogicalType[] types = rowType.getChildren().toArray(new LogicalType[0]);
        check(primaryKey != null && primaryKey.length > 0,
                "the table must declare a PRIMARY KEY (...) NOT ENFORCED: its columns make the Redis key "
                        + "(key-prefix + values joined with ':')"
                        + (format == ValueFormat.ZSET ? "; for value.format 'zset' the key columns plus the "
                        + "'zset.member-column'" : ""));
        for (int p : primaryKey) {
            check(KEY_TYPES.contains(types[p].getTypeRoot()),
                    "primary-key column '" + names[p] + "' has type " + types[p] + "; key columns must be "
                            + "CHAR/VARCHAR, BOOLEAN, TINYINT..BIGINT, DECIMAL or DATE");
        }
        List<Integer> pk = new ArrayList<>();
        for (int p : primaryKey) {
            pk.add(p);
        }

        int etPos = -1;
        if (o.getOptional(EVENT_TIME_COLUMN).isPresent()) {
            etPos = column(names, o.get(EVENT_TIME_COLUMN), EVENT_TIME_COLUMN.key());
            LogicalTypeRoot r = types[etPos].getTypeRoot();
            check(r == LogicalTypeRoot.BIGINT || r == LogicalTypeRoot.TIMESTAMP_WITH_LOCAL_TIME_ZONE,
                    "'event-time-column' " + names[etPos] + " has type " + types[etPos]
                            + "; it must be BIGINT (epoch ms) or TIMESTAMP_LTZ(3)");
        }

        if (format == ValueFormat.ZSET) {
            String memberName = o.getOptional(ZSET_MEMBER_COLUMN).orElse(null);
            String scoreName = o.getOptional(ZSET_SCORE_COLUMN).orElse(null);
            check(memberName != null, "value.format 'zset' needs 'zset.member-column'");
            check(scoreName != null, "value.format 'zset' needs 'zset.score-column'");
            int memberPos = column(names, memberName, ZSET_MEMBER_COLUMN.key());
            int scorePos = column(names, scoreName, ZSET_SCORE_COLUMN.key());
            check(pk.contains(memberPos), "'zset.member-column' " + memberName + " must be part of the PRIMARY "
                    + "KEY: the primary key of a zset table is (key columns..., member column)");
            LogicalTypeRoot sr = types[scorePos].getTypeRoot();
            check(NUMERIC_TYPES.contains(sr) || sr == LogicalTypeRoot.TIMESTAMP_WITH_LOCAL_TIME_ZONE,
                    "'zset.score-column' " + scoreName + " has type " + types[scorePos]
                            + "; it must be numeric or TIMESTAMP_LTZ (epoch ms)");
            int maxSize = o.get(ZSET_MAX_SIZE);
            check(maxSize >= 0, "'zset.max-size' must be >= 0 (0 = no trimming)");
            int[] keyPos = pk.stream().filter(p -> p != memberPos).mapToInt(Integer::intValue).toArray();
            return new RowEncoder(format, prefix.getBytes(StandardCharsets.UTF_8), names, types, keyPos,
                    new int[0], etPos, memberPos, scorePos, maxSize,
                    o.get(ZSET_SCORE_UPDATE) == RedisSinkOptions.ScoreUpdate.GREATER);
        }

        check(etPos >= 0, "value.format '" + format.name().toLowerCase() + "' needs 'event-time-column' "
                + "(a BIGINT epoch-ms or TIMESTAMP_LTZ(3) column): a write never replaces a newer value");
        List<Integer> value = new ArrayList<>();
        for (int i = 0; i < names.length; i++) {
            if (pk.contains(i)) {
                continue;
            }
            if (format == ValueFormat.HASH) {
                check(!names[i].equals(ET_FIELD) && !names[i].equals(UT_FIELD),
                        "column name '" + names[i] + "' is reserved for the sink's own hash field");
                check(hashType(types[i]), "column '" + names[i] + "' has type " + types[i] + ", which "
                        + "value.format 'hash' cannot store; use numeric, string, bytes, DATE, TIMESTAMP(_LTZ) "
                        + "or ARRAY of numeric");
                value.add(i);
            } else if (i != etPos) {
                check(NUMERIC_TYPES.contains(types[i].getTypeRoot()), "value.format 'packed' stores only "
                        + "numeric columns (as float32); column '" + names[i] + "' has type " + types[i]
                        + ". Use value.format 'hash', or move it to another table");
                value.add(i);
            }
        }
        return new RowEncoder(format, prefix.getBytes(StandardCharsets.UTF_8), names, types,
                pk.stream().mapToInt(Integer::intValue).toArray(),
                value.stream().mapToInt(Integer::intValue).toArray(), etPos, -1, -1, 0, false);
    }

    private static boolean hashType(LogicalType t) {
        if (t.getTypeRoot() == LogicalTypeRoot.ARRAY) {
            return NUMERIC_TYPES.contains(((ArrayType) t).getElementType().getTypeRoot());
        }
        return HASH_TYPES.contains(t.getTypeRoot());
    }

    private static int column(String[] names, String name, String option) {
        int i = Arrays.asList(names).indexOf(name);
        check(i >= 0, "'" + option + "' names column '" + name + "', which the table does not have "
                + "(columns: " + String.join(", ", names) + ")");
        return i;
    }

    /** Names of the float32 columns of a packed value, in order (for docs and error messages). */
    public List<String> packedColumns() {
        List<String> out = new ArrayList<>();
        for (int p : valuePos) {
            out.add(names[p]);
        }
        return out;
    }

    /** Identity of the entry a row replaces in the flush buffer (the Redis key; for zset key + member). */
    BufferKey bufferKey(RedisOp op) {
        if (op.member == null) {
            return new BufferKey(op.key);
        }
        byte[] k = Arrays.copyOf(op.key, op.key.length + 1 + op.member.length);
        System.arraycopy(op.member, 0, k, op.key.length + 1, op.member.length);
        return new BufferKey(k);
    }

    /**
     * The write for one changelog row. The sink asks for upsert changes (no UPDATE_BEFORE), but the planner
     * still sends UPDATE_BEFORE when an operator needs it (e.g. a filter on an aggregate: the row leaves the
     * result as an UPDATE_BEFORE with no UPDATE_AFTER). Like upsert-kafka and the JDBC sink, an UPDATE_BEFORE
     * is a delete of its key; a following UPDATE_AFTER of the same key in the buffer replaces it.
     */
    RedisOp encode(RowData row) {
        RowKind kind = row.getRowKind();
        boolean delete = kind == RowKind.DELETE || kind == RowKind.UPDATE_BEFORE;
        byte[] key = key(row);
        switch (format) {
            case ZSET:
                byte[] member = utf8(keyString(row, memberPos));
                if (delete) {
                    return RedisOp.zrem(key, member);
                }
                if (row.isNullAt(scorePos)) {
                    // no score: nothing to rank by; treat as removal of the member
                    return RedisOp.zrem(key, member);
                }
                return RedisOp.zadd(key, member, number(row, scorePos));
            case HASH:
                if (delete) {
                    return RedisOp.del(key);
                }
                List<byte[]> set = new ArrayList<>(valuePos.length * 2);
                List<byte[]> unset = new ArrayList<>();
                for (int i = 0; i < valuePos.length; i++) {
                    int p = valuePos[i];
                    if (row.isNullAt(p)) {
                        unset.add(valueFieldNames[i]);
                    } else {
                        set.add(valueFieldNames[i]);
                        set.add(hashValue(row, p, types[p]));
                    }
                }
                return RedisOp.hashSet(key, eventTime(row), set.toArray(new byte[0][]),
                        unset.toArray(new byte[0][]));
            case PACKED:
            default:
                if (delete) {
                    return RedisOp.del(key);
                }
                long et = eventTime(row);
                ByteBuffer b = ByteBuffer.allocate(PACKED_HEADER + 4 * valuePos.length)
                        .order(ByteOrder.LITTLE_ENDIAN);
                b.putLong(et).putLong(0L);
                for (int p : valuePos) {
                    b.putFloat(row.isNullAt(p) ? Float.NaN : (float) number(row, p));
                }
                return RedisOp.packedSet(key, b.array());
        }
    }

    /** Event time ms of a row; a null event time counts as 0 (older than any real value). */
    private long eventTime(RowData row) {
        if (row.isNullAt(eventTimePos)) {
            return 0L;
        }
        LogicalType t = types[eventTimePos];
        if (t.getTypeRoot() == LogicalTypeRoot.BIGINT) {
            return row.getLong(eventTimePos);
        }
        return row.getTimestamp(eventTimePos, ((LocalZonedTimestampType) t).getPrecision()).getMillisecond();
    }

    private byte[] key(RowData row) {
        if (keyPos.length == 0) {
            return prefix;
        }
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < keyPos.length; i++) {
            if (i > 0) {
                sb.append(':');
            }
            sb.append(keyString(row, keyPos[i]));
        }
        byte[] rest = utf8(sb.toString());
        byte[] k = Arrays.copyOf(prefix, prefix.length + rest.length);
        System.arraycopy(rest, 0, k, prefix.length, rest.length);
        return k;
    }

    private String keyString(RowData row, int p) {
        if (row.isNullAt(p)) {
            return "";   // primary-key columns are NOT NULL; kept total for safety
        }
        LogicalType t = types[p];
        switch (t.getTypeRoot()) {
            case CHAR:
            case VARCHAR:
                return row.getString(p).toString();
            case BOOLEAN:
                return row.getBoolean(p) ? "1" : "0";
            case TINYINT:
                return Byte.toString(row.getByte(p));
            case SMALLINT:
                return Short.toString(row.getShort(p));
            case INTEGER:
                return Integer.toString(row.getInt(p));
            case BIGINT:
                return Long.toString(row.getLong(p));
            case DECIMAL:
                DecimalType d = (DecimalType) t;
                return row.getDecimal(p, d.getPrecision(), d.getScale()).toBigDecimal().toPlainString();
            case DATE:
                return LocalDate.ofEpochDay(row.getInt(p)).toString();
            default:
                throw new IllegalStateException("unsupported key type " + t);
        }
    }

    /** A numeric (or TIMESTAMP_LTZ, as epoch ms) column as a double. */
    private double number(RowData row, int p) {
        LogicalType t = types[p];
        switch (t.getTypeRoot()) {
            case BOOLEAN:
                return row.getBoolean(p) ? 1 : 0;
            case TINYINT:
                return row.getByte(p);
            case SMALLINT:
                return row.getShort(p);
            case INTEGER:
                return row.getInt(p);
            case BIGINT:
                return row.getLong(p);
            case FLOAT:
                return row.getFloat(p);
            case DOUBLE:
                return row.getDouble(p);
            case DECIMAL:
                DecimalType d = (DecimalType) t;
                return row.getDecimal(p, d.getPrecision(), d.getScale()).toBigDecimal().doubleValue();
            case TIMESTAMP_WITH_LOCAL_TIME_ZONE:
                return row.getTimestamp(p, ((LocalZonedTimestampType) t).getPrecision()).getMillisecond();
            default:
                throw new IllegalStateException("not numeric: " + t);
        }
    }

    private static byte[] hashValue(RowData row, int p, LogicalType t) {
        switch (t.getTypeRoot()) {
            case CHAR:
            case VARCHAR:
                return row.getString(p).toBytes();
            case BINARY:
            case VARBINARY:
                return row.getBinary(p);
            case BOOLEAN:
                return utf8(row.getBoolean(p) ? "1" : "0");
            case TINYINT:
                return utf8(Byte.toString(row.getByte(p)));
            case SMALLINT:
                return utf8(Short.toString(row.getShort(p)));
            case INTEGER:
                return utf8(Integer.toString(row.getInt(p)));
            case BIGINT:
                return utf8(Long.toString(row.getLong(p)));
            case FLOAT:
                return utf8(Float.toString(row.getFloat(p)));
            case DOUBLE:
                return utf8(Double.toString(row.getDouble(p)));
            case DECIMAL: {
                DecimalType d = (DecimalType) t;
                DecimalData v = row.getDecimal(p, d.getPrecision(), d.getScale());
                return utf8(v.toBigDecimal().toPlainString());
            }
            case DATE:
                return utf8(LocalDate.ofEpochDay(row.getInt(p)).toString());
            case TIMESTAMP_WITHOUT_TIME_ZONE:
                return utf8(Long.toString(
                        row.getTimestamp(p, ((TimestampType) t).getPrecision()).getMillisecond()));
            case TIMESTAMP_WITH_LOCAL_TIME_ZONE:
                return utf8(Long.toString(
                        row.getTimestamp(p, ((LocalZonedTimestampType) t).getPrecision()).getMillisecond()));
            case ARRAY:
                return floatArray(row.getArray(p), ((ArrayType) t).getElementType());
            default:
                throw new IllegalStateException("unsupported hash value type " + t);
        }
    }

    /** ARRAY of numeric → little-endian float32 bytes (null elements → NaN). */
    private static byte[] floatArray(ArrayData a, LogicalType e) {
        int n = a.size();
        ByteBuffer b = ByteBuffer.allocate(4 * n).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < n; i++) {
            float f;
            if (a.isNullAt(i)) {
                f = Float.NaN;
            } else {
                switch (e.getTypeRoot()) {
                    case BOOLEAN: f = a.getBoolean(i) ? 1f : 0f; break;
                    case TINYINT: f = a.getByte(i); break;
                    case SMALLINT: f = a.getShort(i); break;
                    case INTEGER: f = a.getInt(i); break;
                    case BIGINT: f = a.getLong(i); break;
                    case FLOAT: f = a.getFloat(i); break;
                    case DOUBLE: f = (float) a.getDouble(i); break;
                    case DECIMAL: {
                        DecimalType d = (DecimalType) e;
                        f = a.getDecimal(i, d.getPrecision(), d.getScale()).toBigDecimal().floatValue();
                        break;
                    }
                    default: throw new IllegalStateException("not numeric: " + e);
                }
            }
            b.putFloat(f);
        }
        return b.array();
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
