package dev.fyp.flink.families;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;

import org.apache.flink.api.common.eventtime.Watermark;
import org.apache.flink.api.common.eventtime.WatermarkGenerator;
import org.apache.flink.api.common.eventtime.WatermarkOutput;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.table.data.GenericArrayData;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.runtime.typeutils.InternalTypeInfo;
import org.apache.flink.table.types.logical.ArrayType;
import org.apache.flink.table.types.logical.BigIntType;
import org.apache.flink.table.types.logical.DoubleType;
import org.apache.flink.table.types.logical.RowType;
import org.apache.flink.table.types.logical.VarCharType;
import org.apache.flink.util.CloseableIterator;
import org.apache.flink.util.Collector;
import org.junit.jupiter.api.Test;

/**
 * A bundle ends at a watermark when {@code endOnWatermark} is set (the job's SQL mini-batch boundary), and only on
 * its timer, size or the end of input otherwise. The timer (1 h) and size (10^6) are out of reach here, so a row
 * leaves the operator before the watermark that follows it only if the watermark ended its bundle.
 */
class FamilyOperatorWatermarkTest {

    /** One set keyed by the family key, with a two-value FEATURE_VECTOR (as in AggregatesSqlTest). */
    private static final String SPEC = "0|0|86400000|60000/6;30000";
    private static final RowType INPUT = RowType.of(
            new VarCharType(VarCharType.MAX_LENGTH), new BigIntType(),
            new ArrayType(new VarCharType(VarCharType.MAX_LENGTH)), new ArrayType(new DoubleType()));
    /** A row with this key only carries a watermark (its time) to the operator; it counts in no set. */
    private static final String MARK = "watermark";

    private static RowData row(String key, long time) {
        GenericArrayData vals = MARK.equals(key) ? null : new GenericArrayData(new double[] {1.0, 1.0});
        return GenericRowData.of(StringData.fromString(key), time, null, vals);
    }

    /** Emits a watermark at each MARK row's time, and none otherwise. */
    private static final class AtMarks implements WatermarkGenerator<RowData> {
        @Override
        public void onEvent(RowData row, long time, WatermarkOutput output) {
            if (MARK.equals(row.getString(0).toString())) {
                output.emitWatermark(new Watermark(time));
            }
        }

        @Override
        public void onPeriodicEmit(WatermarkOutput output) {
        }
    }

    /** "key@watermark": the watermark the operator had passed downstream when the key's row came out. */
    private static List<String> run(boolean endOnWatermark) throws Exception {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setParallelism(1);
        DataStream<RowData> rows = env
                .fromData(InternalTypeInfo.of(INPUT), row("a", 1_000L), row(MARK, 5_000L), row("b", 6_000L))
                .assignTimestampsAndWatermarks(WatermarkStrategy.<RowData>forGenerator(c -> new AtMarks())
                        .withTimestampAssigner((r, previous) -> r.getLong(1)));
        DataStream<String> seen = Families.apply(rows, "family", SPEC, 1_000_000, 3_600_000L, endOnWatermark)
                .process(new ProcessFunction<RowData, String>() {
                    @Override
                    public void processElement(RowData out, Context ctx, Collector<String> collector) {
                        long watermark = ctx.timerService().currentWatermark();
                        collector.collect(out.getString(1) + "@" + (watermark == Long.MIN_VALUE ? "none"
                                : watermark == Long.MAX_VALUE ? "end" : String.valueOf(watermark)));
                    }
                }).returns(Types.STRING);
        List<String> out = new ArrayList<>();
        try (CloseableIterator<String> it = seen.executeAndCollect()) {
            it.forEachRemaining(out::add);
        }
        return out;
    }

    @Test
    void aBundleEndsAtEachWatermark() throws Exception {
        // "a" leaves ahead of the watermark at 5000 that followed it; "b" ahead of the end of input's.
        assertEquals(List.of("a@none", "b@5000"), run(true));
    }

    @Test
    void withoutItTheBundleWaitsForItsTimerOrTheEnd() throws Exception {
        List<String> out = run(false);
        assertEquals(2, out.size(), out.toString());
        for (String seen : out) {
            assertEquals(false, seen.endsWith("@none"), out.toString());   // both held past the first watermark
        }
    }
}
