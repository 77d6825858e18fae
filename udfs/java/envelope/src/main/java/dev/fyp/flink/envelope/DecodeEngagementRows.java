package dev.fyp.flink.envelope;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.functions.FunctionContext;
import org.apache.flink.table.functions.TableFunction;

/**
 * {@code LATERAL TABLE(DECODE_ENGAGEMENT_ROWS(payload, allowed_lateness_ms, kafka_partition))}: the same row as
 * {@link DecodeEngagement}, as flat columns of a table function. The features job reads the decoded fields as
 * columns: a query that reads fields of the scalar function's nested row either copies the whole row in every
 * step that reads it, or, once the planner merges the projections, calls the decoder once per field read
 * (docs/PERFORMANCE.md, "The decoded row, flat"). A table function is called once per input row.
 */
@FunctionHint(output = @DataTypeHint(value = DecodeEngagement.ROW_TYPE, bridgedTo = RowData.class))
public class DecodeEngagementRows extends TableFunction<RowData> {

    private static final long serialVersionUID = 1L;

    private final DecodeEngagement decoder = new DecodeEngagement();

    @Override
    public void open(FunctionContext context) {
        decoder.open(context);
    }

    public void eval(byte[] payload, Long allowedLatenessMs, Integer partition) {
        collect(decoder.eval(payload, allowedLatenessMs, partition));
    }

    @Override
    public boolean isDeterministic() {
        return false;
    }
}
