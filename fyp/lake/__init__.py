"""The lake: SQL over the Iceberg tables, their upkeep (compaction, snapshot expiry, orphans) and evolution."""
