#!/usr/bin/env bash
# Builds the docker compose CLI plugin from its Go module (no Docker engine needed, nothing but the Go module
# proxy) into build/docker-config/cli-plugins/docker-compose, where `DOCKER_CONFIG=build/docker-config docker
# compose ...` finds it; tests/unit/docker/test_docker_compose.py runs `docker compose config` with it.
# Called by scripts/install.sh; skips the build when the plugin of this version is there.
set -euo pipefail
cd "$(dirname "$0")/.."

COMPOSE_MODULE=github.com/docker/compose/v5
COMPOSE_VERSION=v5.6.0  # the newest that builds with this machine's Go (1.26.8); newer ones need Go 1.27
GO=${GO:-/usr/local/go/bin/go}
plugins=build/docker-config/cli-plugins
stamp=$plugins/.docker-compose-version

if [ -x "$plugins/docker-compose" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$COMPOSE_VERSION" ]; then
  exit 0
fi
command -v "$GO" >/dev/null || { echo "Go is required to build the compose plugin ($GO not found)" >&2; exit 1; }
printf '\033[1m[install]\033[0m %s\n' "docker compose $COMPOSE_VERSION (go build) -> $plugins"
mkdir -p "$plugins"
# `go install module/cmd@version` refuses this module (its go.mod has exclude directives), so build it as the main
# module, as its own Makefile does: the source from the module proxy (read-only cache), copied, then `go build`.
source=$("$GO" mod download -json "$COMPOSE_MODULE@$COMPOSE_VERSION" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
cp -R "$source/." "$work/"
chmod -R u+w "$work"
(cd "$work" && CGO_ENABLED=0 "$GO" build -trimpath \
  -ldflags "-s -w -X $COMPOSE_MODULE/internal.Version=$COMPOSE_VERSION" -o docker-compose ./cmd)
mv "$work/docker-compose" "$plugins/docker-compose"
echo "$COMPOSE_VERSION" > "$stamp"
