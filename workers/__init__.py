"""Long-running Kafka consumer-group workers; each module is one worker (`python -m workers.<name>`)."""
