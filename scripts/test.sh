#!/usr/bin/env bash
# `make test`: lint, unit tests (tools env), job-builder tests (Flink env), then integration tests against a
# real local stack started in its own FYP_HOME on shifted ports, so a developer's running stack is untouched.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
echo "== ruff"
.venv/bin/ruff check .

echo "== unit tests (tools environment)"
.venv/bin/python -m pytest tests/unit -q -p no:cacheprovider

echo "== Java unit tests (aggregate functions, envelope decoder, Redis sink)"
for module in udfs/java/aggregates udfs/java/envelope connectors/java/redis-sink; do
  mvn -q -B -f "$module/pom.xml" test
done

echo "== job builders on in-memory input (Flink environment)"
.venv-flink/bin/python -m pytest tests/flink -q -p no:cacheprovider -p no:warnings

echo "== integration tests (real Kafka, Redis, SeaweedFS, Flink)"
export FYP_HOME="${FYP_TEST_HOME:-$PWD/.fyp/test-stack}"
export FYP_PORT_OFFSET="${FYP_TEST_PORT_OFFSET:-200}"
.venv/bin/python -m pytest tests/integration -q -p no:cacheprovider -x --durations=12

echo "== all tests passed in $(( $(date +%s) - started )) s"
