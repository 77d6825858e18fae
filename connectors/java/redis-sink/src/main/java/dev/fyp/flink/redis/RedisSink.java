package dev.fyp.flink.redis;

import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.table.data.RowData;

/** Sink V2 that writes changelog rows to Redis; stateless (at-least-once through flush before checkpoints). */
public final class RedisSink implements Sink<RowData> {

    private static final long serialVersionUID = 1L;

    private final RedisSinkConfig config;
    private final RowEncoder encoder;

    public RedisSink(RedisSinkConfig config, RowEncoder encoder) {
        this.config = config;
        this.encoder = encoder;
    }

    @Override
    public SinkWriter<RowData> createWriter(WriterInitContext context) {
        return new RedisSinkWriter(config, encoder, context.getProcessingTimeService(), context.metricGroup());
    }
}
