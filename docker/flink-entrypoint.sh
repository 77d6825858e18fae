#!/usr/bin/env bash
# Runs a Flink role of the docker-compose stack with the project's own Flink configuration.
#
#   flink-entrypoint.sh jobmanager  [-D key=value ...]   -> pyflink/bin/jobmanager.sh start-foreground
#   flink-entrypoint.sh taskmanager [-D key=value ...]   -> pyflink/bin/taskmanager.sh start-foreground
#   flink-entrypoint.sh client COMMAND [ARGS ...]        -> COMMAND, with FLINK_CONF_DIR set (job submitter)
#
# flink-conf/config.yaml is a template (`fyp up` fills ${HOST}, ${FYP_HOME}, ...); this script fills it the
# same way into $FYP_HOME/flink-conf with the container's values, appends flink-conf/prometheus.yaml (always
# on in compose), and points FLINK_CONF_DIR there. ${HOST} becomes the JobManager's service name, which is
# what a client and a TaskManager must reach; the listening sides are widened below with -D, which Flink
# applies over the file.
set -euo pipefail

role=${1:?usage: flink-entrypoint.sh jobmanager|taskmanager|client ...}
shift

: "${FYP_HOME:?}" "${FLINK_HOME:?}"
template_dir=${FYP_FLINK_CONF_TEMPLATE_DIR:-/opt/fyp/flink-conf}
conf_dir=${FLINK_CONF_DIR:-$FYP_HOME/flink-conf}
mkdir -p "$conf_dir" "$FYP_HOME/logs" "$FYP_HOME/run" "$FYP_HOME/data/flink"

# The distribution's defaults (log4j-console.properties, ...) under the project's own files.
cp -f "$FLINK_HOME"/conf/* "$conf_dir"/
for f in "$template_dir"/*; do
  case "$(basename "$f")" in
    config.yaml | prometheus.yaml) ;;
    *) cp -f "$f" "$conf_dir"/ ;;
  esac
done

FLINK_PYTHON=/opt/venv-flink/bin/python \
HOST=${FYP_FLINK_HOST:-jobmanager} \
FLINK_REST_PORT=${FYP_FLINK_REST_PORT:-8081} \
FLINK_METRICS_PORT=${FYP_FLINK_METRICS_PORT:-9249} \
FLINK_METRICS_PORT_END=${FYP_FLINK_METRICS_PORT:-9249} \
FLINK_RPC_PORT=${FYP_FLINK_RPC_PORT:-6123} \
FLINK_BLOB_PORT=${FYP_FLINK_BLOB_PORT:-6124} \
python3 - "$template_dir" "$conf_dir/config.yaml" "$FLINK_HOME/conf/config.yaml" <<'EOF'
import os
import re
import string
import sys
from pathlib import Path

template_dir, out, dist_conf = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
# The wheel's own --add-opens list (Java 17 needs it), as fyp/stack/flink_cluster.py does.
java_opts = re.search(r"^\s+all: (--add-.*)$", dist_conf.read_text(), re.MULTILINE)
os.environ.setdefault("DIST_JAVA_OPTS", java_opts.group(1) if java_opts else "")
parts = [template_dir / "config.yaml", template_dir / "prometheus.yaml"]
text = "\n".join(p.read_text() for p in parts if p.exists())
try:
    rendered = string.Template(text).substitute(os.environ)
except (KeyError, ValueError) as exc:
    sys.exit(f"flink-entrypoint: cannot fill {template_dir}/config.yaml: unknown placeholder {exc}")
out.write_text(rendered)
EOF
export FLINK_CONF_DIR=$conf_dir

case "$role" in
  jobmanager)
    exec "$FLINK_HOME/bin/jobmanager.sh" start-foreground \
      -D jobmanager.bind-host=0.0.0.0 \
      -D rest.bind-address=0.0.0.0 \
      "$@"
    ;;
  taskmanager)
    # Each replica advertises its own address to the JobManager.
    own_ip=$(python3 -c 'import socket; print(socket.gethostbyname(socket.gethostname()))')
    exec "$FLINK_HOME/bin/taskmanager.sh" start-foreground \
      -D taskmanager.host="$own_ip" \
      -D taskmanager.bind-host=0.0.0.0 \
      "$@"
    ;;
  client)
    exec "$@"
    ;;
  *)
    echo "flink-entrypoint: unknown role '$role' (jobmanager|taskmanager|client)" >&2
    exit 64
    ;;
esac
