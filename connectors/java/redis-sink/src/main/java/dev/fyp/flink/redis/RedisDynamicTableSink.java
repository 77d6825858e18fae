package dev.fyp.flink.redis;

import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.sink.DynamicTableSink;
import org.apache.flink.table.connector.sink.SinkV2Provider;

/**
 * Upsert table sink: INSERT / UPDATE_AFTER / DELETE by primary key. It does not ask for UPDATE_BEFORE, so the
 * planner drops it where it can; where an upstream operator still needs it, it arrives and is applied as a
 * delete of the key (see {@link RowEncoder#encode}).
 */
public final class RedisDynamicTableSink implements DynamicTableSink {

    private final RedisSinkConfig config;
    private final RowEncoder encoder;
    private final Integer parallelism;

    RedisDynamicTableSink(RedisSinkConfig config, RowEncoder encoder, Integer parallelism) {
        this.config = config;
        this.encoder = encoder;
        this.parallelism = parallelism;
    }

    @Override
    public ChangelogMode getChangelogMode(ChangelogMode requestedMode) {
        // INSERT, UPDATE_AFTER, DELETE; deletes may carry only the key (a DELETE is unconditional).
        return ChangelogMode.upsert();
    }

    @Override
    public SinkRuntimeProvider getSinkRuntimeProvider(Context context) {
        return SinkV2Provider.of(new RedisSink(config, encoder), parallelism);
    }

    @Override
    public DynamicTableSink copy() {
        return new RedisDynamicTableSink(config, encoder, parallelism);
    }

    @Override
    public String asSummaryString() {
        return "fyp-redis(" + encoder.format.name().toLowerCase() + ")";
    }
}
