package dev.fyp.flink.redis;

import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.table.connector.sink.DynamicTableSink;
import org.apache.flink.table.factories.DynamicTableSinkFactory;
import org.apache.flink.table.factories.FactoryUtil;
import org.apache.flink.table.types.logical.RowType;

import java.util.HashSet;
import java.util.List;
import java.util.Set;

/** {@code 'connector' = 'fyp-redis'}: see {@link RedisSinkOptions} and docs/REDIS_LAYOUT.md. */
public final class RedisDynamicTableSinkFactory implements DynamicTableSinkFactory {

    public static final String IDENTIFIER = "fyp-redis";

    @Override
    public String factoryIdentifier() {
        return IDENTIFIER;
    }

    @Override
    public Set<ConfigOption<?>> requiredOptions() {
        return Set.of(RedisSinkOptions.KEY_PREFIX);
    }

    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        return new HashSet<>(List.of(
                RedisSinkOptions.HOST, RedisSinkOptions.PORT, RedisSinkOptions.CLUSTER_NODES, RedisSinkOptions.PASSWORD,
                RedisSinkOptions.PASSWORD_ENV, RedisSinkOptions.DATABASE, RedisSinkOptions.TIMEOUT,
                RedisSinkOptions.TTL, RedisSinkOptions.VALUE_FORMAT, RedisSinkOptions.EVENT_TIME_COLUMN,
                RedisSinkOptions.ZSET_MEMBER_COLUMN, RedisSinkOptions.ZSET_SCORE_COLUMN,
                RedisSinkOptions.ZSET_MAX_SIZE, RedisSinkOptions.ZSET_SCORE_UPDATE,
                RedisSinkOptions.BUFFER_FLUSH_MAX_ROWS,
                RedisSinkOptions.BUFFER_FLUSH_INTERVAL, RedisSinkOptions.MAX_OUTAGE,
                FactoryUtil.SINK_PARALLELISM));
    }

    @Override
    public DynamicTableSink createDynamicTableSink(Context context) {
        FactoryUtil.TableFactoryHelper helper = FactoryUtil.createTableFactoryHelper(this, context);
        helper.validate();
        ReadableConfig options = helper.getOptions();
        RowType rowType = (RowType) context.getPhysicalRowDataType().getLogicalType();
        RowEncoder encoder = RowEncoder.create(rowType, context.getPrimaryKeyIndexes(), options);
        RedisSinkConfig config = RedisSinkConfig.fromOptions(options);
        Integer parallelism = options.getOptional(FactoryUtil.SINK_PARALLELISM).orElse(null);
        return new RedisDynamicTableSink(config, encoder, parallelism);
    }
}
