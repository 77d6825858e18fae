"""The feed's stages after candidate generation. Today: the reranker (`rerank`); the rankers come next (#20)."""
