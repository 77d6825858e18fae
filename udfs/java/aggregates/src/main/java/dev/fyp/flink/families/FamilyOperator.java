package dev.fyp.flink.families;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ScheduledFuture;

import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.StateTtlConfig;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.core.memory.DataOutputSerializer;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.BoundedOneInput;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.table.data.ArrayData;
import org.apache.flink.table.data.GenericArrayData;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.types.RowKind;

import dev.fyp.flink.aggregates.FeatureVectorCore.Acc;
import dev.fyp.flink.aggregates.FeatureVectorOnePhase;

/**
 * Every feature set of one key family in one keyed operator: one shuffle of one row per event for the family
 * (instead of one per set), and the family's sets updated together per key and bundle.
 *
 * <p>Input rows (featurespec/families.py builds them in SQL; {@link Families#toRowDataChangelog} hands them
 * over as internal rows): {@code key STRING, event_time BIGINT}, then per
 * set {@code subkeys ARRAY<STRING>, vals ARRAY<DOUBLE>}: {@code vals} is the set's aggregation values for the
 * event, NULL when the set does not count it; {@code subkeys} (sub-keyed sets only) the set's keys under the
 * family key, e.g. the author, or each hashtag (an empty or NULL one is skipped, a repeated one counts twice,
 * as the SQL explode does).
 *
 * <p>Rows are buffered per key and applied in bundles, as Flink SQL's mini-batch aggregation does: a bundle
 * ends after {@code maxBundle} rows, {@code bundleMs} after its first row, before every checkpoint barrier and
 * at the end of input, so state and output never lag a checkpoint. Per key and bundle each set's accumulator
 * is read from state once (a value for the family key, a map entry per sub-key), folded with {@link
 * FeatureVectorOnePhase} (the same code as the SQL path's FEATURE_VECTOR), written back once, and its
 * absolute value emitted: {@code set_index INT, key STRING, subkey STRING, event_time BIGINT, vals
 * ARRAY<DOUBLE>}, event_time being the accumulator's reference time, as the SQL path's MAX(event_time).
 *
 * <p>With {@code endOnWatermark}, a bundle also ends at every watermark. Upstream, the SQL mini-batch
 * deduplication releases its rows at each mini-batch boundary and then forwards the boundary as a
 * (processing-time) watermark, which reaches this operator once every input channel has passed it, i.e. right
 * after that mini-batch's rows. Ending the bundle there applies each mini-batch as it arrives, instead of
 * holding it another {@code bundleMs} on a timer of its own (~200 ms of every feature's freshness,
 * docs/PERFORMANCE.md); the bundles hold as many rows as before. The timer stays as the bound when no
 * watermark comes (a job without mini-batch).
 */
public final class FamilyOperator extends AbstractStreamOperator<RowData>
        implements OneInputStreamOperator<RowData, RowData>, BoundedOneInput {

    private static final long serialVersionUID = 1L;

    private final String specText;
    private final int maxBundle;
    private final long bundleMs;
    private final boolean endOnWatermark;

    private transient FamilySpec spec;
    private transient FeatureVectorOnePhase vector;
    private transient StringData[] vectorSpecs;
    private transient List<ValueState<byte[]>> values;
    private transient List<MapState<String, byte[]>> maps;
    private transient Map<String, List<Event>> bundle;
    private transient int buffered;
    private transient ScheduledFuture<?> timer;
    private transient DataOutputSerializer scratch;

    /** One buffered event: its time, and per set its sub-keys and values (null: not counted). */
    private static final class Event {
        final long time;
        final boolean retract;
        final String[][] subkeys;
        final double[][] vals;

        Event(long time, boolean retract, int sets) {
            this.time = time;
            this.retract = retract;
            this.subkeys = new String[sets][];
            this.vals = new double[sets][];
        }
    }

    public FamilyOperator(String specText, int maxBundle, long bundleMs) {
        this(specText, maxBundle, bundleMs, false);
    }

    public FamilyOperator(String specText, int maxBundle, long bundleMs, boolean endOnWatermark) {
        this.specText = specText;
        this.maxBundle = maxBundle;
        this.bundleMs = bundleMs;
        this.endOnWatermark = endOnWatermark;
        FamilySpec.parse(specText); // fail at job build time, not on the TaskManager
    }

    @Override
    public void open() throws Exception {
        super.open();
        spec = FamilySpec.parse(specText);
        vector = new FeatureVectorOnePhase();
        int n = spec.sets.size();
        vectorSpecs = new StringData[n];
        values = new ArrayList<>(n);
        maps = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            FamilySpec.SetSpec set = spec.sets.get(i);
            vectorSpecs[i] = StringData.fromString(set.vectorSpec);
            StateTtlConfig ttl = StateTtlConfig.newBuilder(Duration.ofMillis(set.ttlMs))
                    .setUpdateType(StateTtlConfig.UpdateType.OnCreateAndWrite)
                    .setStateVisibility(StateTtlConfig.StateVisibility.NeverReturnExpired)
                    .build();
            String name = "set-" + set.index;
            if (set.subKeyed) {
                MapStateDescriptor<String, byte[]> d = new MapStateDescriptor<>(name, Types.STRING,
                        PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO);
                d.enableTimeToLive(ttl);
                maps.add(getRuntimeContext().getMapState(d));
                values.add(null);
            } else {
                ValueStateDescriptor<byte[]> d = new ValueStateDescriptor<>(name,
                        PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO);
                d.enableTimeToLive(ttl);
                values.add(getRuntimeContext().getState(d));
                maps.add(null);
            }
        }
        bundle = new LinkedHashMap<>();
        scratch = new DataOutputSerializer(1024);
    }

    @Override
    public void processElement(StreamRecord<RowData> record) throws Exception {
        RowData row = record.getValue();
        if (row.isNullAt(0) || row.isNullAt(1)) {
            return;
        }
        String key = row.getString(0).toString();
        // The keep-first deduplication upstream only inserts, but under mini-batch the planner types its output
        // as updating; a withdrawn row is subtracted, as the SQL path's FEATURE_VECTOR retract does.
        RowKind kind = row.getRowKind();
        boolean retract = kind == RowKind.UPDATE_BEFORE || kind == RowKind.DELETE;
        int n = spec.sets.size();
        Event event = new Event(row.getLong(1), retract, n);
        for (int i = 0; i < n; i++) {
            int valsAt = 3 + 2 * i;
            if (row.isNullAt(valsAt)) {
                continue;
            }
            if (spec.sets.get(i).subKeyed) {
                int subAt = 2 + 2 * i;
                if (row.isNullAt(subAt)) {
                    continue;
                }
                ArrayData subs = row.getArray(subAt);
                String[] keys = new String[subs.size()];
                for (int k = 0; k < keys.length; k++) {
                    keys[k] = subs.isNullAt(k) ? null : subs.getString(k).toString();
                }
                event.subkeys[i] = keys;
            }
            // Copied: with object reuse the row's memory is the next row's.
            ArrayData vals = row.getArray(valsAt);
            double[] copy = new double[vals.size()];
            for (int a = 0; a < copy.length; a++) {
                copy[a] = vals.isNullAt(a) ? 0.0 : vals.getDouble(a);
            }
            event.vals[i] = copy;
        }
        bundle.computeIfAbsent(key, k -> new ArrayList<>()).add(event);
        buffered++;
        if (buffered >= maxBundle) {
            finishBundle();
        } else if (timer == null) {
            long now = getProcessingTimeService().getCurrentProcessingTime();
            timer = getProcessingTimeService().registerTimer(now + bundleMs, t -> {
                timer = null;
                finishBundle();
            });
        }
    }

    @Override
    public void processWatermark(Watermark mark) throws Exception {
        if (endOnWatermark) {
            finishBundle();   // before the watermark goes on, as the SQL bundle operators do
        }
        super.processWatermark(mark);
    }

    @Override
    public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
        finishBundle();
    }

    @Override
    public void endInput() throws Exception {
        finishBundle();
    }

    @Override
    public void finish() throws Exception {
        finishBundle();
        super.finish();
    }

    private void finishBundle() throws Exception {
        if (timer != null) {   // ended otherwise: a later bundle starts its own timer
            timer.cancel(false);
            timer = null;
        }
        if (buffered == 0) {
            return;
        }
        int n = spec.sets.size();
        for (Map.Entry<String, List<Event>> entry : bundle.entrySet()) {
            String key = entry.getKey();
            List<Event> events = entry.getValue();
            setCurrentKey(key);
            StringData keyData = StringData.fromString(key);
            for (int i = 0; i < n; i++) {
                FamilySpec.SetSpec set = spec.sets.get(i);
                if (set.subKeyed) {
                    applySubKeyed(i, set, keyData, events);
                } else {
                    applyKeyed(i, set, keyData, events);
                }
            }
        }
        bundle.clear();
        buffered = 0;
    }

    private void applyKeyed(int i, FamilySpec.SetSpec set, StringData key, List<Event> events) throws Exception {
        Acc acc = null;
        for (Event event : events) {
            if (event.vals[i] == null) {
                continue;
            }
            if (acc == null) {
                byte[] stored = values.get(i).value();
                acc = stored == null ? vector.createAccumulator() : AccCodec.decode(stored, set.vectorSpec);
            }
            fold(acc, event, i);
        }
        if (acc != null) {
            values.get(i).update(AccCodec.encode(acc, scratch));
            emit(set, key, null, acc);
        }
    }

    private void applySubKeyed(int i, FamilySpec.SetSpec set, StringData key, List<Event> events)
            throws Exception {
        Map<String, Acc> touched = null;
        MapState<String, byte[]> state = maps.get(i);
        for (Event event : events) {
            if (event.vals[i] == null) {
                continue;
            }
            for (String sub : event.subkeys[i]) {
                if (sub == null || sub.isEmpty()) {
                    continue;
                }
                if (touched == null) {
                    touched = new HashMap<>();
                }
                Acc acc = touched.get(sub);
                if (acc == null) {
                    byte[] stored = state.get(sub);
                    acc = stored == null ? vector.createAccumulator() : AccCodec.decode(stored, set.vectorSpec);
                    touched.put(sub, acc);
                }
                fold(acc, event, i);
            }
        }
        if (touched != null) {
            for (Map.Entry<String, Acc> entry : touched.entrySet()) {
                state.put(entry.getKey(), AccCodec.encode(entry.getValue(), scratch));
                emit(set, key, StringData.fromString(entry.getKey()), entry.getValue());
            }
        }
    }

    private void fold(Acc acc, Event event, int i) {
        GenericArrayData vals = new GenericArrayData(event.vals[i]);
        if (event.retract) {
            vector.retract(acc, vals, event.time, vectorSpecs[i]);
        } else {
            vector.accumulate(acc, vals, event.time, vectorSpecs[i]);
        }
    }

    private void emit(FamilySpec.SetSpec set, StringData key, StringData sub, Acc acc) {
        output.collect(new StreamRecord<>(GenericRowData.of(set.index, key, sub, acc.refMs, vector.getValue(acc))));
    }
}
