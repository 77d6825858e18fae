package dev.fyp.flink.envelope;

import java.util.HashMap;
import java.util.Map;

import org.apache.flink.metrics.Counter;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.functions.FunctionContext;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * {@code DECODE_ENGAGEMENT(payload BYTES [, allowed_lateness_ms BIGINT [, kafka_partition INT]]) -> ROW<...>}: the engagement row of a raw
 * Kafka value, in Java, so that no Python runs per event. Same row, reasons and metrics as the Python UDF
 * {@code udfs/flink_functions.py} DecodeEngagement (the reference), which the job used before.
 *
 * <p>With {@code allowed_lateness_ms}, a good row whose event time is more than that behind the newest event
 * time decoded before it from the same Kafka partition (or, without a partition, by this subtask) gets error
 * {@code late}: the rule of udfs/lateness.py, whose newest time never runs ahead of the wall clock. Counters: {@code fyp_dead_letters_total}
 * (rows with any other error) and {@code fyp_late_events_total}.
 *
 * <p>Not deterministic (it reads the clock and keeps the newest event time), which also keeps the planner from
 * evaluating it once per field that a query reads from its row.
 */
public class DecodeEngagement extends ScalarFunction {

    private static final long serialVersionUID = 1L;

    /** The row type; the Python side lists the same fields in udfs/envelope.py ENGAGEMENT_ROW_FIELDS. */
    public static final String ROW_TYPE = "ROW<event_type STRING, event_id STRING, event_time BIGINT, "
            + "schema_version BIGINT, user_id STRING, video_id STRING, author_id STRING, sound_id STRING, "
            + "region STRING, language STRING, session_id STRING, hashtags ARRAY<STRING>, watch_ms BIGINT, "
            + "video_duration_ms BIGINT, dwell_ms BIGINT, loop_count BIGINT, action STRING, comment_text STRING, "
            + "arms ARRAY<STRING>, error STRING>";

    /** Tolerated client clock skew (as udfs/envelope.py): events later than now + this are future_timestamp. */
    public static final long MAX_FUTURE_MS = 300_000L;

    static final StringData LATE = StringData.fromString("late");

    private transient EngagementDecoder decoder;
    private transient Counter deadLetters;
    private transient Counter lateEvents;
    /** Per Kafka partition (null: none given), the newest event time admitted so far (udfs/lateness.py). */
    private transient Map<Integer, Long> newest;

    @Override
    public void open(FunctionContext context) {
        decoder = new EngagementDecoder(EventSchemas.bundled());
        deadLetters = context.getMetricGroup().counter("fyp_dead_letters_total");
        lateEvents = context.getMetricGroup().counter("fyp_late_events_total");
        newest = new HashMap<>();
    }

    public @DataTypeHint(value = ROW_TYPE, bridgedTo = RowData.class) RowData eval(byte[] payload) {
        return eval(payload, null);
    }

    public @DataTypeHint(value = ROW_TYPE, bridgedTo = RowData.class) RowData eval(
            byte[] payload, Long allowedLatenessMs) {
        return eval(payload, allowedLatenessMs, null);
    }

    public @DataTypeHint(value = ROW_TYPE, bridgedTo = RowData.class) RowData eval(
            byte[] payload, Long allowedLatenessMs, Integer partition) {
        if (decoder == null) { // open() is skipped when the planner constant-folds a call
            decoder = new EngagementDecoder(EventSchemas.bundled());
            newest = new HashMap<>();
        }
        long nowMs = System.currentTimeMillis();
        GenericRowData row = decoder.decode(payload, nowMs, MAX_FUTURE_MS);
        if (!row.isNullAt(EngagementDecoder.ERROR)) {
            if (deadLetters != null) {
                deadLetters.inc();
            }
        } else if (allowedLatenessMs != null) {
            long eventMs = row.getLong(EngagementDecoder.EVENT_TIME);
            Long newestMs = newest.get(partition);
            if (newestMs != null && eventMs < newestMs - allowedLatenessMs) {
                row.setField(EngagementDecoder.ERROR, LATE);
                if (lateEvents != null) {
                    lateEvents.inc();
                }
            } else {
                // A client clock ahead of ours advances the newest time only to our clock (udfs/lateness.py).
                long advanced = Math.min(eventMs, nowMs);
                if (newestMs == null || advanced > newestMs) {
                    newest.put(partition, advanced);
                }
            }
        }
        return row;
    }

    @Override
    public boolean isDeterministic() {
        return false;
    }
}
