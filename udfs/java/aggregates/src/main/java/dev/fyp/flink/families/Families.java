package dev.fyp.flink.families;

import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.api.java.typeutils.ResultTypeQueryable;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.table.data.RowData;
import org.apache.flink.types.Row;
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
    public static final class FirstField implements KeySelector<Row, String>, ResultTypeQueryable<String> {
        private static final long serialVersionUID = 1L;

        @Override
        public String getKey(Row row) {
            Object key = row.getField(0);
            return key == null ? "" : (String) key;
        }

        @Override
        public TypeInformation<String> getProducedType() {
            return Types.STRING;
        }
    }

    public static DataStream<RowData> apply(DataStream<Row> rows, String name, String spec, int maxBundle,
                                            long bundleMs) {
        return rows.keyBy(new FirstField())
                .transform(name, InternalTypeInfo.of(OUTPUT), new FamilyOperator(spec, maxBundle, bundleMs))
                .uid(name);
    }
}
