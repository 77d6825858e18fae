package dev.fyp.flink.envelope;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericEnumSymbol;
import org.apache.avro.generic.GenericFixed;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.util.Utf8;
import org.apache.flink.table.data.GenericArrayData;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.StringData;

/**
 * One raw Kafka value of fyp.engagement.v1 -> the engagement row, exactly as {@code udfs/envelope.py}
 * {@code to_engagement_row} builds it (that module is the reference; its docstring lists the error reasons and
 * their order). Never throws: a bad payload gives a row whose last field says why.
 *
 * <p>The row's fields, in order ({@code ENGAGEMENT_ROW_FIELDS}): event_type, event_id, event_time,
 * schema_version, user_id, video_id, author_id, sound_id, region, language, session_id, hashtags, watch_ms,
 * video_duration_ms, dwell_ms, loop_count, action, comment_text, arms, error. Strings are {@link StringData},
 * integers {@link Long}, hashtags and arms a {@link GenericArrayData} of StringData (empty, never null, as the
 * Python UDF sends; arms is empty for every type but Impression).
 */
public final class EngagementDecoder {

    public static final int WIDTH = 20;
    public static final int EVENT_TIME = 2;
    public static final int ERROR = 19;
    private static final int HASHTAGS = 11;
    private static final int ARMS = 18;
    private static final int DETAIL = 12; // watch_ms, video_duration_ms, dwell_ms, loop_count, action, comment_text
    private static final GenericArrayData NO_HASHTAGS = new GenericArrayData(new StringData[0]);
    private static final byte M0 = (byte) 0xC3;
    private static final byte M1 = (byte) 0x01;

    /**
     * Per event type, the record field feeding each detail column (watch_ms, video_duration_ms, dwell_ms,
     * loop_count, action, comment_text); null = the column stays NULL. Mirrors envelope.py's _DETAIL.
     */
    private static final Map<String, String[]> DETAIL_FIELDS = new HashMap<>();

    static {
        DETAIL_FIELDS.put("impression", new String[6]);
        DETAIL_FIELDS.put("watch", new String[] {"watch_ms", "video_duration_ms", null, null, null, null});
        DETAIL_FIELDS.put("loop", new String[] {null, "video_duration_ms", null, "loop_count", null, null});
        DETAIL_FIELDS.put("skip", new String[] {null, "video_duration_ms", "dwell_ms", null, null, null});
        DETAIL_FIELDS.put("like", new String[] {null, null, null, null, "action", null});
        DETAIL_FIELDS.put("share", new String[] {null, null, null, null, "channel", null});
        DETAIL_FIELDS.put("save", new String[6]);
        DETAIL_FIELDS.put("follow", new String[] {null, null, null, null, "action", null});
        DETAIL_FIELDS.put("comment", new String[] {null, null, null, null, null, "text"});
        DETAIL_FIELDS.put("sound_engagement", new String[] {null, null, null, null, "action", null});
        DETAIL_FIELDS.put("not_interested", new String[] {null, null, null, null, "reason", null});
    }

    /** How to read one writer schema into the row: field positions in the (current-shape) record. */
    private static final class Plan {
        final EventSchemas.Entry entry;
        final StringData eventType;
        final Long schemaVersion;
        final boolean engagement;
        /** Positions of event_id, event_time, user_id, video_id, author_id, sound_id, region, language,
         * session_id, hashtags in the current schema. */
        final int[] common = new int[10];
        /** Positions of the detail fields (-1 = NULL). */
        final int[] detail = new int[6];
        /** Position of Impression's arms (v2 on; an older version resolves to its default), -1 = none. */
        final int arms;
        final GenericDatumReader<GenericRecord> resolver;

        Plan(EventSchemas.Entry entry) {
            this.entry = entry;
            this.eventType = StringData.fromString(entry.eventType);
            this.schemaVersion = (long) entry.version;
            String[] detailFields = DETAIL_FIELDS.get(entry.eventType);
            this.engagement = detailFields != null;
            this.resolver = entry.isLatest() ? null : new GenericDatumReader<>(entry.schema, entry.latest);
            Schema.Field armsField = engagement ? entry.latest.getField("arms") : null;
            this.arms = armsField == null ? -1 : armsField.pos();
            if (engagement) {
                String[] names = {"event_id", "event_time", "user_id", "video_id", "author_id", "sound_id",
                    "region", "language", "session_id", "hashtags"};
                for (int i = 0; i < names.length; i++) {
                    common[i] = position(entry.latest, names[i]);
                }
                for (int i = 0; i < 6; i++) {
                    detail[i] = detailFields[i] == null ? -1 : position(entry.latest, detailFields[i]);
                }
            }
        }

        private static int position(Schema schema, String name) {
            Schema.Field f = schema.getField(name);
            if (f == null) {
                throw new IllegalStateException(schema.getFullName() + " has no field " + name);
            }
            return f.pos();
        }
    }

    private final Map<Long, Plan> plans = new HashMap<>();
    private BinaryDecoder reuse;

    public EngagementDecoder(EventSchemas schemas) {
        // Plans are built up front: a schema missing a field the row needs fails here, at job start.
        for (Long fp : fingerprints(schemas)) {
            plans.put(fp, new Plan(schemas.byFingerprint(fp)));
        }
    }

    private static List<Long> fingerprints(EventSchemas schemas) {
        return schemas.fingerprints();
    }

    /**
     * Decodes {@code payload}. now_ms: processing time (epoch ms); an event later than now_ms + max_future_ms is
     * rejected as future_timestamp.
     */
    public GenericRowData decode(byte[] payload, long nowMs, long maxFutureMs) {
        try {
            return row(payload, nowMs, maxFutureMs);
        } catch (RuntimeException e) { // a bug here must not kill the job: park the event in the DLQ instead
            return errorRow("undecodable:internal:" + e.getClass().getSimpleName());
        }
    }

    public static GenericRowData errorRow(String reason) {
        GenericRowData row = new GenericRowData(WIDTH);
        row.setField(HASHTAGS, NO_HASHTAGS);
        row.setField(ARMS, NO_HASHTAGS);
        row.setField(ERROR, StringData.fromString(reason));
        return row;
    }

    private GenericRowData row(byte[] p, long nowMs, long maxFutureMs) {
        if (p == null || p.length == 0) {
            return errorRow("undecodable:too_short");
        }
        Plan plan = p.length >= 10 && p[0] == M0 && p[1] == M1 ? plans.get(fingerprint(p)) : null;
        if (plan == null) {
            if (p.length < 2) {
                return errorRow("undecodable:too_short");
            }
            if (p[0] != M0 || p[1] != M1) {
                return errorRow("undecodable:bad_marker");
            }
            if (p.length < 10) {
                return errorRow("undecodable:too_short");
            }
            return errorRow("undecodable:unknown_fingerprint");
        }
        Object[] r;
        try {
            r = AvroBody.readRecord(plan.entry.schema, p, 10);
            if (plan.resolver != null) {
                r = resolve(plan, p);
            }
        } catch (AvroBody.Undecodable e) {
            return errorRow("undecodable:" + e.reason);
        }
        if (!plan.engagement) {
            return errorRow("unknown_type:" + plan.entry.recordName);
        }
        GenericRowData row = new GenericRowData(WIDTH);
        int[] c = plan.common;
        row.setField(0, plan.eventType);
        row.setField(1, str(r[c[0]]));
        row.setField(2, r[c[1]]);
        row.setField(3, plan.schemaVersion);
        for (int i = 2; i <= 8; i++) { // user_id .. session_id
            row.setField(i + 2, str(r[c[i]]));
        }
        @SuppressWarnings("unchecked")
        List<Object> tags = (List<Object>) r[c[9]];
        StringData[] hashtags = new StringData[tags.size()];
        for (int i = 0; i < hashtags.length; i++) {
            hashtags[i] = str(tags.get(i));
        }
        row.setField(HASHTAGS, new GenericArrayData(hashtags));
        @SuppressWarnings("unchecked")
        List<Object> armIds = plan.arms < 0 ? List.of() : (List<Object>) r[plan.arms];
        StringData[] arms = new StringData[armIds.size()];
        for (int i = 0; i < arms.length; i++) {
            arms[i] = str(armIds.get(i));
        }
        row.setField(ARMS, arms.length == 0 ? NO_HASHTAGS : new GenericArrayData(arms));
        for (int i = 0; i < 6; i++) {
            int at = plan.detail[i];
            Object v = at < 0 ? null : r[at];
            row.setField(DETAIL + i, i < 4 ? integer(v) : str(v));
        }
        String error = null;
        if (isEmpty(r[c[0]])) {
            error = "missing_id:event_id";
        } else if (isEmpty(r[c[2]])) {
            error = "missing_id:user_id";
        } else if (isEmpty(r[c[3]])) {
            error = "missing_id:video_id";
        } else {
            Object[] texts = new Object[FieldLimits.TEXT_NAMES.length];
            for (int i = 0; i < 8; i++) { // event_id .. session_id; event_time (c[1]) is not text
                texts[i] = r[c[i == 0 ? 0 : i + 1]];
            }
            texts[8] = plan.detail[4] < 0 ? null : r[plan.detail[4]];
            texts[9] = plan.detail[5] < 0 ? null : r[plan.detail[5]];
            Long[] durations = {(Long) row.getField(DETAIL), (Long) row.getField(DETAIL + 1),
                (Long) row.getField(DETAIL + 2)};
            error = FieldLimits.error(texts, tags, armIds, durations, (Long) row.getField(DETAIL + 3));
            if (error == null && ((Long) r[c[1]]) > nowMs + maxFutureMs) {
                error = "future_timestamp";
            }
        }
        if (error != null) {
            row.setField(ERROR, StringData.fromString(error));
        }
        return row;
    }

    /** The little-endian fingerprint at bytes 2..9. */
    private static long fingerprint(byte[] p) {
        long v = 0;
        for (int k = 9; k >= 2; k--) {
            v = (v << 8) | (p[k] & 0xFF);
        }
        return v;
    }

    private static boolean isEmpty(Object s) {
        return s == null || ((byte[]) s).length == 0;
    }

    private static StringData str(Object v) {
        if (v == null) {
            return null;
        }
        if (v instanceof byte[]) {
            return StringData.fromBytes((byte[]) v);
        }
        return StringData.fromString(v.toString()); // an enum symbol
    }

    private static Long integer(Object v) {
        return v == null ? null : ((Number) v).longValue();
    }

    /** An old version, already checked by AvroBody: let Avro resolve it to the current schema. */
    private Object[] resolve(Plan plan, byte[] p) throws AvroBody.Undecodable {
        reuse = DecoderFactory.get().binaryDecoder(p, 10, p.length - 10, reuse);
        try {
            return (Object[]) plain(plan.resolver.read(null, reuse));
        } catch (IOException | RuntimeException e) {
            throw AvroBody.CORRUPT;
        }
    }

    /** Avro's generic values -> AvroBody's representation. */
    private static Object plain(Object v) {
        if (v instanceof GenericRecord) {
            GenericRecord rec = (GenericRecord) v;
            Object[] out = new Object[rec.getSchema().getFields().size()];
            for (int i = 0; i < out.length; i++) {
                out[i] = plain(rec.get(i));
            }
            return out;
        }
        if (v instanceof Utf8) {
            return ((Utf8) v).getBytes().length == ((Utf8) v).getByteLength()
                    ? ((Utf8) v).getBytes() : java.util.Arrays.copyOf(((Utf8) v).getBytes(), ((Utf8) v).getByteLength());
        }
        if (v instanceof CharSequence) {
            return v.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8);
        }
        if (v instanceof GenericEnumSymbol) {
            return v.toString();
        }
        if (v instanceof GenericFixed) {
            return ((GenericFixed) v).bytes();
        }
        if (v instanceof ByteBuffer) {
            ByteBuffer b = ((ByteBuffer) v).duplicate();
            byte[] out = new byte[b.remaining()];
            b.get(out);
            return out;
        }
        if (v instanceof GenericData.Array || v instanceof List) {
            List<Object> out = new ArrayList<>();
            for (Object o : (List<?>) v) {
                out.add(plain(o));
            }
            return out;
        }
        if (v instanceof Map) {
            Map<String, Object> out = new java.util.LinkedHashMap<>();
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                out.put(e.getKey().toString(), plain(e.getValue()));
            }
            return out;
        }
        return v;
    }
}
