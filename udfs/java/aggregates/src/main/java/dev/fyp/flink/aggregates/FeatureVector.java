package dev.fyp.flink.aggregates;

/**
 * {@code FEATURE_VECTOR(vals ARRAY<DOUBLE>, event_time_ms BIGINT, spec STRING) -> ARRAY<DOUBLE>}: every
 * sliding and decayed sum of a feature set in one accumulator ({@link FeatureVectorCore}), with {@code
 * merge}: under {@code TWO_PHASE} the planner pre-aggregates each key per mini-batch before the shuffle.
 * That pays where a mini-batch holds many rows of one key (region x language, a few hundred keys).
 */
public class FeatureVector extends FeatureVectorCore {

    private static final long serialVersionUID = 1L;

    public void merge(Acc acc, Iterable<Acc> others) {
        mergeAll(acc, others);
    }
}
