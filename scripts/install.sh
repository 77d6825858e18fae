#!/usr/bin/env bash
# Installs everything fyp needs on a Debian machine with Python 3.11, Java 17 and Maven.
# Idempotent: each step checks what is already there. Nothing is fetched at run time later.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
log() { printf '\033[1m[install]\033[0m %s\n' "$*"; }

# 1. Debian packages: Redis 7 (server), ffmpeg (transcoding), fpcalc (Chromaprint), tesseract (OCR).
need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v ffmpeg >/dev/null || need_apt+=(ffmpeg)
command -v fpcalc >/dev/null || need_apt+=(libchromaprint-tools)
command -v tesseract >/dev/null || need_apt+=(tesseract-ocr)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
command -v java >/dev/null || { echo "Java 17+ is required (apt-get install openjdk-17-jre-headless)" >&2; exit 1; }
command -v mvn >/dev/null || { echo "Maven is required (apt-get install maven)" >&2; exit 1; }

# 2. Two Python environments (README "Two Python environments"), and the Pathway peer's.
# uv installs the packages, not pip: it hard-links each file from one cache into every environment, so PyPI's
# torch with its CUDA libraries (~4 GB unpacked) lies on disk once rather than twice, plus once in pip's cache.
# With pip, a clean machine needed ~18 GB free and a CI run once stopped with "No space left on device".
make_env() {  # make_env <dir>: a venv of $PYTHON, with pip (pip check and the Flink distribution's scripts use it)
  [ -d "$1" ] || "$PYTHON" -m venv "$1"
}
make_env .venv
[ -x .venv/bin/uv ] || .venv/bin/pip install -q 'uv>=0.5'
uv_install() {  # uv_install <env dir> <requirement>...
  local env=$1; shift
  .venv/bin/uv pip install -q --python "$env/bin/python" "$@"
}
if [ ! -x .venv/bin/fyp ] || [ pyproject.toml -nt .venv/.installed ]; then
  log "tools environment .venv"
  uv_install .venv -e '.[tools,embeddings,ranking,dev]'
  touch .venv/.installed
fi
if [ ! -x .venv-flink/bin/python ] || [ pyproject.toml -nt .venv-flink/.installed ]; then
  log "Flink environment .venv-flink"
  make_env .venv-flink
  # embeddings: jobs/video_embeddings.py runs the item encoder (torch, MiniLM) in the TaskManager's Python.
  uv_install .venv-flink -e '.[flink,embeddings]' 'pytest>=8' 'hypothesis>=6'
  touch .venv-flink/.installed
fi

# The Pathway benchmark peer (fyp/bench/peers/pathway_flow.py) in a third environment: pathway 0.33.0 caps
# pyarrow below 26 and pins opentelemetry 1.45.2, which would downgrade the tools environment.
if [ ! -x .venv-pathway/bin/python ] || [ pyproject.toml -nt .venv-pathway/.installed ]; then
  log "Pathway peer environment .venv-pathway"
  make_env .venv-pathway
  uv_install .venv-pathway -e '.[peers-pathway]'
  touch .venv-pathway/.installed
fi

# 3. Jars from Maven Central, through the manifests in connectors/maven/ (flink-plugins: the S3 file system).
for kind in flink flink-plugins kafka; do
  dest=build/jars/$kind
  if [ ! -f "$dest/.complete" ] || [ connectors/maven/$kind/pom.xml -nt "$dest/.complete" ]; then
    log "jars for $kind -> $dest"
    rm -rf "$dest"; mkdir -p "$dest"
    mvn -q -B -f connectors/maven/$kind/pom.xml dependency:copy-dependencies \
      -DoutputDirectory="$PWD/$dest" -DincludeScope=runtime
    touch "$dest/.complete"
  fi
done

# 4. fyp's own Java: aggregate functions and the envelope decoder (udfs/java), the Redis sink (connectors/java).
build_java() {  # build_java <module dir> <jar path> [other source dirs the jar packs]
  local module=$1 jar=$2
  if [ ! -f "$jar" ] || [ -n "$(find "$module" "${@:3}" -newer "$jar" -type f -print -quit)" ]; then
    log "building $module -> $jar"
    mvn -q -B -f "$module/pom.xml" package -DskipTests
  fi
}
build_java udfs/java/aggregates build/jars/flink/fyp-aggregates.jar
build_java udfs/java/envelope build/jars/flink/fyp-envelope.jar schemas/avro  # packs the .avsc files
build_java connectors/java/redis-sink build/jars/flink/fyp-redis-sink.jar

# 5. Deployment checks (docs/DEPLOY.md): the schemas the Kubernetes manifests are validated with, and the docker
#    compose plugin, built from its Go module, that validates docker-compose.yml. Both skip when present.
deploy/kubernetes/fetch-schemas.sh
docker/install-compose.sh

log "pip check (tools)"; .venv/bin/pip check
log "pip check (flink)"; .venv-flink/bin/pip check
log "pip check (pathway)"; .venv-pathway/bin/pip check
log "done"
