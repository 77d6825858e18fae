"""Event schemas and how they travel: `avro/*.avsc` (the records), `registry` (single-object encoding,
fingerprints, decode), `compat` (backward-compatibility rules), `topics` (Kafka topics and keys).

See docs/EVENTS.md. Nothing is imported here, so `import schemas.topics` stays cheap.
"""
