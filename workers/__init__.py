"""Long-running workers outside Flink, each a handler on one runtime (`workers.runtime`: a Kafka consumer loop and a
periodic loop). Worker modules: transcoder, moderator (consumers), user_embeddings, candidate_sets, lake_maintenance
(periodic)."""
