package dev.fyp.flink.envelope;

import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * The engagement event's field contracts, as {@code udfs/limits.py} declares them (that module is the reference:
 * its docstring says why each limit exists and {@code field_error} the order of the checks). The numbers are
 * repeated here because the decoder runs in the TaskManager's JVM without Python;
 * tests/flink/test_decoder_agreement.py holds both to the same reasons at and past every limit.
 *
 * <p>Every check costs at most the limit: a length is compared before any byte is scanned.
 */
final class FieldLimits {

    /** Text fields in row order, their limits in UTF-8 bytes; the first {@link #ID_COUNT} are ids. */
    static final String[] TEXT_NAMES = {"event_id", "user_id", "video_id", "author_id", "sound_id", "region",
        "language", "session_id", "action", "comment_text"};
    static final int[] TEXT_LIMITS = {128, 128, 128, 128, 128, 16, 35, 128, 64, 2_048};
    static final int ID_COUNT = 8;
    static final int MAX_HASHTAGS = 30;
    static final int MAX_HASHTAG_BYTES = 100;
    static final int MAX_ARMS = 16;
    static final int MAX_ARM_ID_BYTES = 129;
    static final String[] DURATIONS = {"watch_ms", "video_duration_ms", "dwell_ms"};
    static final long MAX_VIDEO_DURATION_MS = 3_600_000L;
    static final long MAX_DWELL_MS = 3_600_000L;
    static final long WATCH_TOLERANCE_MS = 1_000L;
    static final long MAX_LOOP_COUNT = 10_000L;

    private FieldLimits() {
    }

    /**
     * The first broken contract as a dead-letter reason, or null.
     *
     * @param texts the raw values of {@link #TEXT_NAMES} (UTF-8 bytes, an enum symbol's String, or null)
     * @param hashtags the raw hashtags (UTF-8 bytes)
     * @param arms the raw experiment arm ids (UTF-8 bytes; empty for every type but Impression)
     * @param durations watch_ms, video_duration_ms, dwell_ms (null where the event type has none)
     * @param loops loop_count, or null
     */
    static String error(Object[] texts, List<Object> hashtags, List<Object> arms, Long[] durations, Long loops) {
        for (int i = 0; i < TEXT_NAMES.length; i++) {
            byte[] v = bytes(texts[i]);
            if (v == null) {
                continue;
            }
            if (v.length > TEXT_LIMITS[i]) {
                return "too_long:" + TEXT_NAMES[i];
            }
            if (i < ID_COUNT && !validId(v)) {
                return "bad_id:" + TEXT_NAMES[i];
            }
        }
        if (hashtags.size() > MAX_HASHTAGS) {
            return "too_many:hashtags";
        }
        for (Object tag : hashtags) {
            byte[] v = bytes(tag);
            if (v.length > MAX_HASHTAG_BYTES) {
                return "too_long:hashtags";
            }
            if (!validId(v)) {
                return "bad_id:hashtags";
            }
        }
        if (arms.size() > MAX_ARMS) {
            return "too_many:arms";
        }
        for (Object arm : arms) {
            byte[] v = bytes(arm);
            if (v.length > MAX_ARM_ID_BYTES) {
                return "too_long:arms";
            }
            if (!validArmId(v)) {
                return "bad_arm:arms";
            }
        }
        for (int i = 0; i < DURATIONS.length; i++) {
            if (durations[i] != null && durations[i] < 0) {
                return "negative_duration:" + DURATIONS[i];
            }
        }
        Long watch = durations[0];
        Long duration = durations[1];
        Long dwell = durations[2];
        if (duration != null && duration > MAX_VIDEO_DURATION_MS) {
            return "out_of_range:video_duration_ms";
        }
        if (watch != null && (watch > MAX_VIDEO_DURATION_MS + WATCH_TOLERANCE_MS
                || (duration != null && watch > duration + WATCH_TOLERANCE_MS))) {
            return "out_of_range:watch_ms";
        }
        if (dwell != null && dwell > MAX_DWELL_MS) {
            return "out_of_range:dwell_ms";
        }
        if (loops != null && (loops < 1 || loops > MAX_LOOP_COUNT)) {
            return "out_of_range:loop_count";
        }
        return null;
    }

    /** No key separator, no control character: UTF-8 continuation bytes are all >= 0x80, so bytes suffice. */
    static boolean validId(byte[] v) {
        for (byte b : v) {
            if (b == ':' || (b >= 0 && b < 0x20) || b == 0x7F) {
                return false;
            }
        }
        return true;
    }

    /**
     * 'experiment:arm' as udfs/limits.py valid_arm_id: two names of a-z, 0-9 and _, each starting with a-z,
     * joined by exactly one ':'. ASCII only, so bytes suffice.
     */
    static boolean validArmId(byte[] v) {
        int separators = 0;
        boolean partStart = true;
        for (byte b : v) {
            if (b == ':') {
                if (partStart || ++separators > 1) {
                    return false; // an empty experiment name, or a second ':'
                }
                partStart = true;
            } else if (b >= 'a' && b <= 'z') {
                partStart = false;
            } else if ((b >= '0' && b <= '9') || b == '_') {
                if (partStart) {
                    return false; // a name must start with a letter
                }
            } else {
                return false;
            }
        }
        return separators == 1 && !partStart;
    }

    private static byte[] bytes(Object v) {
        if (v == null || v instanceof byte[]) {
            return (byte[]) v;
        }
        return v.toString().getBytes(StandardCharsets.UTF_8); // an enum symbol
    }
}
