package dev.fyp.flink.families;

import java.time.Duration;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.StateTtlConfig;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.api.java.typeutils.ResultTypeQueryable;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.table.data.RowData;
import org.apache.flink.util.Collector;

/**
 * Keep-first deduplication on one string field: the first row of each key passes, any other row with that key
 * within {@code ttlMs} of processing time after it is dropped (the rule of Flink SQL's {@code ROW_NUMBER() OVER
 * (PARTITION BY key ORDER BY proc_time) = 1} under a state TTL).
 *
 * <p>Why not the SQL deduplication: under mini-batch it releases each mini-batch from a hash map, in no set
 * order, so a keyed operator downstream that ends its bundles on its own timer or size sees a partition's events
 * with holes anywhere in its recent past. Here each row leaves as it arrives, so what a downstream operator has
 * applied at any moment is, per Kafka partition and per subtask of this operator, a prefix in offset order:
 * the skew check's in-flight search (fyp/training/search.py) relies on that. Issue #17.
 */
public final class KeepFirst extends KeyedProcessFunction<String, RowData, RowData> {

    private static final long serialVersionUID = 1L;
    private final long ttlMs;
    private transient ValueState<Boolean> seen;

    public KeepFirst(long ttlMs) {
        if (ttlMs <= 0) {
            throw new IllegalArgumentException("KeepFirst: ttlMs must be positive, got " + ttlMs);
        }
        this.ttlMs = ttlMs;
    }

    @Override
    public void open(OpenContext context) throws Exception {
        StateTtlConfig ttl = StateTtlConfig.newBuilder(Duration.ofMillis(ttlMs))
                .setUpdateType(StateTtlConfig.UpdateType.OnCreateAndWrite)
                .setStateVisibility(StateTtlConfig.StateVisibility.NeverReturnExpired)
                .build();
        ValueStateDescriptor<Boolean> descriptor = new ValueStateDescriptor<>("seen", Types.BOOLEAN);
        descriptor.enableTimeToLive(ttl);
        seen = getRuntimeContext().getState(descriptor);
    }

    @Override
    public void processElement(RowData row, Context context, Collector<RowData> out) throws Exception {
        if (seen.value() == null) {
            seen.update(Boolean.TRUE);
            out.collect(row);
        }
    }

    /** The key: a string field of the row (a null one is the empty string). */
    public static final class StringField implements KeySelector<RowData, String>, ResultTypeQueryable<String> {
        private static final long serialVersionUID = 1L;
        private final int field;

        public StringField(int field) {
            this.field = field;
        }

        @Override
        public String getKey(RowData row) {
            return row.isNullAt(field) ? "" : row.getString(field).toString();
        }

        @Override
        public TypeInformation<String> getProducedType() {
            return Types.STRING;
        }
    }
}
