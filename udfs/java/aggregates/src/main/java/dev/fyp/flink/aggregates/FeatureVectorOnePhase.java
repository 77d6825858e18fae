package dev.fyp.flink.aggregates;

/**
 * {@code FEATURE_VECTOR_ONE_PHASE(vals, event_time_ms, spec)}: {@link FeatureVector} without {@code merge},
 * so the planner aggregates its call site in one phase, after the shuffle, even in a {@code TWO_PHASE} job.
 * For entities with many keys (users, videos, user x hashtag), where a mini-batch rarely holds a key twice:
 * there a local aggregate is a hash-map entry, an accumulator and a conversion per row that save nothing.
 */
public class FeatureVectorOnePhase extends FeatureVectorCore {

    private static final long serialVersionUID = 1L;
}
