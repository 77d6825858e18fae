package dev.fyp.flink.envelope;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;

import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.EncoderFactory;
import org.apache.flink.table.data.GenericRowData;
import org.junit.jupiter.api.Test;

/** The Java decoder against hand-built payloads; tests/flink/test_decoder_agreement.py compares it with Python. */
class EngagementDecoderTest {

    private static final long NOW = 1_700_000_000_000L;
    private static final EventSchemas SCHEMAS = EventSchemas.bundled();
    private static final EngagementDecoder DECODER = new EngagementDecoder(SCHEMAS);

    /** A Watch encoded by Python's registry (schemas/registry.py), hashtags [cats, dogs]. */
    private static final String PYTHON_WATCH = "c301e7ecba70cba1481504653180a0abfef962020475310476310461310004555304656e"
            + "04733104086361747308646f677300904ea09c01";

    private static Schema schema(String name) {
        for (Long fp : SCHEMAS.fingerprints()) {
            EventSchemas.Entry e = SCHEMAS.byFingerprint(fp);
            if (e.recordName.equals(name) && e.isLatest()) {
                return e.schema;
            }
        }
        throw new AssertionError("no schema " + name);
    }

    private static byte[] header(Schema schema) {
        ByteBuffer b = ByteBuffer.allocate(10).order(ByteOrder.LITTLE_ENDIAN);
        b.put((byte) 0xC3).put((byte) 0x01).putLong(SchemaNormalization.parsingFingerprint64(schema));
        return b.array();
    }

    private static GenericRecord base(String name, String eventId, String userId, String videoId, long time) {
        GenericRecord r = new GenericData.Record(schema(name));
        r.put("event_id", eventId);
        r.put("event_time", time);
        r.put("schema_version", 1);
        if (r.getSchema().getField("user_id") != null) {
            r.put("user_id", userId);
        }
        r.put("video_id", videoId);
        r.put("author_id", "a1");
        if (r.getSchema().getField("region") != null) {
            r.put("sound_id", null);
            r.put("region", "US");
            r.put("language", "en");
            r.put("session_id", "s1");
            r.put("hashtags", List.of("cats"));
        }
        return r;
    }

    private static byte[] encode(GenericRecord r) {
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            out.write(header(r.getSchema()));
            BinaryEncoder enc = EncoderFactory.get().binaryEncoder(out, null);
            new GenericDatumWriter<GenericRecord>(r.getSchema()).write(r, enc);
            enc.flush();
            return out.toByteArray();
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    private static byte[] watch(String eventId, String userId, String videoId, long time, long watchMs) {
        GenericRecord r = base("Watch", eventId, userId, videoId, time);
        r.put("watch_ms", watchMs);
        r.put("video_duration_ms", 10_000L);
        return encode(r);
    }

    private static String error(byte[] payload) {
        GenericRowData row = DECODER.decode(payload, NOW, 300_000L);
        return row.isNullAt(EngagementDecoder.ERROR) ? null : row.getString(EngagementDecoder.ERROR).toString();
    }

    @Test
    void bundlesEverySchemaFileWithPythonsFingerprint() {
        assertTrue(SCHEMAS.size() >= 11, "engagement schemas and more are bundled");
        assertEquals("e7ecba70cba14815", HexFormat.of().formatHex(Arrays.copyOfRange(header(schema("Watch")), 2, 10)));
    }

    @Test
    void decodesAPythonEncodedWatch() {
        GenericRowData row = DECODER.decode(HexFormat.of().parseHex(PYTHON_WATCH), NOW, 300_000L);
        assertEquals("watch", row.getString(0).toString());
        assertEquals("e1", row.getString(1).toString());
        assertEquals(1_700_000_000_000L, row.getLong(2));
        assertEquals(1L, row.getLong(3));
        assertEquals("u1", row.getString(4).toString());
        assertEquals("v1", row.getString(5).toString());
        assertNull(row.getString(7)); // sound_id
        assertEquals(2, row.getArray(11).size());
        assertEquals("dogs", row.getArray(11).getString(1).toString());
        assertEquals(5_000L, row.getLong(12));
        assertEquals(10_000L, row.getLong(13));
        assertTrue(row.isNullAt(14) && row.isNullAt(15) && row.isNullAt(16) && row.isNullAt(17));
        assertEquals(0, row.getArray(18).size()); // arms: empty, never NULL, for every type but Impression
        assertTrue(row.isNullAt(EngagementDecoder.ERROR));
    }

    private static byte[] impression(List<String> arms) {
        GenericRecord r = base("Impression", "e1", "u1", "v1", NOW);
        r.put("schema_version", 2);
        r.put("position", 0);
        r.put("surface", "for_you");
        r.put("arms", arms);
        return encode(r);
    }

    @Test
    void impressionsCarryTheirExperimentArms() {
        GenericRowData row = DECODER.decode(impression(List.of("ranker_v2:control", "ui2:big_font")), NOW, 300_000L);
        assertTrue(row.isNullAt(EngagementDecoder.ERROR));
        assertEquals(2, row.getArray(18).size());
        assertEquals("ui2:big_font", row.getArray(18).getString(1).toString());
        assertEquals(2L, row.getLong(3));
    }

    @Test
    void armIdsHaveTheirOwnRule() {
        assertNull(error(impression(List.of())));
        assertNull(error(impression(java.util.Collections.nCopies(16, "e:a"))));
        assertEquals("too_many:arms", error(impression(java.util.Collections.nCopies(17, "e:a"))));
        String longest = "e".repeat(64) + ":" + "a".repeat(64); // 129 bytes
        assertNull(error(impression(List.of(longest))));
        assertEquals("too_long:arms", error(impression(List.of(longest + "a"))));
        for (String bad : List.of("control", "a:b:c", ":a", "a:", "A:b", "a:b c", "1a:b", "a:_b", "é:a", "a:b\n")) {
            assertEquals("bad_arm:arms", error(impression(List.of("ok:fine", bad))), bad);
        }
        assertNull(error(impression(List.of("exp_1:arm_2"))));
    }

    @Test
    void detailColumnsFollowTheEventType() {
        GenericRecord like = base("Like", "e2", "u1", "v1", NOW);
        like.put("action", new GenericData.EnumSymbol(like.getSchema().getField("action").schema(), "UNLIKE"));
        GenericRowData row = DECODER.decode(encode(like), NOW, 300_000L);
        assertEquals("like", row.getString(0).toString());
        assertEquals("UNLIKE", row.getString(16).toString());
        assertTrue(row.isNullAt(12) && row.isNullAt(13));

        GenericRecord skip = base("Skip", "e3", "u1", "v1", NOW);
        skip.put("dwell_ms", -1L);
        skip.put("video_duration_ms", 10_000L);
        assertEquals("negative_duration:dwell_ms", error(encode(skip)));
    }

    @Test
    void reasonsOfTheReferenceDecoder() {
        byte[] good = watch("e1", "u1", "v1", NOW, 5_000);
        assertNull(error(good));
        assertEquals("undecodable:too_short", error(new byte[0]));
        assertEquals("undecodable:too_short", error(null));
        assertEquals("undecodable:too_short", error(new byte[] {(byte) 0xC3}));
        assertEquals("undecodable:bad_marker", error("not avro".getBytes()));
        assertEquals("undecodable:too_short", error(Arrays.copyOf(good, 6)));
        byte[] unknown = good.clone();
        unknown[5] ^= 0x55;
        assertEquals("undecodable:unknown_fingerprint", error(unknown));
        assertEquals("undecodable:truncated_body", error(Arrays.copyOf(good, good.length - 1)));
        assertEquals("undecodable:truncated_body", error(Arrays.copyOf(good, 12)));
        assertEquals("undecodable:corrupt_body", error(Arrays.copyOf(good, good.length + 1))); // bytes left over
        byte[] badUnion = good.clone();
        // sound_id's union index follows author_id: find "a1" and corrupt the byte after it
        int at = indexOf(badUnion, new byte[] {0x04, 'a', '1'}) + 3;
        badUnion[at] = 0x08; // union index 4
        assertEquals("undecodable:corrupt_body", error(badUnion));
        byte[] badUtf8 = good.clone();
        badUtf8[indexOf(badUtf8, new byte[] {0x04, 'e', '1'}) + 1] = (byte) 0xFF;
        assertEquals("undecodable:corrupt_body", error(badUtf8));

        assertEquals("unknown_type:Takedown", error(encode(takedown())));
        assertEquals("missing_id:event_id", error(watch("", "", "v1", NOW, 1)));
        assertEquals("missing_id:user_id", error(watch("e1", "", "", NOW, 1)));
        assertEquals("missing_id:video_id", error(watch("e1", "u1", "", NOW, -1)));
        assertEquals("negative_duration:watch_ms", error(watch("e1", "u1", "v1", NOW + 3_600_000, -1)));
        assertEquals("future_timestamp", error(watch("e1", "u1", "v1", NOW + 300_001, 1)));
        assertNull(error(watch("e1", "u1", "v1", NOW + 300_000, 1)));
    }

    @Test
    void fieldsOverTheirLimitsAreRefusedByName() {
        String at128 = "u".repeat(128);
        assertNull(error(watch("e1", at128, "v1", NOW, 1)));
        assertEquals("too_long:user_id", error(watch("e1", at128 + "u", "v1", NOW, 1)));
        assertEquals("bad_id:user_id", error(watch("e1", "a:b", "v1", NOW, 1)));
        assertEquals("bad_id:video_id", error(watch("e1", "u1", "v\n1", NOW, 1)));
        assertEquals("out_of_range:watch_ms", error(watch("e1", "u1", "v1", NOW, 1_000_000_000_000L)));
        assertNull(error(watch("e1", "u1", "v1", NOW, 11_000))); // duration 10 s + the 1 s tolerance
        assertEquals("out_of_range:watch_ms", error(watch("e1", "u1", "v1", NOW, 11_001)));

        GenericRecord tags = base("Watch", "e1", "u1", "v1", NOW);
        tags.put("watch_ms", 1L);
        tags.put("video_duration_ms", 10_000L);
        tags.put("hashtags", java.util.Collections.nCopies(31, "t"));
        assertEquals("too_many:hashtags", error(encode(tags)));
        tags.put("hashtags", List.of("ok", "x".repeat(101)));
        assertEquals("too_long:hashtags", error(encode(tags)));
        tags.put("hashtags", List.of("a:b"));
        assertEquals("bad_id:hashtags", error(encode(tags)));
        tags.put("hashtags", List.of("日本語"));
        assertNull(error(encode(tags)));

        GenericRecord comment = base("Comment", "e1", "u1", "v1", NOW);
        comment.put("comment_id", "c1");
        comment.put("text", "é".repeat(1_024)); // 2,048 bytes
        assertNull(error(encode(comment)));
        comment.put("text", "é".repeat(1_024) + "!");
        assertEquals("too_long:comment_text", error(encode(comment)));

        GenericRecord loop = base("Loop", "e1", "u1", "v1", NOW);
        loop.put("loop_count", 0);
        loop.put("video_duration_ms", 10_000L);
        assertEquals("out_of_range:loop_count", error(encode(loop)));
    }

    @Test
    void aClientClockAheadDoesNotMakeOtherClientsLate() {
        DecodeEngagement decode = new DecodeEngagement();
        long now = System.currentTimeMillis();
        // One client four minutes ahead (inside the tolerated skew), then another client on time, same partition.
        assertTrue(decode.eval(watch("e1", "ahead", "v1", now + 240_000, 1), 120_000L, 0).isNullAt(
                EngagementDecoder.ERROR));
        assertTrue(decode.eval(watch("e2", "on-time", "v1", now - 1_000, 1), 120_000L, 0).isNullAt(
                EngagementDecoder.ERROR));
        // Lateness still applies against the wall clock.
        assertEquals("late", decode.eval(watch("e3", "old", "v1", now - 600_000, 1), 120_000L, 0)
                .getString(EngagementDecoder.ERROR).toString());
    }

    @Test
    void errorRowsStillCarryWhatWasRead() {
        GenericRowData row = DECODER.decode(watch("e1", "u1", "v1", NOW, -7), NOW, 300_000L);
        assertEquals("v1", row.getString(5).toString());
        assertEquals(-7L, row.getLong(12));
        GenericRowData undecodable = DECODER.decode(new byte[] {1, 2, 3}, NOW, 300_000L);
        assertTrue(undecodable.isNullAt(0) && undecodable.isNullAt(5));
        assertEquals(0, undecodable.getArray(11).size()); // never NULL, as the Python UDF sends
        assertEquals(0, undecodable.getArray(18).size());
    }

    @Test
    void utf8IsCheckedStrictly() {
        assertTrue(Utf8.isValid("héllo ✓ 😀".getBytes(java.nio.charset.StandardCharsets.UTF_8)));
        assertTrue(!Utf8.isValid(new byte[] {(byte) 0xC0, (byte) 0x80})); // overlong NUL
        assertTrue(!Utf8.isValid(new byte[] {(byte) 0xED, (byte) 0xA0, (byte) 0x80})); // surrogate
        assertTrue(!Utf8.isValid(new byte[] {(byte) 0xF4, (byte) 0x90, (byte) 0x80, (byte) 0x80})); // > U+10FFFF
        assertTrue(!Utf8.isValid(new byte[] {(byte) 0xE2, (byte) 0x9C})); // cut short
    }

    @Test
    void allEngagementTypesHaveAPlan() {
        // Building the decoder checks every engagement schema has the fields the row needs.
        new EngagementDecoder(SCHEMAS);
    }

    private static GenericRecord takedown() {
        GenericRecord r = new GenericData.Record(schema("Takedown"));
        for (Schema.Field f : r.getSchema().getFields()) {
            switch (f.schema().getType()) {
                case STRING: r.put(f.name(), "x"); break;
                case LONG: r.put(f.name(), NOW); break;
                case INT: r.put(f.name(), 1); break;
                case UNION: r.put(f.name(), null); break;
                case ARRAY: r.put(f.name(), List.of()); break;
                case ENUM: r.put(f.name(), new GenericData.EnumSymbol(f.schema(), f.schema().getEnumSymbols().get(0))); break;
                default: throw new AssertionError("fill " + f);
            }
        }
        return r;
    }

    private static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 10; i <= hay.length - needle.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (hay[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        throw new AssertionError("not found");
    }
}
