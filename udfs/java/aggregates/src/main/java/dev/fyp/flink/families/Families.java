package dev.fyp.flink.families;

import java.lang.reflect.Method;

import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.api.java.typeutils.ResultTypeQueryable;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.table.data.RowData;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.table.api.Expressions;
import org.apache.flink.table.api.Schema;
import org.apache.flink.table.api.Table;
import org.apache.flink.table.catalog.Column;
import org.apache.flink.table.types.utils.DataTypeUtils;
import org.apache.flink.types.RowKind;
import org.apache.flink.table.api.bridge.internal.AbstractStreamTableEnvironmentImpl;
import org.apache.flink.table.api.bridge.java.StreamTableEnvironment;
import org.apache.flink.table.catalog.SchemaTranslator;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.runtime.typeutils.InternalTypeInfo;
import org.apache.flink.table.types.logical.ArrayType;
import org.apache.flink.table.types.logical.BigIntType;
import org.apache.flink.table.types.logical.DoubleType;
import org.apache.flink.table.types.logical.IntType;
import org.apache.flink.table.types.logical.RowType;
import org.apache.flink.table.types.logical.VarCharType;

/** Entry point for jobs (called from PyFlink): key a stream of family rows and apply {@link FamilyOperator}. */
public final class Families {

    private Families() {}

    /** The operator's output rows. */
    public static final RowType OUTPUT = RowType.of(
            new org.apache.flink.table.types.logical.LogicalType[] {
                new IntType(false), new VarCharType(VarCharType.MAX_LENGTH), new VarCharType(VarCharType.MAX_LENGTH),
                new BigIntType(), new ArrayType(new DoubleType())},
            new String[] {"set_index", "k", "subkey", "event_time", "vals"});

    /** The family key: the row's first field. */
    public static final class FirstField implements KeySelector<RowData, String>, ResultTypeQueryable<String> {
        private static final long serialVersionUID = 1L;

        @Override
        public String getKey(RowData row) {
            return row.isNullAt(0) ? "" : row.getString(0).toString();
        }

        @Override
        public TypeInformation<String> getProducedType() {
            return Types.STRING;
        }
    }

    /**
     * {@code table} as a changelog stream of Flink's internal rows. The public API offers internal rows only
     * for an insert-only table ({@code toDataStream(table, RowData-bridged type)}) and a changelog only of
     * external {@code Row}s, whose conversion (strings to Java strings, arrays to boxed arrays, and back for
     * the shuffle) measured ~1.6x the TaskManager CPU per event of the per-set SQL path. Under mini-batch the
     * planner types the deduplicated engagement rows as updating, so this calls the bridge's own protected
     * {@code toStreamInternal} with {@code ChangelogMode.all()} and a RowData-bridged type, which is what
     * {@code toDataStream} does with {@code insertOnly()}.
     */
    @SuppressWarnings("unchecked")
    public static DataStream<RowData> toRowDataChangelog(StreamTableEnvironment tableEnv, Table table)
            throws ReflectiveOperationException {
        return toRowDataChangelog(tableEnv, table, ChangelogMode.all());
    }

    static DataStream<RowData> toRowDataChangelog(StreamTableEnvironment tableEnv, Table table, ChangelogMode mode)
            throws ReflectiveOperationException {
        AbstractStreamTableEnvironmentImpl impl = (AbstractStreamTableEnvironmentImpl) tableEnv;
        DataType internal = table.getResolvedSchema().toPhysicalRowDataType().bridgedTo(RowData.class);
        SchemaTranslator.ProducingResult producing = SchemaTranslator.createProducingResult(
                impl.getCatalogManager().getDataTypeFactory(), table.getResolvedSchema(), internal);
        Method toStream = AbstractStreamTableEnvironmentImpl.class.getDeclaredMethod("toStreamInternal",
                Table.class, SchemaTranslator.ProducingResult.class, ChangelogMode.class);
        toStream.setAccessible(true);
        return (DataStream<RowData>) toStream.invoke(impl, table, producing, mode);
    }

    /**
     * {@code table} as a table over a DataStream of its own rows, so that every later translation that reads it
     * (each family's {@code toRowDataChangelog}, and the job's INSERTs) shares one computation of it. Without
     * this each translation re-plans the table from its source: with four families the job read the topic,
     * decoded and deduplicated every event five times. {@code procTime}, when not null, names a processing-time
     * column: it is dropped before and declared again after ({@code PROCTIME()}), so that it stays a time
     * attribute (a keep-first deduplication on it stays a deduplication). A changelog table (the deduplicated
     * rows, typed as updating under mini-batch) must in fact only insert: any other row fails the job loudly
     * rather than being dropped.
     */
    public static Table share(StreamTableEnvironment tableEnv, Table table, String procTime, boolean changelog,
                              String name) throws ReflectiveOperationException {
        Table physical = procTime == null ? table : table.dropColumns(Expressions.$(procTime));
        DataStream<RowData> rows = toRowDataChangelog(tableEnv, physical,
                changelog ? ChangelogMode.all() : ChangelogMode.insertOnly());
        DataStream<RowData> inserts = rows.map(new InsertsOnly(name), rows.getType()).name(name + " (shared)");
        Schema.Builder schema = physicalSchema(physical);
        if (procTime != null) {
            schema.columnByExpression(procTime, "PROCTIME()");
        }
        return tableEnv.fromDataStream(inserts, schema.build());
    }

    /**
     * {@code table} (insert-only) deduplicated on its string field {@code keyField} by {@link KeepFirst} (ttlMs of
     * processing time), as a table over that DataStream: every later translation reads this one computation, as
     * with {@link #share}. The operator's uid is {@code name}, so that a savepoint restores its state.
     */
    public static Table keepFirst(StreamTableEnvironment tableEnv, Table table, int keyField, long ttlMs, String name)
            throws ReflectiveOperationException {
        DataStream<RowData> rows = toRowDataChangelog(tableEnv, table, ChangelogMode.insertOnly());
        DataStream<RowData> kept = rows.keyBy(new KeepFirst.StringField(keyField))
                .process(new KeepFirst(ttlMs), rows.getType()).name(name).uid(name);
        return tableEnv.fromDataStream(kept, physicalSchema(table).build());
    }

    /** {@code table}'s columns, none of them a time attribute: the schema of a table over a stream of its rows. */
    private static Schema.Builder physicalSchema(Table table) {
        Schema.Builder schema = Schema.newBuilder();
        for (Column column : table.getResolvedSchema().getColumns()) {
            schema.column(column.getName(), DataTypeUtils.removeTimeAttribute(column.getDataType()));
        }
        return schema;
    }

    /** Passes inserts; fails on a retraction, which a keep-first deduplication never emits. */
    static final class InsertsOnly implements MapFunction<RowData, RowData> {
        private static final long serialVersionUID = 1L;
        private final String name;

        InsertsOnly(String name) {
            this.name = name;
        }

        @Override
        public RowData map(RowData row) {
            if (row.getRowKind() != RowKind.INSERT) {
                throw new IllegalStateException(name + ": expected inserts only, got " + row.getRowKind());
            }
            return row;
        }
    }

    /**
     * Key {@code rows} by their first field and apply a {@link FamilyOperator}. endOnWatermark: a bundle also ends
     * at every watermark, i.e. at the SQL mini-batch boundaries upstream (see FamilyOperator).
     */
    public static DataStream<RowData> apply(DataStream<RowData> rows, String name, String spec, int maxBundle,
                                            long bundleMs, boolean endOnWatermark) {
        return rows.keyBy(new FirstField())
                .transform(name, InternalTypeInfo.of(OUTPUT),
                        new FamilyOperator(spec, maxBundle, bundleMs, endOnWatermark))
                .uid(name);
    }
}
