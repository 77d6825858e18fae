package dev.fyp.flink.families;

import java.lang.reflect.Method;

import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.api.java.typeutils.ResultTypeQueryable;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.api.Table;
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
        AbstractStreamTableEnvironmentImpl impl = (AbstractStreamTableEnvironmentImpl) tableEnv;
        DataType internal = table.getResolvedSchema().toPhysicalRowDataType().bridgedTo(RowData.class);
        SchemaTranslator.ProducingResult producing = SchemaTranslator.createProducingResult(
                impl.getCatalogManager().getDataTypeFactory(), table.getResolvedSchema(), internal);
        Method toStream = AbstractStreamTableEnvironmentImpl.class.getDeclaredMethod("toStreamInternal",
                Table.class, SchemaTranslator.ProducingResult.class, ChangelogMode.class);
        toStream.setAccessible(true);
        return (DataStream<RowData>) toStream.invoke(impl, table, producing, ChangelogMode.all());
    }

    public static DataStream<RowData> apply(DataStream<RowData> rows, String name, String spec, int maxBundle,
                                            long bundleMs) {
        return rows.keyBy(new FirstField())
                .transform(name, InternalTypeInfo.of(OUTPUT), new FamilyOperator(spec, maxBundle, bundleMs))
                .uid(name);
    }
}
