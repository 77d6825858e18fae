package dev.fyp.flink.families;

import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.RowType;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;

/**
 * Splits the one row per event that carries every key family's input (featurespec/families.py
 * {@code families_input_query}) into one row per family that counts the event, each to its family's side
 * output. One SQL projection computes the columns of all families, instead of one projection per family, each
 * of which unboxed and copied the engagement row's fields again and got its own copy of the row from the
 * fan-out (docs/PERFORMANCE.md, 2026-12-07 "one input projection for every family").
 *
 * <p>{@code fields[f]} lists the input positions of family {@code f}'s row: its key first (NULL when the family
 * does not count the event: no row is sent), then event_time and its sets' sub-keys and values. The rows
 * reference the input's fields without copying them: each side output goes straight to a keyed shuffle, which
 * serialises the row before the next input row arrives (also under object reuse).
 */
public final class FamilySplit extends ProcessFunction<RowData, RowData> {

    private static final long serialVersionUID = 1L;

    private final int[][] fields;
    private final LogicalType[] types;
    private final OutputTag<RowData>[] tags;

    private transient RowData.FieldGetter[][] getters;

    FamilySplit(int[][] fields, RowType input, OutputTag<RowData>[] tags) {
        this.fields = fields;
        this.types = input.getChildren().toArray(new LogicalType[0]);
        this.tags = tags;
        for (int[] family : fields) {
            for (int position : family) {
                if (position < 0 || position >= types.length) {
                    throw new IllegalArgumentException("family field " + position + " is not a column of " + input);
                }
            }
        }
    }

    @Override
    public void open(org.apache.flink.api.common.functions.OpenContext context) {
        getters = new RowData.FieldGetter[fields.length][];
        for (int f = 0; f < fields.length; f++) {
            getters[f] = new RowData.FieldGetter[fields[f].length];
            for (int j = 0; j < fields[f].length; j++) {
                getters[f][j] = RowData.createFieldGetter(types[fields[f][j]], fields[f][j]);
            }
        }
    }

    @Override
    public void processElement(RowData row, Context context, Collector<RowData> out) {
        for (int f = 0; f < fields.length; f++) {
            if (row.isNullAt(fields[f][0])) {
                continue;
            }
            RowData.FieldGetter[] family = getters[f];
            GenericRowData split = new GenericRowData(row.getRowKind(), family.length);
            for (int j = 0; j < family.length; j++) {
                split.setField(j, family[j].getFieldOrNull(row));
            }
            context.output(tags[f], split);
        }
    }
}
