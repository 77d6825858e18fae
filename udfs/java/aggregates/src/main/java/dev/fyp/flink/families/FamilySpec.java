package dev.fyp.flink.families;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;

/**
 * The feature sets one {@link FamilyOperator} computes: every set of one key family (e.g. user, user x author and
 * user x hashtag under the user key), compiled from the declarations by featurespec/families.py.
 *
 * <p>Text form, one line per set: {@code index|sub|ttl_ms|vector_spec}, where {@code index} is the set's number
 * in the job (it tags the output rows), {@code sub} is 1 when the set is keyed by a sub-key under the family key
 * (the row then carries an array of sub-keys for it: one author, or the event's hashtags) and 0 for the family
 * key itself, {@code ttl_ms} is how long an idle entity's state lives, and {@code vector_spec} is the
 * FEATURE_VECTOR spec of the set ({@code window_ms/tiles,...;half_life_ms,...}).
 */
public final class FamilySpec implements Serializable {

    private static final long serialVersionUID = 1L;

    /** One feature set of the family. */
    public static final class SetSpec implements Serializable {
        private static final long serialVersionUID = 1L;
        public final int index;
        public final boolean subKeyed;
        public final long ttlMs;
        public final String vectorSpec;

        SetSpec(int index, boolean subKeyed, long ttlMs, String vectorSpec) {
            this.index = index;
            this.subKeyed = subKeyed;
            this.ttlMs = ttlMs;
            this.vectorSpec = vectorSpec.intern();
        }
    }

    public final List<SetSpec> sets;

    private FamilySpec(List<SetSpec> sets) {
        this.sets = sets;
    }

    public static FamilySpec parse(String text) {
        List<SetSpec> sets = new ArrayList<>();
        for (String line : text.split("\n")) {
            if (line.isBlank()) {
                continue;
            }
            String[] parts = line.split("\\|", -1);
            if (parts.length != 4 || !(parts[1].equals("0") || parts[1].equals("1"))) {
                throw new IllegalArgumentException("family spec: malformed line " + line);
            }
            sets.add(new SetSpec(Integer.parseInt(parts[0]), parts[1].equals("1"), Long.parseLong(parts[2]),
                    parts[3]));
        }
        if (sets.isEmpty()) {
            throw new IllegalArgumentException("family spec: no feature set");
        }
        return new FamilySpec(List.copyOf(sets));
    }
}
